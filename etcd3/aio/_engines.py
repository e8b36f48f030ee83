"""The background engines of one asyncio client (watch streams, lease keepalive),
and what happens when the client is dropped without ``await client.close()``.

An engine is a set of tasks on the client's event loop. It is made on first use
and closed with the client. When the loop it ran on ends (``asyncio.run`` cancels
every task left when its coroutine returns), its tasks end with it and the client
forgets it: the next use in a new loop makes a new one.

A client that is garbage-collected without being closed cancels its engines' tasks
and closes its channels on their loop, if that loop still runs; nothing is awaited
and nothing blocks the thread that collects it.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Callable, Dict, Optional, Protocol, TypeVar

from .. import exceptions

log = logging.getLogger("etcd3")


class AioEngine(Protocol):
    async def aclose(self) -> None:
        """Stop its tasks and streams and wait for them to end."""

    def close(self) -> None:
        """Stop its tasks without waiting. Safe to call from any thread (a
        finalizer): it only schedules work on the engine's loop."""


E = TypeVar("E", bound=AioEngine)


class AioEngines:
    """The engines of one asyncio client, by name."""

    def __init__(self) -> None:
        self._by_name: Dict[str, AioEngine] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self.closed = False

    def get(self, name: str) -> Optional[AioEngine]:
        """The engine called ``name`` if it was made (in this loop), else None."""
        try:
            loop: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not self._loop:
            return None
        return self._by_name.get(name)

    def ensure(self, name: str, create: Callable[[], E]) -> E:
        """The engine called ``name``, made by ``create()`` on first use.

        :raises ClientClosedError: the client is closed.
        :raises RuntimeError: no event loop is running.
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self.forget()
            self._loop = loop
        engine = self._by_name.get(name)
        if engine is None:
            if self.closed:
                raise exceptions.ClientClosedError("this etcd3 client has been closed")
            engine = self._by_name[name] = create()
        return engine  # type: ignore[return-value]

    def forget(self) -> None:
        """The loop the engines ran on has ended: start over (their tasks are gone)."""
        engines, self._by_name = list(self._by_name.values()), {}
        for engine in engines:
            try:
                engine.close()
            except Exception:
                log.debug("etcd3: abandoning %r failed", engine, exc_info=True)

    async def aclose(self) -> None:
        """Close every engine and wait for it. Idempotent."""
        self.closed = True
        engines, self._by_name = list(self._by_name.values()), {}
        for engine in engines:
            try:
                await engine.aclose()
            except Exception:  # one engine's failure must not leave the others running
                log.exception("etcd3: failed to stop %r", engine)

    def close(self) -> None:
        """Close every engine without waiting (see :meth:`AioEngine.close`)."""
        self.closed = True
        engines, self._by_name = list(self._by_name.values()), {}
        for engine in engines:
            try:
                engine.close()
            except Exception:
                log.debug("etcd3: failed to stop %r", engine, exc_info=True)


def _release(engines: AioEngines, close_transport: Callable[[], None]) -> None:
    try:
        engines.close()
    finally:
        close_transport()


def release_when_dropped(owner: Any, engines: AioEngines,
                         close_transport: Callable[[], None]) -> weakref.finalize[Any, Any]:
    """Stop ``engines`` and ``close_transport()`` once ``owner`` is collected without
    being closed. Neither may refer to ``owner``; ``.detach()`` the result when the
    owner is closed explicitly."""
    finalizer = weakref.finalize(owner, _release, engines, close_transport)
    finalizer.atexit = False  # at exit the loop is gone: there is nothing to await
    return finalizer
