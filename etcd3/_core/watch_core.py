"""The watch state machine: registration, coalescing, resume, compaction, cancel.

:class:`WatchCore` does no I/O and holds no lock: a driver feeds it what happened
(a user subscribed or cancelled; the stream opened or closed; a response arrived;
the members have been unreachable for a while) and carries out the actions each step
returns (see :mod:`etcd3._core.watch_actions`). Calls must not overlap: the driver
serializes them (the threaded one under its lock).

Identical watches (same :class:`WatchSpec`, no explicit start revision) share one
server watch. A subscriber joining a shared watch receives only events after the
store's revision at the time it joined (the driver reads it and calls
:meth:`WatchCore.settle_join`), exactly as if it had created its own watch then.

Server watch ids are chosen by the client (``watch_id`` in WatchCreateRequest, etcd >=
3.4), so responses map to watches directly; a refused create that comes back with id
-1 is matched by creation order. etcd's gRPC proxy ignores the requested id and numbers
the watches of each stream itself from 0, in the order it received the creates: the
client's ids start far above that (:data:`FIRST_WATCH_ID`), so an id below it marks a
stream whose server assigns its own (:attr:`WatchCore.ids_assigned_by_server`), and it
is mapped to the n-th create sent on that stream. Such a server (the proxy) ignores
progress requests too: the drivers refuse them and probe the proxy otherwise. Every
server watch resumes, on a new stream, from the revision after the last whole response
it delivered: nothing is lost or repeated.
"""

from __future__ import annotations

import collections
import itertools
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Deque,
    Dict,
    List,
    Optional,
    Protocol,
    Tuple,
)

from ..etcdrpc import rpc_pb2 as pb
from ..events import Event, WatchResponse, events_from_pb, header_from_pb
from .watch_actions import Actions, Dispatch, End, Enqueue, Reconnect, Send, Settle
from .watch_state import Item, ServerWatch, Subscriber, WatchSpec

if TYPE_CHECKING:
    from .stats import Stats

#: watch_id etcd uses for stream-wide progress responses (RequestProgress).
STREAM_WIDE = -1
#: The first watch id the client asks for: far above the ids etcd's gRPC proxy gives
#: out itself (0, 1, 2... per stream), so that the two never meet.
FIRST_WATCH_ID = 1 << 40
#: No watch of this client (a response to drop).
UNKNOWN = -2


class WatchErrors(Protocol):
    """How the driver turns etcd's words into exceptions (they carry gRPC codes)."""

    def refused(self, key: bytes, reason: str) -> BaseException:
        """The error of a create etcd refused with ``reason``."""

    def cancelled(self, reason: str) -> BaseException:
        """The error of a confirmed watch etcd cancelled with ``reason``."""

    def compacted(self, revision: int) -> BaseException:
        """The error of a watch whose next revision was compacted (at ``revision``)."""

    def overflow(self, sub: Subscriber) -> BaseException:
        """The error of a subscriber that fell more than ``sub.max_queue`` responses
        behind (and is cancelled)."""

    def token_may_be_stale(self, reason: str) -> bool:
        """True when a create refused with ``reason`` may succeed with a new token."""


