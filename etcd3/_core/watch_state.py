"""What is watched, by whom, and from which revision (no I/O, no threads).

:class:`WatchSpec` says what a server watch selects; a :class:`ServerWatch` is one
watch on the server with its resume point and every :class:`Subscriber` it feeds.
The state machine that changes them is :class:`etcd3._core.watch_core.WatchCore`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple, Union

from ..etcdrpc import rpc_pb2 as pb
from ..events import WatchResponse

Callback = Callable[[Union[WatchResponse, BaseException]], None]
Item = Union[WatchResponse, BaseException]


@dataclass(frozen=True)
class WatchSpec:
    """What a server watch selects; equal specs may share one server watch."""

    key: bytes
    range_end: bytes = b""
    filters: Tuple[int, ...] = ()
    prev_kv: bool = False
    progress_notify: bool = False
    fragment: bool = False


class Subscriber:
    """One user-visible watch: a callback or an iterator, fed by one server watch.

    ``queue`` is the driver's inbox of an iterator subscriber (None for a callback);
    the core never reads it, it only tells the driver what to put there.
    """

    __slots__ = ("id", "callback", "queue", "watch", "cancelled", "finished",
                 "threshold", "pending", "max_queue", "routed", "delivered", "error",
                 "unreachable_timeout", "since", "revision")

    def __init__(self, sub_id: int, callback: Optional[Callback], q: Any,
                 max_queue: Optional[int] = None,
                 unreachable_timeout: Optional[float] = None, since: float = 0.0) -> None:
        self.id = sub_id
        self.callback = callback
        self.queue = q
        #: Responses a subscriber may leave unread (an iterator) or not yet handled (a
        #: callback) before it is failed.
        self.max_queue = max_queue
        # A callback's backlog is routed - delivered; each count has one writer (the
        # core, the driver's callback runner), so neither update can be lost.
        self.routed = 0
        self.delivered = 0
        self.watch: Optional[ServerWatch] = None
        self.cancelled = False  # by the user or close(): deliver nothing more
        self.finished = False  # no longer attached to a server watch
        # Joining a shared watch: None = revision not known yet (buffer in pending);
        # an int = drop events at or below it.
        self.threshold: Optional[int] = None
        self.pending: List[Item] = []
        #: Why the watch ended before etcd confirmed it (raised by ``subscribe``).
        self.error: Optional[BaseException] = None
        #: Seconds without any reachable member after which the watch ends with
        #: ConnectionFailedError (None: keep trying); counted from ``since`` at most.
        self.unreachable_timeout = unreachable_timeout
        self.since = since
        #: The revision of the last response handed to the consumer (0: none yet).
        self.revision = 0

    def took(self, item: Any) -> None:
        """The consumer is handed ``item`` now (a response or the error ending it)."""
        if type(item) is WatchResponse:
            events = item.events
            self.revision = events[-1].mod_revision if events else item.header.revision


class ServerWatch:
    """A watch on the server, with every subscriber it feeds and its resume point.

    ``ready`` is the driver's signal (an event) that the first creation was confirmed
    or that the watch ended; the core only says when to raise it.
    """

    __slots__ = ("id", "server_id", "spec", "next_rev", "subscribers", "joining",
                 "confirmed", "ready", "fragments", "stream_gen", "auth_retried",
                 "_callback_targets", "_queue_targets", "_bounded_callbacks", "_bounded_queues")

    def __init__(self, watch_id: int, spec: WatchSpec, start_revision: int) -> None:
        self.id = watch_id
        #: The id the server uses on the current stream (the proxy numbers its own).
        self.server_id = watch_id
        self.spec = spec
        self.next_rev = start_revision  # 0: "from now", until the creation response
        self.subscribers: List[Subscriber] = []
        self.joining: List[Subscriber] = []
        self.confirmed = False  # etcd confirmed a creation of this watch once
        self.ready: Any = None
        self.fragments: List[Any] = []
        self.stream_gen = -1
        self.auth_retried = False  # a refused create was retried with a new token
        self._callback_targets: Optional[Tuple[Subscriber, ...]] = None
        self._queue_targets: Optional[Tuple[Subscriber, ...]] = None
        self._bounded_callbacks: Tuple[Subscriber, ...] = ()
        self._bounded_queues = False

    def attach(self, sub: Subscriber) -> None:
        self.subscribers.append(sub)
        self._callback_targets = self._queue_targets = None

    def detach(self, sub: Subscriber) -> None:
        if sub in self.joining:
            self.joining.remove(sub)
        else:
            self.subscribers.remove(sub)
            self._callback_targets = self._queue_targets = None

    def targets(self) -> Tuple[Tuple[Subscriber, ...], Tuple[Subscriber, ...]]:
        """(callback subscribers, iterator subscribers) fed by this watch."""
        if self._callback_targets is None or self._queue_targets is None:
            self._callback_targets = tuple(s for s in self.subscribers if s.callback)
            self._queue_targets = tuple(s for s in self.subscribers if not s.callback)
            self._bounded_callbacks = tuple(s for s in self._callback_targets
                                            if s.max_queue is not None)
            self._bounded_queues = any(s.max_queue is not None for s in self._queue_targets)
        return self._callback_targets, self._queue_targets

    def bounded_callbacks(self) -> Tuple[Subscriber, ...]:
        """The callback subscribers with a ``max_queue`` (after :meth:`targets`)."""
        return self._bounded_callbacks

    def bounded_queues(self) -> bool:
        """True when an iterator subscriber has a ``max_queue`` (after :meth:`targets`)."""
        return self._bounded_queues

    def empty(self) -> bool:
        return not self.subscribers and not self.joining

    def create_request(self) -> Any:
        """The WatchCreateRequest that (re)creates this watch from ``next_rev``."""
        spec = self.spec
        return pb.WatchRequest(create_request=pb.WatchCreateRequest(
            key=spec.key, range_end=spec.range_end, start_revision=self.next_rev,
            progress_notify=spec.progress_notify,
            filters=list(spec.filters),  # type: ignore[arg-type]
            prev_kv=spec.prev_kv, fragment=spec.fragment, watch_id=self.id))
