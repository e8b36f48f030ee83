"""Watch calls of the asyncio client: the threaded :mod:`etcd3.watch`'s methods, same
names, arguments and results, awaited; iterators are async iterators and ``cancel``
is awaited.

Every watch of a client shares one bidirectional stream; identical watches share one
server watch; a broken stream is resumed without losing or repeating events (see
:mod:`etcd3.aio._watch_engine`).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import weakref
from typing import Any, Awaitable, Callable, Deque, Optional, Tuple

from .. import codec, exceptions
from .._core.deadline import Deadline
from .._core.watch_options import (
    KeyType,
    checked_max_queue,
    checked_unreachable_timeout,
    confirm_timeout,
    prefix_end,
    start_revision_of,
    watch_spec,
)
from ..events import Event, WatchResponse
from ._base import AioServiceBase
from ._watch_engine import DEFAULT, END, AioCallback, AioSubscriber, AioWatchEngine, WatchResponses

CancelFn = Callable[[], Awaitable[None]]

__all__ = ["AioWatchMixin", "CancelFn", "WatchEvents", "WatchResponses"]


class WatchEvents:
    """``async for event in ...``: the events of a watch, one by one (see
    :class:`~etcd3.aio._watch_engine.WatchResponses` for how it ends; ``await
    aclose()``, e.g. from ``contextlib.aclosing(events)``, cancels the watch)."""

    def __init__(self, responses: WatchResponses) -> None:
        self._responses = responses
        self._pending: Deque[Event] = collections.deque()

    def __aiter__(self) -> WatchEvents:
        return self

    async def aclose(self) -> None:
        """Cancel the watch and end this iterator (idempotent; see
        :meth:`WatchResponses.aclose`)."""
        self._pending.clear()
        await self._responses.aclose()

    async def __anext__(self) -> Event:
        while not self._pending:
            response = await self._responses.__anext__()
            self._pending.extend(response.events)
        return self._pending.popleft()


class AioWatchMixin(AioServiceBase):
    """Watch methods of :class:`~etcd3.aio.Etcd3Client`."""

    #: Share one server watch between identical watches (benchmarks turn it off).
    _watch_coalesce: bool = True
    #: The client's ``watch_unreachable_timeout`` (None: keep trying).
    _watch_unreachable_timeout: Optional[float] = None

    def _watch_engine(self) -> AioWatchEngine:
        return self._engine("watch", lambda: AioWatchEngine(
            self._transport, coalesce=self._watch_coalesce,
            unreachable_timeout=self._watch_unreachable_timeout))

    @property
    def _watch_engine_obj(self) -> Optional[AioWatchEngine]:
        """The watch engine if a watch was started (in this loop)."""
        return self._existing_engine("watch")  # type: ignore[return-value]

    async def _subscribe(self, engine: AioWatchEngine, key: KeyType,
                         callback: Optional[AioCallback], *,
                         range_end: Optional[KeyType] = None,
                         start_revision: Optional[int] = None,
                         progress_notify: bool = False, filters: Any = None,
                         prev_kv: bool = False, fragment: bool = False,
                         max_queue: Optional[int] = None,
                         unreachable_timeout: Any = DEFAULT,
                         confirm_within: Optional[float] = None) -> AioSubscriber:
        """Subscribe; etcd must confirm the watch within the client timeout (or
        ``confirm_within`` seconds, when shorter)."""
        spec = watch_spec(key, range_end, filters, prev_kv, progress_notify, fragment)
        start = start_revision_of(start_revision)
        if unreachable_timeout is not DEFAULT:
            unreachable_timeout = checked_unreachable_timeout(unreachable_timeout)
        return await engine.subscribe(
            spec, start_revision=start, callback=callback,
            timeout=confirm_timeout(self._transport.timeout, confirm_within),
            max_queue=checked_max_queue(max_queue), unreachable_timeout=unreachable_timeout)

    # -- callbacks ------------------------------------------------------------------------

    async def add_watch_callback(self, key: KeyType, callback: AioCallback,
                                 range_end: Optional[KeyType] = None,
                                 start_revision: Optional[int] = None,
                                 progress_notify: bool = False, filters: Any = None,
                                 prev_kv: bool = False, fragment: bool = False,
                                 max_queue: Optional[int] = None,
                                 unreachable_timeout: Any = DEFAULT) -> int:
        """Call ``callback(WatchResponse)`` for every change of ``key`` (or the range);
        ``callback`` may be a plain function or a coroutine function (awaited).

        Returns once etcd has confirmed the watch: every later change is delivered,
        in order, exactly once, across reconnects and failovers. A watch etcd refuses
        raises here, with etcd's reason, and nothing stays registered (nor does
        anything when the awaiting task is cancelled). Callbacks run one at a time on
        the client's dispatcher task, in the event loop (a plain function must not
        block; a slow coroutine holds back the other callbacks, never the iterators);
        they may add or cancel watches. When the watch
        ends in error later the callback is called once with the exception (e.g.
        :class:`~etcd3.exceptions.RevisionCompactedError`). Exceptions it raises are
        logged to the ``etcd3`` logger.

        Arguments as :meth:`etcd3.Etcd3Client.add_watch_callback`: ``range_end``,
        ``start_revision``, ``progress_notify``, ``filters`` (``'noput'`` /
        ``'nodelete'``), ``prev_kv``, ``fragment``, ``max_queue`` (responses that may
        wait for this callback; past it the callback gets
        :class:`~etcd3.exceptions.WatchOverflowError` and the watch ends),
        ``unreachable_timeout`` (seconds without any reachable member after which
        the watch ends with :class:`~etcd3.exceptions.ConnectionFailedError`;
        default: the client's ``watch_unreachable_timeout``).

        :returns: the watch id for :meth:`cancel_watch`.
        :raises WatchTimedOut: etcd answered but did not confirm the watch within the
            client timeout.
        :raises ConnectionFailedError: no member could be reached within the client
            timeout (or ``unreachable_timeout``).
        :raises AuthError: etcd refused the watch (e.g.
            :class:`~etcd3.exceptions.PermissionDeniedError`).
        :raises ValueError: bad ``max_queue``, ``filters``, ``unreachable_timeout``.
        :raises ClientClosedError: the client is closed.
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        sub = await self._subscribe(
            self._watch_engine(), key, callback, range_end=range_end,
            start_revision=start_revision, progress_notify=progress_notify,
            filters=filters, prev_kv=prev_kv, fragment=fragment, max_queue=max_queue,
            unreachable_timeout=unreachable_timeout)
        return int(sub.id)

    async def add_watch_prefix_callback(self, key_prefix: KeyType, callback: AioCallback,
                                        **kwargs: Any) -> int:
        """:meth:`add_watch_callback` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return await self.add_watch_callback(key_prefix, callback, **kwargs)

    async def cancel_watch(self, watch_id: int) -> None:
        """Stop the watch ``watch_id`` (no-op when it already ended); etcd's watch is
        cancelled when no other watch of this client shares it."""
        engine = self._watch_engine_obj
        if engine is not None:
            engine.cancel(watch_id)

    async def request_progress(self) -> None:
        """Ask etcd to send a progress notification to every watch of this client.

        :raises UnsupportedByProxyError: the watch stream goes through etcd's gRPC
            proxy, which ignores such requests (watch with ``progress_notify=True``).
        """
        engine = self._watch_engine_obj
        if engine is not None:
            engine.request_progress()

    # -- iterators ------------------------------------------------------------------------

    async def _iterate(self, key: KeyType, kwargs: Any) -> Tuple[WatchResponses, CancelFn]:
        engine = self._watch_engine()
        sub = await self._subscribe(engine, key, None, **kwargs)

        async def cancel() -> None:
            engine.cancel(sub.id)

        responses = WatchResponses(sub, functools.partial(engine.cancel, sub.id))
        # An iterator nobody can read any more must not keep its watch (and a growing
        # inbox) for the client's life: cancel it, later, on the loop.
        weakref.finalize(responses, _cancel_soon, asyncio.get_running_loop(), engine,
                         sub.id)
        return responses, cancel

    async def watch_response(self, key: KeyType, **kwargs: Any
                             ) -> Tuple[WatchResponses, CancelFn]:
        """Watch ``key``; returns ``(responses, cancel)``: ``async for response in
        responses`` yields :class:`~etcd3.events.WatchResponse` objects and raises
        the error that ends the watch; ``await cancel()`` (or closing the client)
        ends it. Keyword arguments are those of :meth:`add_watch_callback`;
        ``max_queue`` bounds the unread responses (past it the iterator gets
        :class:`~etcd3.exceptions.WatchOverflowError` after what it holds)."""
        return await self._iterate(key, kwargs)

    async def watch_prefix_response(self, key_prefix: KeyType, **kwargs: Any
                                    ) -> Tuple[WatchResponses, CancelFn]:
        """:meth:`watch_response` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return await self._iterate(key_prefix, kwargs)

    async def watch(self, key: KeyType, **kwargs: Any) -> Tuple[WatchEvents, CancelFn]:
        """Watch ``key``; returns ``(events, cancel)``: ``async for event in events``
        yields :class:`~etcd3.events.PutEvent` / :class:`~etcd3.events.DeleteEvent`
        one by one and raises the error that ends the watch (e.g.
        :class:`~etcd3.exceptions.RevisionCompactedError` for a compacted
        ``start_revision``); ``await cancel()`` or closing the client ends it.

        Returns once etcd has confirmed the watch; a watch etcd refuses raises here.
        Keyword arguments and errors: see :meth:`add_watch_callback`.
        """
        responses, cancel = await self._iterate(key, kwargs)
        return WatchEvents(responses), cancel

    async def watch_prefix(self, key_prefix: KeyType, **kwargs: Any
                           ) -> Tuple[WatchEvents, CancelFn]:
        """:meth:`watch` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return await self.watch(key_prefix, **kwargs)

    async def watch_once(self, key: KeyType, timeout: Optional[float] = None,
                         **kwargs: Any) -> Event:
        """Wait for the next change of ``key`` and return its event.

        :raises WatchTimedOut: nothing changed within ``timeout`` seconds.
        :raises ConnectionFailedError: no etcd member answered within ``timeout`` (or
            the client timeout, when shorter).
        :raises Etcd3Exception: etcd refused the watch, or it ended in error.
        :raises ValueError: a negative ``timeout``. :raises TypeError: not a number.
        """
        response = await self._first_response(key, timeout, kwargs, with_events=True)
        return response.events[0]

    async def watch_prefix_once(self, key_prefix: KeyType, timeout: Optional[float] = None,
                                **kwargs: Any) -> Event:
        """:meth:`watch_once` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return await self.watch_once(key_prefix, timeout=timeout, **kwargs)

    async def watch_once_response(self, key: KeyType, timeout: Optional[float] = None,
                                  **kwargs: Any) -> WatchResponse:
        """Wait for the watch's first response (with events, or a progress
        notification's empty one when ``progress_notify=True``) and return it whole.

        :raises WatchTimedOut: no response within ``timeout`` seconds.
        :raises Etcd3Exception: the watch ended in error.
        :raises ValueError: a negative ``timeout``. :raises TypeError: not a number.
        """
        return await self._first_response(key, timeout, kwargs, with_events=False)

    async def watch_prefix_once_response(self, key_prefix: KeyType,
                                         timeout: Optional[float] = None,
                                         **kwargs: Any) -> WatchResponse:
        """:meth:`watch_once_response` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return await self.watch_once_response(key_prefix, timeout=timeout, **kwargs)

    async def _first_response(self, key: KeyType, timeout: Optional[float], kwargs: Any,
                              *, with_events: bool) -> WatchResponse:
        """The first response of a new watch (with events, if ``with_events``); the
        watch is cancelled before returning."""
        deadline = Deadline.after(timeout)
        engine = self._watch_engine()
        # A one-shot wait never outlasts its own timeout, even while no member answers.
        sub = await self._subscribe(engine, key, None, confirm_within=timeout, **kwargs)
        try:
            inbox = sub.queue
            while True:
                remaining = deadline.remaining()
                if remaining is not None and remaining <= 0:
                    raise exceptions.WatchTimedOut(
                        f"no change of {codec.to_bytes(key)!r} within {timeout} s")
                try:
                    item = await asyncio.wait_for(inbox.get(), remaining)
                except asyncio.TimeoutError:
                    continue
                if isinstance(item, BaseException):
                    raise item
                if item is END or not isinstance(item, WatchResponse):
                    raise exceptions.ClientClosedError("this etcd3 client has been closed")
                if item.events or not with_events:
                    return item
        finally:
            engine.cancel(sub.id)


def _cancel_soon(loop: asyncio.AbstractEventLoop, engine: AioWatchEngine,
                 sub_id: int) -> None:
    """Cancel subscriber ``sub_id`` on ``loop`` at its next turn (called by a
    finalizer: from any thread, at any point of the loop's own code)."""
    if loop.is_closed():
        return
    try:
        loop.call_soon_threadsafe(engine.cancel, sub_id)
    except RuntimeError:  # the loop closed meanwhile
        pass
