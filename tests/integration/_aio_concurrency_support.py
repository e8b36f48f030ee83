"""Helpers of the asyncio lease, lock, election and STM tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Coroutine, List, TypeVar, Union

import etcd3.aio
from etcd3.testing import EtcdServer

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a test body in a fresh event loop."""
    return asyncio.run(coro)


def aio_client(server: EtcdServer, **kwargs: Any) -> etcd3.aio.Etcd3Client:
    """An asyncio client of ``server``."""
    return etcd3.aio.client(host=server.host, port=server.port, **kwargs)


async def wait_until(predicate: Callable[[], Union[bool, Awaitable[bool]]],
                     timeout: float = 10.0) -> None:
    """Poll ``predicate`` (plain or async) until true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def keys(client: Any, prefix: str) -> List[bytes]:
    """Keys under ``prefix``, in key order."""
    return [meta.key async for _, meta in client.get_prefix(prefix)]


def task_names(prefix: str) -> List[str]:
    """Names of the running loop's unfinished tasks starting with ``prefix``."""
    return sorted(t.get_name() for t in asyncio.all_tasks() if not t.done()
                  and t.get_name().startswith(prefix))