class WatchCore:
    """Every watch of one client and the one stream they share (see the module
    docstring). ``backlog(sub)`` tells how many items wait in an iterator's inbox."""

    def __init__(self, errors: WatchErrors, backlog: Callable[[Subscriber], int], *,
                 coalesce: bool = True, recorder: Optional[Stats] = None) -> None:
        self.errors = errors
        self.backlog = backlog
        self.coalesce = coalesce
        self.subs: Dict[int, Subscriber] = {}
        self.watches: Dict[int, ServerWatch] = {}
        self.shared: Dict[WatchSpec, ServerWatch] = {}
        self.stream_open = False
        self._sub_ids = itertools.count(1)
        self._watch_ids = itertools.count(FIRST_WATCH_ID)
        self._gen = 0
        self._progress_wanted = 0  # stream-wide progress answers owed to users
        self._creating: Deque[int] = collections.deque()  # awaiting "created", in order
        #: The server of the current stream numbers watches itself (etcd's gRPC proxy).
        self.ids_assigned_by_server = False
        self._ids_honoured = False  # the stream's server took the ids asked for
        # Until then: the unanswered creates of this stream by the number the proxy
        # gives them (their position among the accepted creates), and the next number.
        self._by_position: Dict[int, ServerWatch] = {}
        self._next_position = 0
        self._by_server_id: Dict[int, ServerWatch] = {}  # when the server numbers them
        #: Told of resumes; reads :meth:`backlogs` (see :mod:`etcd3.observability`).
        self.recorder = recorder
        if recorder is not None:
            recorder.watch_source(self)

    # -- the user ------------------------------------------------------------------------

    def subscribe(self, sub: Subscriber, spec: WatchSpec, start_revision: Optional[int],
                  now: float) -> Tuple[bool, Actions]:
        """Register ``sub`` (it gets its id) on a new server watch, or on the shared
        one for ``spec``; returns (joined a shared watch, actions)."""
        sub.id = next(self._sub_ids)
        sub.since = now
        shareable = self.coalesce and not start_revision
        sw = self.shared.get(spec) if shareable else None
        joining = sw is not None
        actions: Actions = []
        if sw is None:
            sw = ServerWatch(next(self._watch_ids), spec, start_revision or 0)
            self.watches[sw.id] = sw
            if shareable:
                self.shared[spec] = sw
            sw.attach(sub)
            self._send_create(sw, actions)
        else:
            sw.joining.append(sub)
        sub.watch = sw
        self.subs[sub.id] = sub
        return joining, actions

    def settle_join(self, sub: Subscriber, revision: int) -> Actions:
        """``sub`` joined a shared watch when the store was at ``revision``: pass on
        what it buffered after that, and what comes from now on."""
        actions: Actions = []
        sw = sub.watch
        if sub.finished or sw is None:
            return actions
        sub.threshold = revision
        pending, sub.pending = sub.pending, []
        for item in pending:
            if sub in sw.joining:
                self._deliver_joining(sw, sub, item, actions)
            else:
                self._deliver_one(sub, item, actions)
        return actions

    def cancel(self, sub_id: int) -> Optional[Actions]:
        """Stop delivering to ``sub_id``; None when it was not active. The server
        watch is cancelled with its last subscriber."""
        sub = self.subs.pop(sub_id, None)
        if sub is None:
            return None
        actions: Actions = []
        sub.cancelled = sub.finished = True
        sw = sub.watch
        if sw is not None:
            sw.detach(sub)
            if sw.empty():
                self._drop(sw, actions)
        if sub.callback is None:
            actions.append(End(sub))
        return actions

    def end(self, sub: Subscriber, error: BaseException) -> Actions:
        """End ``sub`` alone with ``error``: delivered if its watch was confirmed, else
        left in ``sub.error`` for whoever waits for the confirmation."""
        actions: Actions = []
        sw = sub.watch
        self.subs.pop(sub.id, None)
        sub.finished = True
        confirmed = sw is not None and sw.confirmed
        if sw is not None:
            sw.detach(sub)
            if sw.empty():
                self._drop(sw, actions)
        if confirmed:
            self._deliver_one(sub, error, actions)
        else:
            sub.error = error
        return actions

    def request_progress(self) -> Actions:
        """Ask etcd for a progress notification on every watch (if a stream is open;
        the driver refuses first when it goes through etcd's gRPC proxy, which
        ignores such requests: see :attr:`ids_assigned_by_server`)."""
        if not self.stream_open:
            return []
        self._progress_wanted += 1
        return [Send(pb.WatchRequest(progress_request=pb.WatchProgressRequest()))]

    def unreachable_expired(self, now: float, down_since: float) -> List[Subscriber]:
        """The subscribers whose ``unreachable_timeout`` passed, no member having
        answered since ``down_since``."""
        return [sub for sub in self.subs.values() if sub.unreachable_timeout is not None
                and now - max(down_since, sub.since) >= sub.unreachable_timeout]

    def any_confirmed(self) -> bool:
        return any(sw.confirmed for sw in self.watches.values())

    def backlogs(self) -> List[Tuple[int, int, Optional[int]]]:
        """(lag, queue depth, max_queue) of every subscriber now: lag is how many
        revisions its watch received beyond the last response its consumer took (0
        until it took one); depth, the responses waiting for it (an unbounded
        callback's are not counted). Safe to call from any thread."""
        found = []
        for sub in list(self.subs.values()):
            sw = sub.watch
            if sub.callback is None:
                depth = self.backlog(sub) if sub.queue is not None else 0
            else:
                depth = max(sub.routed - sub.delivered, 0)
            lag = max(sw.next_rev - 1 - sub.revision, 0) if sw and sub.revision else 0
            found.append((lag, depth, sub.max_queue))
        return found

    # -- the stream ----------------------------------------------------------------------

    def stream_opened(self) -> Actions:
        """A new stream is open: re-create every watch where it left off."""
        self._gen += 1
        if self.recorder is not None and self._gen > 1:
            self.recorder.watches_resumed(sum(sw.confirmed for sw in self.watches.values()))
        self.stream_open = True
        self._creating = collections.deque()
        self._progress_wanted = 0
        self.ids_assigned_by_server = self._ids_honoured = False
        self._by_position, self._next_position = {}, 0
        self._by_server_id = {}
        actions: Actions = []
        for sw in self.watches.values():
            self._send_create(sw, actions)
        return actions

    def stream_closed(self) -> None:
        """The stream ended; watches wait, with their resume points, for the next."""
        self.stream_open = False

    def fail_all(self, error: BaseException) -> Actions:
        """End every watch with ``error`` (the stream cannot be opened at all)."""
        actions: Actions = []
        for sw in list(self.watches.values()):
            self._fail(sw, error, actions)
        return actions

    def fail_unconfirmed(self, error: BaseException) -> Actions:
        """End the watches not confirmed yet with ``error`` (confirmed ones resume)."""
        actions: Actions = []
        for sw in list(self.watches.values()):
            if not sw.confirmed:
                self._fail(sw, error, actions)
        return actions

    def receive(self, response: Any) -> Actions:
        """Handle one ``WatchResponse`` message of the stream."""
        actions: Actions = []
        watch_id = response.watch_id
        if response.created:
            watch_id = self._created_id(watch_id, actions)
        sw = self.watches.get(watch_id)
        if sw is None:
            sw = self._by_server_id.get(watch_id)
        if sw is None:
            if watch_id == STREAM_WIDE and not response.events:
                self._progress_all(response, actions)
            return actions  # leftovers of a cancelled watch
        if response.created:
            if response.canceled and not sw.auth_retried and \
                    self.errors.token_may_be_stale(response.cancel_reason):
                sw.auth_retried = True
                actions.append(Reconnect())
                return actions
            if not response.canceled:
                if not sw.next_rev:
                    sw.next_rev = response.header.revision + 1
                sw.auth_retried = False
                sw.confirmed = True
                actions.append(Settle(sw))
                return actions
            if not sw.confirmed:  # refused: subscribe() raises the reason
                self._fail(sw, self.errors.refused(sw.spec.key, response.cancel_reason),
                           actions)
                return actions
        if response.canceled or response.compact_revision:
            if response.compact_revision:
                error = self.errors.compacted(response.compact_revision)
            else:
                error = self.errors.cancelled(response.cancel_reason)
            self._fail(sw, error, actions)
            return actions
        if response.fragment:
            sw.fragments.extend(response.events)
            return actions
        pb_events = response.events
        if sw.fragments:
            pb_events = sw.fragments + list(pb_events)
            sw.fragments = []
        events: List[Event] = events_from_pb(pb_events)
        header = header_from_pb(response.header)
        if events:
            sw.next_rev = events[-1].mod_revision + 1
        else:
            sw.next_rev = max(sw.next_rev, header.revision + 1)
        self._route(sw, WatchResponse(header, events), actions)
        return actions

    def _created_id(self, watch_id: int, actions: Actions) -> int:
        """The client's id of the watch a creation response answers (:data:`UNKNOWN`
        when it is gone)."""
        creating = self._creating
        if watch_id == STREAM_WIDE:
            # A refused create may carry id -1; etcd answers creates in request order.
            if not creating:
                return STREAM_WIDE
            refused_id = creating.popleft()
            self._unnumber(refused_id)
            return refused_id
        if watch_id >= FIRST_WATCH_ID:
            if not self._ids_honoured:
                self._ids_honoured = True
                self._by_position.clear()
        else:  # numbered by the server: etcd's gRPC proxy
            self.ids_assigned_by_server = True
            sw = self._by_position.pop(watch_id, None)
            if sw is None:
                return UNKNOWN
            if self.watches.get(sw.id) is not sw:  # cancelled before the proxy confirmed
                actions.append(Send(pb.WatchRequest(
                    cancel_request=pb.WatchCancelRequest(watch_id=watch_id))))
                return UNKNOWN
            self._by_server_id[watch_id] = sw
            sw.server_id = watch_id
            watch_id = sw.id
        if watch_id in creating:
            creating.remove(watch_id)
        return watch_id

    def _unnumber(self, refused_id: int) -> None:
        """The create of ``refused_id`` was refused: the proxy numbers only the creates
        it accepts, so the ones sent after it move down by one."""
        positions = self._by_position
        position = next((p for p, sw in positions.items() if sw.id == refused_id), None)
        if position is None:
            return
        self._by_position = {p - (p > position): sw
                             for p, sw in positions.items() if p != position}
        self._next_position -= 1

    # -- the driver's end ----------------------------------------------------------------

    def close(self) -> Actions:
        """End every watch and forget them all (the client is closing)."""
        actions: Actions = []
        for sub in self.subs.values():
            sub.cancelled = sub.finished = True
            if sub.callback is None:
                actions.append(End(sub))
        for sw in self.watches.values():
            actions.append(Settle(sw))
        self._forget()
        return actions

    def abandon(self, error: BaseException) -> Actions:
        """Forget every watch, giving iterators ``error`` (callbacks hear nothing):
        the stream is another process's now (a forked child)."""
        actions: Actions = []
        for sub in self.subs.values():
            sub.finished = True
            if sub.callback is None:
                actions.append(Enqueue([sub], error))
        self._forget()
        return actions

    def _forget(self) -> None:
        self.subs.clear()
        self.watches.clear()
        self.shared.clear()
        self.stream_open = False

    # -- steps ---------------------------------------------------------------------------

    def _send_create(self, sw: ServerWatch, actions: Actions) -> None:
        if self.stream_open:
            sw.fragments = []
            sw.stream_gen = self._gen
            sw.server_id = sw.id
            self._creating.append(sw.id)
            if not self._ids_honoured:
                self._by_position[self._next_position] = sw
                self._next_position += 1
            actions.append(Send(sw.create_request()))

    def _drop(self, sw: ServerWatch, actions: Actions) -> None:
        self.watches.pop(sw.id, None)
        if self._by_server_id.get(sw.server_id) is sw:
            del self._by_server_id[sw.server_id]
        if self.shared.get(sw.spec) is sw:
            del self.shared[sw.spec]
        actions.append(Settle(sw))
        if self.stream_open and sw.stream_gen == self._gen:
            actions.append(Send(pb.WatchRequest(
                cancel_request=pb.WatchCancelRequest(watch_id=sw.server_id))))

    def _fail(self, sw: ServerWatch, error: BaseException, actions: Actions) -> None:
        # Before etcd confirmed the watch, its subscribers are still in subscribe(),
        # which raises the error; afterwards the iterator or callback receives it.
        confirmed = sw.confirmed
        for sub in sw.subscribers + sw.joining:
            sub.finished = True
            self.subs.pop(sub.id, None)
            if confirmed:
                self._deliver_one(sub, error, actions)
            else:
                sub.error = error
        sw.subscribers, sw.joining = [], []
        self._drop(sw, actions)

    def _overflow(self, sub: Subscriber, actions: Actions) -> None:
        """Fail a subscriber that fell ``max_queue`` responses behind: it still gets
        what it was sent, then the error; the others are not held back."""
        self.subs.pop(sub.id, None)
        sub.finished = True
        sw = sub.watch
        if sw is not None:
            sw.detach(sub)
            if sw.empty():
                self._drop(sw, actions)
        self._deliver_one(sub, self.errors.overflow(sub), actions)

    @staticmethod
    def _deliver_one(sub: Subscriber, item: Item, actions: Actions) -> None:
        # Consecutive deliveries of one item (say, to a thousand joiners) share one
        # action: the same calls and puts, in the same order, for less work.
        last = actions[-1] if actions else None
        if sub.callback is not None:
            if sub.max_queue is not None:
                sub.routed += 1
            if type(last) is Dispatch and last.item is item \
                    and type(last.subscribers) is list:
                last.subscribers.append(sub)
            else:
                actions.append(Dispatch([sub], item))
        elif type(last) is Enqueue and last.item is item and type(last.subscribers) is list:
            last.subscribers.append(sub)
        else:
            actions.append(Enqueue([sub], item))

    def _deliver_joining(self, sw: ServerWatch, sub: Subscriber, item: Item,
                         actions: Actions) -> None:
        threshold = sub.threshold
        if threshold is None:
            sub.pending.append(item)
            return
        if isinstance(item, WatchResponse):
            events = item.events
            if events:
                if events[0].mod_revision <= threshold:
                    kept = [e for e in events if e.mod_revision > threshold]
                    if not kept:
                        return
                    item = WatchResponse(item.header, kept, item.compact_revision)
            elif item.header.revision < threshold:
                return
            # From here on every response is newer than the join point.
            sw.joining.remove(sub)
            sw.attach(sub)
        self._deliver_one(sub, item, actions)

    def _route(self, sw: ServerWatch, response: WatchResponse, actions: Actions) -> None:
        callbacks, queues = sw.targets()
        bounded = sw.bounded_callbacks()
        if bounded:
            behind = [sub for sub in bounded
                      if sub.routed - sub.delivered >= (sub.max_queue or 0)]
            for sub in behind:
                self._overflow(sub, actions)
            if behind:
                callbacks, queues = sw.targets()
                bounded = sw.bounded_callbacks()
            for sub in bounded:
                sub.routed += 1
        if callbacks:
            actions.append(Dispatch(callbacks, response))
        if queues:
            if sw.bounded_queues():
                fed = []
                for sub in queues:
                    if sub.max_queue is not None and self.backlog(sub) >= sub.max_queue:
                        self._overflow(sub, actions)
                    else:
                        fed.append(sub)
                queues = tuple(fed)
            if queues:
                actions.append(Enqueue(queues, response))
        for sub in list(sw.joining):
            self._deliver_joining(sw, sub, response, actions)

    def _progress_all(self, response: Any, actions: Actions) -> None:
        # etcd 3.4 answers RequestProgress without checking that watchers are synced,
        # so a stream-wide notification is passed on but never moves a resume point.
        if not self._progress_wanted:
            return  # the answer to a watchdog probe
        self._progress_wanted -= 1
        wr = WatchResponse(header_from_pb(response.header), [])
        for sw in self.watches.values():
            if sw.confirmed:
                self._route(sw, wr, actions)
