"""Helpers shared by the asyncio watch tests: run a test body in its own event loop
with a client, and collect what watches deliver."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, Callable, List, Optional, TypeVar

import etcd3.aio
from etcd3.events import Event, WatchResponse

T = TypeVar("T")

#: No test body may run longer (a hang fails the test instead of blocking the run).
BODY_TIMEOUT = 90.0


def run(body: Callable[[etcd3.aio.Etcd3Client], Awaitable[T]], *,
        endpoints: Optional[List[str]] = None, limit: float = BODY_TIMEOUT,
        **client_args: Any) -> T:
    """``await body(client)`` in a new event loop, with a client of ``endpoints``
    (closed afterwards); fails after ``limit`` seconds."""
    async def main() -> T:
        async with etcd3.aio.client(endpoints=endpoints, **client_args) as client:
            return await asyncio.wait_for(body(client), limit)

    return asyncio.run(main())


async def take(iterator: AsyncIterator[T], count: int, timeout: float = 10.0) -> List[T]:
    """The next ``count`` items of ``iterator`` (fails after ``timeout`` seconds)."""
    async def collect() -> List[T]:
        items: List[T] = []
        async for item in iterator:
            items.append(item)
            if len(items) == count:
                break
        return items

    return await asyncio.wait_for(collect(), timeout)


class Seen:
    """A watch callback (a coroutine function) recording what it receives."""

    def __init__(self) -> None:
        self.items: List[Any] = []
        self.changed = asyncio.Event()

    async def __call__(self, item: Any) -> None:
        self.items.append(item)
        self.changed.set()

    @property
    def events(self) -> List[Event]:
        return [e for item in self.items if isinstance(item, WatchResponse)
                for e in item.events]

    @property
    def errors(self) -> List[BaseException]:
        return [item for item in self.items if isinstance(item, BaseException)]

    async def wait_for(self, predicate: Callable[[Seen], bool],
                       timeout: float = 30.0) -> None:
        async def wait() -> None:
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"condition not reached; seen {self.items[-3:]}") from None


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` every 10 ms until it holds (fails after ``timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)
