"""A blocking facade over an :mod:`etcd3.aio` client, so the threaded client's test
bodies run unchanged against the asyncio one.

:class:`AioBridge` owns an event loop running in a background thread. Every method
of the wrapped client is called IN that loop: a coroutine's result is awaited and
returned, an async iterator becomes a lazy blocking iterator (each ``next()`` awaits
one item), an async context manager a plain one, an object of :mod:`etcd3.aio`
(a lease, a lock, a watch's cancel function...) is wrapped in turn, and a property
is read in the loop (awaited when it gives an awaitable: ``lease.remaining_ttl``).
Everything else (``client.transactions``, results, events, exceptions) is passed
through as it is: an exception raised by the asyncio client reaches the test
unchanged.

Callbacks: those the asyncio client awaits (watch callbacks, ``on_expired``,
``on_lost``, STM functions) run in worker threads, as the threaded client runs
them outside the caller's thread, so they may block or call the bridged client;
what they are given is bridged. Other callables (progress reporters, key
generators) are called in the loop, as given: they must not call the bridge.

The bridge translates calls; it never retries, catches, or reorders anything, so a
test that passes through it exercises the asyncio client's own behaviour.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Optional

#: Seconds any one bridged call may block before the test fails (not a timed
#: assertion: a bound so a hung call fails the test instead of hanging the suite).
CALL_BOUND = 60.0


class _Loop:
    """An event loop running in a daemon thread, shared by one bridge's objects."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="aio-bridge", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Awaitable[Any]) -> Any:
        """Run ``coro`` in the loop and return its result (or raise its error)."""
        if threading.current_thread() is self.thread:
            raise RuntimeError("a bridged call made from the bridge's own loop")
        future = asyncio.run_coroutine_threadsafe(_awaited(coro), self.loop)
        return future.result(CALL_BOUND)

    def stop(self) -> None:
        if self.loop.is_closed():
            return

        async def cancel_leftovers() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.run(cancel_leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(CALL_BOUND)
        self.loop.close()


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


async def _read_property(target: Any, name: str) -> Any:
    value = getattr(target, name)
    if inspect.isawaitable(value):
        value = await value
    return value


async def _invoke(fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def _is_aio_object(value: Any) -> bool:
    """An object of the asyncio client with something to await (a lease, a lock...);
    plain values (events, results) are passed through as they are."""
    cls = type(value)
    if not (getattr(cls, "__module__", "") or "").startswith("etcd3.aio"):
        return False
    if hasattr(cls, "__aenter__") or hasattr(cls, "__aiter__"):
        return True
    return any(inspect.iscoroutinefunction(getattr(cls, name, None))
               for name in dir(cls) if not name.startswith("__"))


class _Bridged:
    """A blocking view of one object of the asyncio client."""

    def __init__(self, target: Any, loop: _Loop) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_loop", loop)

    def _wrap(self, value: Any) -> Any:
        if value is self._target:
            return self
        return _wrap(value, self._loop)

    def __getattr__(self, name: str) -> Any:
        if isinstance(getattr(type(self._target), name, None), property):
            # read in the loop: an asyncio client's property may return an awaitable
            # (``await lease.remaining_ttl``) or need the running loop
            return self._wrap(self._loop.run(_read_property(self._target, name)))
        value = getattr(self._target, name)
        if inspect.ismethod(value) and value.__self__ is self._target:
            return _BridgedCallable(value, self._loop, self._wrap)
        return self._wrap(value)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __repr__(self) -> str:
        return f"<bridged {self._target!r}>"

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, _Bridged):
            other = other._target
        return bool(self._target == other)

    def __hash__(self) -> int:
        return hash(self._target)

    def __int__(self) -> int:
        return int(self._target)

    def __enter__(self) -> Any:
        enter = getattr(self._target, "__aenter__", None)
        if enter is None:
            enter = self._target.__enter__
        return self._wrap(self._loop.run(_invoke(enter, (), {})))

    def __exit__(self, *exc_info: Any) -> Any:
        exit_ = getattr(self._target, "__aexit__", None)
        if exit_ is None:
            exit_ = self._target.__exit__
        return self._loop.run(_invoke(exit_, exc_info, {}))

    def __iter__(self) -> Iterator[Any]:
        if hasattr(self._target, "__aiter__"):
            return BridgedIterator(self._target.__aiter__(), self._loop)
        return iter(self._target)


def _wrap(value: Any, loop: _Loop) -> Any:
    """``value`` as the blocking world sees it (see the module docstring)."""
    if isinstance(value, (tuple, list)) and any(_needs_wrap(v) for v in value):
        return type(value)(_wrap(v, loop) for v in value)
    if hasattr(value, "__anext__"):
        return BridgedIterator(value, loop)
    if callable(value) and not isinstance(value, type) and _is_async_callable(value):
        return _BridgedCallable(value, loop, lambda v: _wrap(v, loop))
    if _is_aio_object(value):
        return _Bridged(value, loop)
    return value


def _needs_wrap(value: Any) -> bool:
    return (hasattr(value, "__anext__") or _is_aio_object(value)
            or (callable(value) and _is_async_callable(value)))


def _is_async_callable(value: Any) -> bool:
    return (inspect.iscoroutinefunction(value)
            or inspect.iscoroutinefunction(type(value).__call__))


class _BridgedCallable:
    """Calls the wrapped function in the loop and blocks for its (wrapped) result."""

    def __init__(self, fn: Callable[..., Any], loop: _Loop,
                 wrap: Callable[[Any], Any]) -> None:
        self._fn = fn
        self._loop = loop
        self._wrap = wrap

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        awaited = _AWAITED_POSITIONS.get(getattr(self._fn, "__name__", ""), ())
        args = tuple(_unwrap(a, self._loop, i in awaited) for i, a in enumerate(args))
        kwargs = {k: _unwrap(v, self._loop, k in _AWAITED_KEYWORDS)
                  for k, v in kwargs.items()}
        return self._wrap(self._loop.run(_invoke(self._fn, args, kwargs)))

    def __repr__(self) -> str:
        return f"<bridged {self._fn!r}>"


#: Callbacks the asyncio client awaits when they return an awaitable (it calls them
#: from its own tasks): by method, their positions; anywhere, their keywords. Other
#: callables (progress reporters, prev_kv...) are called as they are, in the loop.
_AWAITED_POSITIONS = {"add_watch_callback": (1,), "add_watch_prefix_callback": (1,),
                      "stm": (0,)}
_AWAITED_KEYWORDS = frozenset(("callback", "apply", "on_expired", "on_lost"))


def _unwrap(value: Any, loop: _Loop, awaited: bool = False) -> Any:
    """An argument as the asyncio client takes it: a bridged object unwrapped. A
    plain callback the client awaits (a watch callback, on_expired, an STM
    function) is made a coroutine function that runs it in a worker thread, as the
    threaded client calls it from a thread of its own, so it may block or call the
    (bridged) client itself; what it is given is bridged in turn (an STM...)."""
    if isinstance(value, _Bridged):
        return value._target
    if (awaited and callable(value) and not isinstance(value, type)
            and not _is_async_callable(value) and not _is_aio_object(value)):
        return _in_thread(value, loop)
    return value


def _in_thread(fn: Callable[..., Any], loop: _Loop) -> Callable[..., Awaitable[Any]]:
    async def call_in_thread(*args: Any, **kwargs: Any) -> Any:
        args = tuple(_wrap(a, loop) for a in args)
        kwargs = {k: _wrap(v, loop) for k, v in kwargs.items()}
        return _unwrap(await asyncio.to_thread(fn, *args, **kwargs), loop)

    call_in_thread.__wrapped__ = fn  # type: ignore[attr-defined]
    return call_in_thread


class BridgedIterator(Iterator[Any]):
    """A lazy blocking iterator over an async iterator: each ``next()`` awaits one
    item in the bridge's loop. ``close()`` (or exhaustion) closes the async one."""

    def __init__(self, source: AsyncIterator[Any], loop: _Loop) -> None:
        self._source = source
        self._loop = loop
        self._done = False

    def __iter__(self) -> BridgedIterator:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        try:
            item = self._loop.run(self._source.__anext__())
        except StopAsyncIteration:
            self._done = True
            raise StopIteration from None
        return _wrap(item, self._loop)

    def __enter__(self) -> Any:
        """``with election.observe() as leaders:``: the async iterator's own
        ``async with``, when it has one."""
        enter = getattr(self._source, "__aenter__", None)
        if enter is None:
            return self
        entered = self._loop.run(enter())
        return self if entered is self._source else _wrap(entered, self._loop)

    def __exit__(self, *exc_info: Any) -> Any:
        exit_ = getattr(self._source, "__aexit__", None)
        if exit_ is None:
            self.close()
            return None
        self._done = True
        return self._loop.run(exit_(*exc_info))

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None and not self._loop.loop.is_closed():
            self._loop.run(aclose())

    def __getattr__(self, name: str) -> Any:
        # e.g. a watch's events iterator may carry attributes of its own
        return getattr(_Bridged(self._source, self._loop), name)


class AioBridge(_Bridged):
    """A blocking facade over an asyncio client (see the module docstring).

    ``AioBridge(factory)`` calls ``factory()`` (which returns an
    :class:`etcd3.aio.Etcd3Client`) and binds it to the bridge's own loop;
    :meth:`close_bridge` closes the client in that loop and stops the loop.
    """

    def __init__(self, client: Any, loop: Optional[_Loop] = None) -> None:
        super().__init__(client, loop or _Loop())

    @property
    def aio_client(self) -> Any:
        """The wrapped :class:`etcd3.aio.Etcd3Client`."""
        return self._target

    def run(self, coro: Awaitable[Any]) -> Any:
        """Run a coroutine in the bridge's loop (for tests that need the raw client)."""
        return self._loop.run(coro)

    def close_bridge(self) -> None:
        """Close the client (if the test did not) and stop the loop. Idempotent."""
        loop = self._loop
        if loop.loop.is_closed():
            return
        try:
            if not self._target.closed:
                loop.run(self._target.close())
        finally:
            loop.stop()
