"""Watch methods of the client (python-etcd3 names), on top of :mod:`etcd3._sync.watch_engine`.

Every watch of a client shares one bidirectional stream; identical watches share one
server watch; a broken stream is resumed without losing or repeating events. Callbacks
run on a dispatcher thread; iterators have their own queues.
"""

from __future__ import annotations

import queue
from typing import Any, Callable, Iterable, Iterator, Optional, Tuple, Union

from . import codec, exceptions
from ._core.deadline import Deadline
from ._core.watch_options import (
    checked_max_queue,
    checked_unreachable_timeout,
    confirm_timeout,
    prefix_end,
    start_revision_of,
    watch_spec,
)
from ._core.watch_state import Callback
from ._sync.base import ServiceBase
from ._sync.watch_engine import _DEFAULT, WatchEngine
from .events import Event, WatchResponse

KeyType = Union[str, bytes]
CancelFn = Callable[[], None]


class WatchMixin(ServiceBase):
    """Watch keys and ranges: iterators, callbacks and one-shot waits."""

    #: Share one server watch between identical watches (benchmarks turn it off).
    _watch_coalesce: bool = True
    #: The client's ``watch_unreachable_timeout`` (None: keep trying).
    _watch_unreachable_timeout: Optional[float] = None

    def _watch_engine(self) -> WatchEngine:
        return self._engine("watch", lambda: WatchEngine(
            self._transport, coalesce=self._watch_coalesce,
            unreachable_timeout=self._watch_unreachable_timeout))

    @property
    def _watch_engine_obj(self) -> Optional[WatchEngine]:
        """The watch engine if a watch was started (in this process)."""
        return self._existing_engine("watch")  # type: ignore[return-value]

    def _subscribe(self, key: KeyType, callback: Optional[Callback], *,
                   range_end: Optional[KeyType] = None, start_revision: Optional[int] = None,
                   progress_notify: bool = False, filters: Any = None, prev_kv: bool = False,
                   fragment: bool = False, max_queue: Optional[int] = None,
                   unreachable_timeout: Any = _DEFAULT,
                   confirm_within: Optional[float] = None) -> Any:
        """Subscribe; etcd must confirm the watch within the client timeout (or
        ``confirm_within`` seconds, when shorter)."""
        spec = watch_spec(key, range_end, filters, prev_kv, progress_notify, fragment)
        timeout = confirm_timeout(self._transport.timeout, confirm_within)
        if unreachable_timeout is not _DEFAULT:
            unreachable_timeout = checked_unreachable_timeout(unreachable_timeout)
        return self._watch_engine().subscribe(
            spec, start_revision=start_revision_of(start_revision), callback=callback,
            timeout=timeout, max_queue=max_queue,
            unreachable_timeout=unreachable_timeout)

    # -- callbacks ------------------------------------------------------------------------

    def add_watch_callback(self, key: KeyType, callback: Callback,
                           range_end: Optional[KeyType] = None,
                           start_revision: Optional[int] = None,
                           progress_notify: bool = False, filters: Any = None,
                           prev_kv: bool = False, fragment: bool = False,
                           max_queue: Optional[int] = None,
                           unreachable_timeout: Any = _DEFAULT) -> int:
        """Call ``callback(WatchResponse)`` for every change of ``key`` (or the range).

        Returns once etcd has confirmed the watch: every later change is delivered,
        in order, exactly once, across reconnects and failovers. A watch etcd refuses
        raises here, with etcd's reason, and nothing stays registered. The callback
        runs on the client's dispatcher thread (it may add or cancel watches); when
        the watch ends in error later it is called once with the exception (e.g.
        :class:`~etcd3.exceptions.RevisionCompactedError` for a ``start_revision``
        compacted away, as in python-etcd3). Exceptions it raises are logged to the
        ``etcd3`` logger.

        While no member can be reached the watch keeps trying (a WARNING is logged
        after 10 s, then every minute); see ``unreachable_timeout``.

        :param range_end: watch ``[key, range_end)``.
        :param start_revision: replay from this revision (never shared with others).
        :param progress_notify: also receive empty progress responses.
        :param filters: ``'noput'`` / ``'nodelete'`` or
            ``WatchCreateRequest.NOPUT`` / ``NODELETE`` values.
        :param prev_kv: events carry the previous key-value (``event.prev_value``).
        :param fragment: let etcd split huge responses (reassembled here).
        :param max_queue: responses that may wait for this callback (all callbacks run
            on one thread, so a slow one holds the others back); past it the callback
            gets the ones already waiting, then
            :class:`~etcd3.exceptions.WatchOverflowError`, and the watch ends. None
            (the default): no limit.
        :param unreachable_timeout: seconds without any reachable etcd member after
            which the watch ends: the callback (or iterator) gets
            :class:`~etcd3.exceptions.ConnectionFailedError` saying for how long and
            which endpoints were tried. Default: the client's
            ``watch_unreachable_timeout`` (None: keep trying, as etcd's Go client).
        :returns: the watch id for :meth:`cancel_watch` (stable for the watch's life).
        :raises WatchTimedOut: etcd answered but did not confirm the watch within the
            client timeout.
        :raises ConnectionFailedError: no member could be reached within the client
            timeout (or ``unreachable_timeout``), or the TLS handshake failed.
        :raises AuthError: etcd refused the watch (e.g.
            :class:`~etcd3.exceptions.PermissionDeniedError`) or the client's
            credentials (:class:`~etcd3.exceptions.AuthenticationFailedError`).
        :raises ValueError: ``max_queue`` is not a positive int or None.
        """
        return int(self._subscribe(key, callback, range_end=range_end,
                                   start_revision=start_revision,
                                   progress_notify=progress_notify, filters=filters,
                                   prev_kv=prev_kv, fragment=fragment,
                                   max_queue=checked_max_queue(max_queue),
                                   unreachable_timeout=unreachable_timeout).id)

    def add_watch_prefix_callback(self, key_prefix: KeyType, callback: Callback,
                                  **kwargs: Any) -> int:
        """:meth:`add_watch_callback` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return self.add_watch_callback(key_prefix, callback, **kwargs)

    def cancel_watch(self, watch_id: int) -> None:
        """Stop the watch ``watch_id`` (no-op when it already ended)."""
        engine = self._watch_engine_obj
        if engine is not None:
            engine.cancel(watch_id)

    def request_progress(self) -> None:
        """Ask etcd to send a progress notification to every watch of this client.

        :raises UnsupportedByProxyError: the watch stream goes through etcd's gRPC
            proxy, which ignores such requests (watch with ``progress_notify=True``).
        """
        engine = self._watch_engine_obj
        if engine is not None:
            engine.request_progress()

    # -- iterators ------------------------------------------------------------------------

    def _iterate(self, key: KeyType, kwargs: Any) -> Tuple[Iterator[WatchResponse], CancelFn]:
        max_queue = checked_max_queue(kwargs.pop("max_queue", None))
        sub = self._subscribe(key, None, max_queue=max_queue, **kwargs)
        engine = self._watch_engine()

        def cancel() -> None:
            engine.cancel(sub.id)

        return sub.iterate(), cancel

    def watch_response(self, key: KeyType, **kwargs: Any
                       ) -> Tuple[Iterator[WatchResponse], CancelFn]:
        """Watch ``key``; returns ``(responses_iterator, cancel)``.

        The iterator yields :class:`~etcd3.events.WatchResponse` objects and raises the
        error that ends the watch; ``cancel()`` (or closing the client) ends it.
        Keyword arguments are those of :meth:`add_watch_callback`, plus ``max_queue``:
        the unread responses this iterator may hold (None, the default: no limit);
        past it the iterator gets :class:`~etcd3.exceptions.WatchOverflowError` after
        what it already holds, and other watchers are not held back.
        """
        return self._iterate(key, kwargs)

    def watch_prefix_response(self, key_prefix: KeyType, **kwargs: Any
                              ) -> Tuple[Iterator[WatchResponse], CancelFn]:
        """:meth:`watch_response` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return self._iterate(key_prefix, kwargs)

    def watch(self, key: KeyType, **kwargs: Any) -> Tuple[Iterator[Event], CancelFn]:
        """Watch ``key``; returns ``(events_iterator, cancel)`` as python-etcd3 does.

        Returns once etcd has confirmed the watch; a watch etcd refuses (permission
        denied, wrong password, ...) raises here. The iterator yields
        :class:`~etcd3.events.PutEvent` / :class:`~etcd3.events.DeleteEvent` one by
        one, and raises the error that ends the watch later (e.g.
        :class:`~etcd3.exceptions.RevisionCompactedError` for a compacted
        ``start_revision``, or :class:`~etcd3.exceptions.ConnectionFailedError` past
        ``unreachable_timeout``). ``cancel()`` ends it promptly. Keyword arguments and
        errors: see :meth:`add_watch_callback`.
        """
        responses, cancel = self._iterate(key, kwargs)
        return _events_of(responses), cancel

    def watch_prefix(self, key_prefix: KeyType, **kwargs: Any
                     ) -> Tuple[Iterator[Event], CancelFn]:
        """:meth:`watch` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return self.watch(key_prefix, **kwargs)

    def watch_once(self, key: KeyType, timeout: Optional[float] = None,
                   **kwargs: Any) -> Event:
        """Wait for the next change of ``key`` and return its event.

        :raises WatchTimedOut: nothing changed within ``timeout`` seconds.
        :raises ConnectionFailedError: no etcd member answered within ``timeout`` (or
            the client timeout, when shorter).
        :raises Etcd3Exception: etcd refused the watch, or it ended in error.
        :raises ValueError: a negative ``timeout``. :raises TypeError: not a number.
        """
        return self._first_response(key, timeout, kwargs, with_events=True).events[0]

    def watch_prefix_once(self, key_prefix: KeyType, timeout: Optional[float] = None,
                          **kwargs: Any) -> Event:
        """:meth:`watch_once` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return self.watch_once(key_prefix, timeout=timeout, **kwargs)

    def watch_once_response(self, key: KeyType, timeout: Optional[float] = None,
                            **kwargs: Any) -> WatchResponse:
        """Wait for the watch's first response (its ``events``, and a progress
        notification's empty one when ``progress_notify=True``) and return it whole:
        every event of the revision(s) it carries, with its ``header``.

        :raises WatchTimedOut: no response within ``timeout`` seconds.
        :raises Etcd3Exception: the watch ended in error.
        :raises ValueError: a negative ``timeout``. :raises TypeError: not a number.
        """
        return self._first_response(key, timeout, kwargs, with_events=False)

    def watch_prefix_once_response(self, key_prefix: KeyType,
                                   timeout: Optional[float] = None,
                                   **kwargs: Any) -> WatchResponse:
        """:meth:`watch_once_response` for every key starting with ``key_prefix``."""
        kwargs["range_end"] = prefix_end(key_prefix)
        return self.watch_once_response(key_prefix, timeout=timeout, **kwargs)

    def _first_response(self, key: KeyType, timeout: Optional[float], kwargs: Any, *,
                        with_events: bool) -> WatchResponse:
        """The first response of a new watch (with events, if ``with_events``); the
        watch is cancelled before returning."""
        deadline = Deadline.after(timeout)
        # A one-shot wait never outlasts its own timeout, even while no member answers.
        sub = self._subscribe(key, None, confirm_within=timeout, **kwargs)
        try:
            q = sub.queue
            while True:
                remaining = deadline.remaining()
                if remaining is not None and remaining <= 0:
                    raise exceptions.WatchTimedOut(
                        f"no change of {codec.to_bytes(key)!r} within {timeout} s")
                try:
                    item = q.get(timeout=remaining)
                except queue.Empty:
                    continue
                if isinstance(item, BaseException):
                    raise item
                if not isinstance(item, WatchResponse):
                    raise exceptions.ClientClosedError("this etcd3 client has been closed")
                if item.events or not with_events:
                    return item
        finally:
            self._watch_engine().cancel(sub.id)


def _events_of(responses: Iterable[WatchResponse]) -> Iterator[Event]:
    for response in responses:
        yield from response.events


__all__ = ["WatchMixin", "checked_unreachable_timeout"]
