"""The watch engine: one multiplexed Watch stream per client, coalesced and resumable.

Threads (started on the first watch, ended by :meth:`WatchEngine.close`):

- the *reader* opens the stream, sends the create requests of every live server watch,
  decodes each response once and routes it to the subscribers; when the stream breaks
  it reopens it (another endpoint first, with backoff) and re-creates every server
  watch from the revision after the last whole response it delivered;
- the *dispatcher* runs user callbacks, so a slow or failing callback never blocks the
  network, and a callback may add or cancel watches;
- the *watchdog* asks a silent stream for a progress notification and reopens it
  elsewhere when the member does not answer (a frozen member keeps its TCP socket);
  while no member answers at all it logs a WARNING (after 10 s, then each minute) and
  ends the subscribers whose ``unreachable_timeout`` has passed.

A watch counts as created only once etcd confirmed it: a create etcd refuses (or a
stream that cannot be opened for a reason other than the network, e.g. a wrong
password) makes ``subscribe()`` raise, and nothing stays registered. Errors after the
confirmation go to the subscriber (iterator or callback).

Iterator subscribers (``watch()``, ``watch_once()``) get their own queue, filled by
the reader, so they never wait behind callbacks.

Identical watches (same :class:`WatchSpec`, no explicit start revision) share one
server watch. A subscriber joining a shared watch receives only events after the
store's revision at the time it joined (read with a linearizable Range), exactly as
if it had created its own watch then.

Server watch ids are chosen by the client (``watch_id`` in WatchCreateRequest, etcd >=
3.4), so responses map to watches directly; a refused create that comes back with id
-1 is matched by creation order. Users only see subscriber ids, which never change
across resumes.
"""

from __future__ import annotations

import collections
import itertools
import logging
import queue
import re
import threading
import time
from typing import Any, Deque, Dict, List, Optional

import grpc

from .. import exceptions
from .._core.watch_state import (
    END,
    Callback,
    Item,
    ServerWatch,
    Subscriber,
    WatchSpec,
    request_iterator,
)
from .._grpc import errors as _errors
from .._grpc import rpc as _rpc
from ..etcdrpc import rpc_pb2 as pb
from ..events import Event, WatchResponse, events_from_pb, header_from_pb
from . import forksafe as _forksafe

log = logging.getLogger("etcd3")

_BACKOFF_START = 0.01
_BACKOFF_FACTOR = 1.5
_BACKOFF_CAP = 1.0
_WATCHDOG_TICK = 1.0
_SILENCE_BEFORE_PROBE = 3.0
_PROBE_TIMEOUT = 3.0
#: Seconds without a working stream before a WARNING, and between later ones.
_UNREACHABLE_WARN_AFTER = 10.0
_UNREACHABLE_WARN_EVERY = 60.0
#: watch_id etcd uses for stream-wide progress responses (RequestProgress).
_STREAM_WIDE = -1
#: Cancel reasons of a create refused for its token.
_TOKEN_MESSAGES = _errors.AUTH_TOKEN_MESSAGES
#: "The engine's default" for a subscriber's unreachable_timeout.
_DEFAULT: Any = object()


def _reason_message(reason: str) -> str:
    """etcd's error text in a cancel reason ("rpc error: code = X desc = etcdserver: ...")."""
    _, _, desc = reason.rpartition("desc = ")
    return _errors.etcd_message(desc)


def _reason_code(reason: str) -> Optional[grpc.StatusCode]:
    """The gRPC status in a cancel reason ("rpc error: code = PermissionDenied ...")."""
    match = re.search(r"code = (\w+)", reason)
    if match is None:
        return None
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", match.group(1)).upper()
    return getattr(grpc.StatusCode, "CANCELLED" if name == "CANCELED" else name, None)


def _with_code(error: exceptions.Etcd3Exception, reason: str) -> exceptions.Etcd3Exception:
    error.grpc_code = _reason_code(reason)
    return error


def _refusal_error(key: bytes, reason: str, anonymous: bool) -> exceptions.Etcd3Exception:
    """The error of a create etcd refused (``created`` and ``canceled`` at once)."""
    message = _reason_message(reason) or "no reason given"
    cls = _errors.exception_class_for(message)
    text = f"etcd refused the watch on {key!r}: {message}"
    if anonymous and message in _errors.NO_CREDENTIALS_HINTS:
        text += f" ({_errors.NO_CREDENTIALS_HINTS[message]})"
    if cls is exceptions.RevisionCompactedError:
        return exceptions.RevisionCompactedError(None, message=text)
    return _with_code(cls(text), reason)


def _cancel_error(reason: str) -> exceptions.Etcd3Exception:
    message = _reason_message(reason)
    cls = _errors.exception_class_for(message)
    if cls is exceptions.RevisionCompactedError:
        return exceptions.RevisionCompactedError(None, message=reason)
    return _with_code(cls(f"the watch was cancelled by etcd: {reason or 'no reason given'}"),
                      reason)


class WatchEngine:
    """Every watch of one client. Thread-safe; see the module docstring."""

    def __init__(self, transport: Any, *, coalesce: bool = True,
                 unreachable_timeout: Optional[float] = None) -> None:
        self._transport = transport
        self.coalesce = coalesce
        #: Default ``unreachable_timeout`` of new subscribers (None: keep trying).
        self.unreachable_timeout = unreachable_timeout
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._closed = threading.Event()
        self._sub_ids = itertools.count(1)
        self._watch_ids = itertools.count(1)
        self._subs: Dict[int, Subscriber] = {}
        self._watches: Dict[int, ServerWatch] = {}
        self._shared: Dict[WatchSpec, ServerWatch] = {}
        self._requests: Optional[queue.SimpleQueue[Any]] = None
        self._call: Any = None
        self._gen = 0
        self._token_rejected = False
        self._stalled = False  # set by the watchdog: the member stopped answering
        self._last_seen = 0.0
        self._attached_at = 0.0
        self._probe_sent = 0.0
        self._progress_wanted = 0  # stream-wide progress answers owed to users
        self._creating: Deque[int] = collections.deque()  # awaiting "created", in order
        # Outage bookkeeping (reader thread writes, watchdog and subscribe read): when
        # the stream was last without an answering member (None: it has one), the
        # endpoints tried since, gRPC's words for the last failure, the last WARNING.
        self._down_since: Optional[float] = None
        self._down_tried: List[str] = []
        self._down_error = ""
        self._down_warned = 0.0
        #: The endpoint (``host:port``) the stream is open to; None while it is down.
        self.endpoint: Optional[str] = None
        self._fork_paused = False  # streams ended for an os.fork() (see _forksafe)
        _forksafe.register_stream_owner(self)
        self._dispatch: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: List[threading.Thread] = []

    # -- subscribing --------------------------------------------------------------------

    def subscribe(self, spec: WatchSpec, *, start_revision: Optional[int] = None,
                  callback: Optional[Callback] = None,
                  timeout: Optional[float] = None,
                  max_queue: Optional[int] = None,
                  unreachable_timeout: Any = _DEFAULT) -> Subscriber:
        """Add a subscriber; returns once etcd has confirmed the watch.

        Without ``callback`` the subscriber gets a queue (see :meth:`Subscriber.iterate`).
        A queue holding ``max_queue`` unread responses, or a callback with as many
        responses not yet handled (None: no limit), fails the subscriber with
        :class:`~etcd3.exceptions.WatchOverflowError`. After ``unreachable_timeout``
        seconds in which no member answers the stream (default: the engine's; None:
        keep trying) the subscriber ends with
        :class:`~etcd3.exceptions.ConnectionFailedError`.
        A create etcd refuses raises its reason here and leaves nothing registered.
        :raises WatchTimedOut: etcd answered the stream but did not confirm the watch
            within ``timeout``.
        :raises ConnectionFailedError: no member answered the stream within
            ``timeout`` (or ``unreachable_timeout``).
        :raises Etcd3Exception: etcd refused the watch (e.g.
            :class:`~etcd3.exceptions.PermissionDeniedError`), or the stream could not
            be opened (e.g. :class:`~etcd3.exceptions.AuthenticationFailedError`).
        :raises ClientClosedError: the client is closed.
        """
        if unreachable_timeout is _DEFAULT:
            unreachable_timeout = self.unreachable_timeout
        sub = Subscriber(0, callback, None if callback else queue.SimpleQueue(), max_queue,
                         unreachable_timeout)
        shareable = self.coalesce and not start_revision
        with self._lock:
            if self._closed.is_set():
                raise exceptions.ClientClosedError("this etcd3 client has been closed")
            self._start_threads()
            sub.id = next(self._sub_ids)
            sw = self._shared.get(spec) if shareable else None
            joining = sw is not None
            if sw is None:
                sw = ServerWatch(next(self._watch_ids), spec, start_revision or 0)
                self._watches[sw.id] = sw
                if shareable:
                    self._shared[spec] = sw
                sw.attach(sub)
                self._send_create(sw)
                self._wakeup.notify_all()
            else:
                sw.joining.append(sub)
            sub.watch = sw
            self._subs[sub.id] = sub
        try:
            self._await_confirmation(sub, sw, timeout)
            if joining:
                self._settle_join(sub, self._current_revision(spec.key))
        except BaseException:
            self.cancel(sub.id)
            raise
        return sub

    def _await_confirmation(self, sub: Subscriber, sw: ServerWatch,
                            timeout: Optional[float]) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if sub.unreachable_timeout is not None:
                # The watchdog may end this subscriber alone (sw stays unconfirmed).
                wait = _WATCHDOG_TICK if wait is None else min(wait, _WATCHDOG_TICK)
            if sw.ready.wait(wait) or sub.error is not None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise self._unconfirmed_error(sw.spec.key, timeout)
        if self._closed.is_set():
            raise exceptions.ClientClosedError("this etcd3 client has been closed")
        if sub.error is not None:
            raise sub.error

    def _unconfirmed_error(self, key: bytes, timeout: Optional[float]
                           ) -> exceptions.Etcd3Exception:
        with self._lock:
            down = self._down_since is not None
            outage = self._outage_words()
        if down:
            return exceptions.ConnectionFailedError(
                f"no etcd member answered the watch stream within {timeout} s, so the "
                f"watch on {key!r} was not created ({outage})")
        return exceptions.WatchTimedOut(
            f"etcd did not confirm the watch on {key!r} within {timeout} s")

    def _outage_words(self) -> str:
        """'endpoints tried: a, b; last error: ...' for the current outage (lock held)."""
        tried = ", ".join(self._down_tried) or "none yet"
        words = f"endpoints tried: {tried}"
        if self._down_error:
            secure = any(ep.secure for ep in self._transport.pool.endpoints)
            words += (f"; last error: {self._down_error}"
                      + _errors.tls_server_hint(self._down_error, secure))
        return words

    def _current_revision(self, key: bytes) -> int:
        response = self._transport.call(_rpc.RANGE, pb.RangeRequest(key=key, count_only=True),
                                        context=f"watch on {key!r}")
        return int(response.header.revision)

    def _settle_join(self, sub: Subscriber, revision: int) -> None:
        with self._lock:
            sw = sub.watch
            if sub.finished or sw is None:
                return
            sub.threshold = revision
            pending, sub.pending = sub.pending, []
            for item in pending:
                if sub in sw.joining:
                    self._deliver_joining(sw, sub, item)
                else:
                    self._deliver_one(sub, item)

    def cancel(self, sub_id: int) -> bool:
        """Stop delivering to subscriber ``sub_id``; False when it was not active."""
        with self._lock:
            sub = self._subs.pop(sub_id, None)
            if sub is None:
                return False
            sub.cancelled = sub.finished = True
            sw = sub.watch
            if sw is not None:
                sw.detach(sub)
                if sw.empty():
                    self._drop(sw)
            if sub.queue is not None:
                sub.queue.put(END)
            return True

    def request_progress(self) -> None:
        """Ask etcd for a progress notification on every watch of the stream."""
        with self._lock:
            if self._requests is not None:
                self._progress_wanted += 1
                self._requests.put(pb.WatchRequest(progress_request=pb.WatchProgressRequest()))

    # -- state changes (called with the lock held) ----------------------------------------

    def _start_threads(self) -> None:
        if self._threads:
            return
        for name, target in (("reader", self._run_reader), ("dispatcher", self._run_dispatcher),
                             ("watchdog", self._run_watchdog)):
            thread = threading.Thread(target=target, name=f"etcd3-watch-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _send_create(self, sw: ServerWatch) -> None:
        if self._requests is not None:
            sw.fragments = []
            sw.stream_gen = self._gen
            self._creating.append(sw.id)
            self._requests.put(sw.create_request())

    def _drop(self, sw: ServerWatch) -> None:
        self._watches.pop(sw.id, None)
        if self._shared.get(sw.spec) is sw:
            del self._shared[sw.spec]
        sw.ready.set()
        if self._requests is not None and sw.stream_gen == self._gen:
            self._requests.put(pb.WatchRequest(
                cancel_request=pb.WatchCancelRequest(watch_id=sw.id)))

    def _fail(self, sw: ServerWatch, error: BaseException) -> None:
        # Before etcd confirmed the watch, its subscribers are still in subscribe(),
        # which raises the error; afterwards the iterator or callback receives it.
        confirmed = sw.ready.is_set()
        for sub in sw.subscribers + sw.joining:
            sub.finished = True
            self._subs.pop(sub.id, None)
            if confirmed:
                self._deliver_one(sub, error)
            else:
                sub.error = error
        sw.subscribers, sw.joining = [], []
        self._drop(sw)

    def _overflow(self, sub: Subscriber) -> None:
        """Fail a subscriber that fell ``max_queue`` responses behind: it still gets
        what it was sent, then the error; the others are not held back."""
        self._subs.pop(sub.id, None)
        sub.finished = True
        sw = sub.watch
        if sw is not None:
            sw.detach(sub)
            if sw.empty():
                self._drop(sw)
        log.warning("etcd3: watch %d fell %d responses behind; cancelled it",
                    sub.id, sub.max_queue)
        what = "callback" if sub.callback is not None else "iterator"
        self._deliver_one(sub, exceptions.WatchOverflowError(
            f"the watch {what} fell more than {sub.max_queue} responses behind and "
            "was cancelled; keep up or raise max_queue, and watch again from the "
            "last revision seen"))

    def _deliver_one(self, sub: Subscriber, item: Item) -> None:
        if sub.callback is not None:
            if sub.max_queue is not None:
                sub.routed += 1
            self._dispatch.put(((sub,), item))
        else:
            assert sub.queue is not None
            sub.queue.put(item)

    def _deliver_joining(self, sw: ServerWatch, sub: Subscriber, item: Item) -> None:
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
        self._deliver_one(sub, item)

    def _route(self, sw: ServerWatch, response: WatchResponse) -> None:
        callbacks, queues = sw.targets()
        bounded = sw.bounded_callbacks()
        if bounded:
            behind = [sub for sub in bounded
                      if sub.routed - sub.delivered >= (sub.max_queue or 0)]
            for sub in behind:
                self._overflow(sub)
            if behind:
                callbacks, queues = sw.targets()
                bounded = sw.bounded_callbacks()
            for sub in bounded:
                sub.routed += 1
        if callbacks:
            self._dispatch.put((callbacks, response))
        for sub in queues:
            q = sub.queue
            assert q is not None
            if sub.max_queue is not None and q.qsize() >= sub.max_queue:
                self._overflow(sub)
            else:
                q.put(response)
        for sub in list(sw.joining):
            self._deliver_joining(sw, sub, response)

    # -- the reader thread ----------------------------------------------------------------

    def _run_reader(self) -> None:
        backoff = 0.0
        avoid = None
        transport = self._transport
        while True:
            with self._lock:
                if not self._watches:
                    self._down_since = None  # an idle engine is not cut off
                while not self._closed.is_set() and (not self._watches
                                                     or self._fork_paused):
                    self._wakeup.wait()
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    self._down_tried, self._down_error, self._down_warned = [], "", 0.0
            if self._closed.wait(backoff):
                return
            backoff = min(_BACKOFF_CAP, backoff * _BACKOFF_FACTOR or _BACKOFF_START)
            requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
            gate = _forksafe.GATE
            gate.enter_nowait()
            try:
                target = transport.pool.pick(avoid)
                self._tried(target.name)
                call, state = transport.open_stream(_rpc.WATCH, request_iterator(requests),
                                                    endpoint=target)
            except exceptions.ClientClosedError:
                gate.leave()
                return
            except exceptions.Etcd3Exception as setup_error:
                gate.leave()
                self._stream_setup_failed(setup_error)
                continue
            except Exception:  # e.g. gRPC's ValueError on a channel closed meanwhile
                gate.leave()
                if self._closed.is_set():
                    return
                log.exception("etcd3: cannot open the watch stream; retrying")
                continue
            attached = self._attach_stream(call, requests, state.name)
            if not attached:
                gate.leave()
                if self._closed.is_set():
                    return
                continue  # a fork began while the stream was opening
            failure: Optional[BaseException] = None
            healthy = False
            try:
                for response in call:
                    self._last_seen = time.monotonic()
                    if not healthy:
                        healthy = True
                        transport.report_success(state)
                        backoff, avoid = 0.0, None
                        self._stream_up(state.name)
                    self._handle(response)
            except grpc.RpcError as rpc_error:
                failure = rpc_error
            except Exception as bug:  # never let the reader die: reopen and resume
                log.exception("etcd3: failed to process a watch response; reopening")
                failure = bug
                call.cancel()
            finally:
                with self._lock:
                    self._requests = self._call = self.endpoint = None
                requests.put(END)
                gate.leave()
            if self._closed.is_set():
                return
            if self._fork_paused:  # ended for a fork: reopen at once, here
                avoid, backoff = None, 0.0
                continue
            if self._stalled:
                self._stalled = False
                transport.pool.mark_failed(state)
                avoid, backoff = state, 0.0
                continue
            if self._token_rejected:
                # etcd refused a create because our token went stale (it says
                # "permission denied" up to 3.5): new token, new stream, same watches.
                self._token_rejected = False
                self._refresh_token(state)
                backoff = 0.0
                continue
            avoid = state
            if failure is not None:
                self._stream_broke(state, failure, healthy)

    def _attach_stream(self, call: Any, requests: queue.SimpleQueue[Any],
                       endpoint: str) -> bool:
        """Make ``call`` the engine's stream; False (the call cancelled) when the
        engine closed, or a fork is being prepared, while it was opening."""
        with self._lock:
            if self._closed.is_set() or self._fork_paused:
                call.cancel()
                requests.put(END)
                return False
            self._gen += 1
            self._requests, self._call, self.endpoint = requests, call, endpoint
            self._creating = collections.deque()
            self._attached_at = time.monotonic()
            self._probe_sent = 0.0
            self._progress_wanted = 0
            for sw in self._watches.values():
                self._send_create(sw)
            return True

    def _tried(self, endpoint: str) -> None:
        with self._lock:
            if endpoint not in self._down_tried:
                self._down_tried.append(endpoint)

    def _stream_up(self, endpoint: str) -> None:
        with self._lock:
            since, warned = self._down_since, self._down_warned
            self._down_since, self._down_warned = None, 0.0
        if since is not None and warned:
            log.info("etcd3: the watch stream reached %s after %.1f s without a member; "
                     "watches resumed", endpoint, time.monotonic() - since)

    def _stream_setup_failed(self, error: exceptions.Etcd3Exception) -> None:
        if isinstance(error, (exceptions.ConnectionFailedError,
                              exceptions.ConnectionTimeoutError)):
            # (a WARNING follows when this goes on: see _check_outage)
            log.debug("etcd3: cannot open the watch stream (%s); retrying", error)
            with self._lock:
                self._down_error = str(error)
            return
        with self._lock:
            confirmed = any(sw.ready.is_set() for sw in self._watches.values())
            for sw in list(self._watches.values()):
                self._fail(sw, error)
        # (watches not confirmed yet raise it from subscribe: no need to log it too)
        log.log(logging.WARNING if confirmed else logging.DEBUG,
                "etcd3: cannot open the watch stream (%s); ending every watch", error)

    def _stream_broke(self, state: Any, error: BaseException, was_healthy: bool) -> None:
        if _errors.is_auth_token_error(error):
            self._refresh_token(state)
        else:
            self._transport.report_failure(state, error)
        code, details = _errors.status_of(error)
        with self._lock:
            self._down_error = _errors.connection_cause(details)
            if not was_healthy and state.endpoint.secure and _errors.is_tls_error(error):
                # A configuration error, as for unary calls: a watch waiting for its
                # confirmation gets it at once (confirmed ones keep resuming).
                tls_error = _errors.tls_error(error, state.endpoint)
                self._down_error = tls_error.message
                for sw in list(self._watches.values()):
                    if not sw.ready.is_set():
                        self._fail(sw, tls_error)
        log.log(logging.INFO if was_healthy else logging.DEBUG,
                "etcd3: watch stream to %s broke (%s: %s); resuming", state.name,
                code, details)

    def _refresh_token(self, state: Any) -> None:
        transport = self._transport
        try:
            transport.refresh_token(state, transport.metadata_for(state))
        except exceptions.Etcd3Exception as error:
            log.info("etcd3: token refresh for the watch stream failed (%s)", error)

    def _token_may_be_stale(self, sw: ServerWatch, reason: str) -> bool:
        """True (once per watch) when a refused create may be due to a stale token."""
        if self._transport.token_provider is None or sw.auth_retried:
            return False
        message = _reason_message(reason)
        return message == "permission denied" or message in _TOKEN_MESSAGES

    def _handle(self, response: Any) -> None:
        watch_id = response.watch_id
        if response.created:
            # Creations are answered in request order; a failed one may carry id -1.
            head = self._creating.popleft() if self._creating else _STREAM_WIDE
            if watch_id == _STREAM_WIDE:
                watch_id = head
        sw = self._watches.get(watch_id)
        if sw is None:
            if watch_id == _STREAM_WIDE and not response.events:
                self._progress_all(response)
            return  # leftovers of a cancelled watch
        if response.created:
            if response.canceled and self._token_may_be_stale(sw, response.cancel_reason):
                sw.auth_retried = True
                self._token_rejected = True
                call = self._call
                if call is not None:
                    call.cancel()
                return
            if not response.canceled:
                if not sw.next_rev:
                    sw.next_rev = response.header.revision + 1
                sw.auth_retried = False
                sw.ready.set()
                return
            if not sw.ready.is_set():  # refused: subscribe() raises the reason
                with self._lock:
                    if self._watches.get(watch_id) is sw:
                        self._fail(sw, _refusal_error(
                            sw.spec.key, response.cancel_reason,
                            self._transport.token_provider is None))
                return
        if response.canceled or response.compact_revision:
            with self._lock:
                if self._watches.get(watch_id) is sw:
                    self._fail(sw, self._end_error(response))
            return
        if response.fragment:
            sw.fragments.extend(response.events)
            return
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
        wr = WatchResponse(header, events)
        with self._lock:
            if self._watches.get(watch_id) is sw:
                self._route(sw, wr)

    @staticmethod
    def _end_error(response: Any) -> exceptions.Etcd3Exception:
        if response.compact_revision:
            return exceptions.RevisionCompactedError(response.compact_revision)
        return _cancel_error(response.cancel_reason)

    def _progress_all(self, response: Any) -> None:
        # etcd 3.4 answers RequestProgress without checking that watchers are synced,
        # so a stream-wide notification is passed on but never moves a resume point.
        wr = WatchResponse(header_from_pb(response.header), [])
        with self._lock:
            if not self._progress_wanted:
                return  # the answer to a watchdog probe
            self._progress_wanted -= 1
            for sw in self._watches.values():
                if sw.ready.is_set():
                    self._route(sw, wr)

    # -- the watchdog thread -------------------------------------------------------------

    def _run_watchdog(self) -> None:
        # gRPC keepalive alone does not always notice a frozen (SIGSTOPped) member: when
        # the stream has been silent, ask for a progress notification; no answer at all
        # within PROBE_TIMEOUT means the member is gone, so reopen elsewhere (resuming).
        while not self._closed.wait(_WATCHDOG_TICK):
            with self._lock:
                self._check_outage(time.monotonic())
                call = self._call
                if call is None:
                    self._probe_sent = 0.0
                    continue
                now = time.monotonic()
                silent = now - max(self._last_seen, self._attached_at)
                if self._probe_sent > self._last_seen and now - self._probe_sent > _PROBE_TIMEOUT:
                    log.warning("etcd3: watch stream to %s did not answer for %.1f s; "
                                "reconnecting", self.endpoint, silent)
                    self._stalled = True
                    self._probe_sent = 0.0
                    call.cancel()
                elif silent > _SILENCE_BEFORE_PROBE and self._probe_sent <= self._last_seen:
                    self._probe_sent = now
                    assert self._requests is not None
                    self._requests.put(pb.WatchRequest(
                        progress_request=pb.WatchProgressRequest()))

    def _check_outage(self, now: float) -> None:
        """WARN while no member answers the stream; end subscribers past their
        ``unreachable_timeout`` (lock held)."""
        since = self._down_since
        if since is None or not self._watches:
            return
        down_for = now - since
        if down_for >= _UNREACHABLE_WARN_AFTER and (
                not self._down_warned
                or now - self._down_warned >= _UNREACHABLE_WARN_EVERY):
            self._down_warned = now
            log.warning("etcd3: no etcd member has answered the watch stream for %.0f s "
                        "(%s); still trying, and watches resume where they stopped "
                        "when one answers", down_for, self._outage_words())
        expired = [sub for sub in self._subs.values() if sub.unreachable_timeout is not None
                   and now - max(since, sub.since) >= sub.unreachable_timeout]
        if not expired:
            return
        # One line per tick however many end, logged before any of them hears of it.
        log.warning("etcd3: ending %d watch(es) at their unreachable_timeout: no etcd "
                    "member answered for %.0f s (%s)", len(expired), down_for,
                    self._outage_words())
        for sub in expired:
            assert sub.unreachable_timeout is not None
            self._unreachable(sub, now - max(since, sub.since), sub.unreachable_timeout)

    def _unreachable(self, sub: Subscriber, down_for: float, limit: float) -> None:
        sw = sub.watch
        self._subs.pop(sub.id, None)
        sub.finished = True
        text = (f"no etcd member could be reached for {down_for:.1f} s "
                f"({self._outage_words()}), so the watch")
        if sw is not None:
            text += f" on {sw.spec.key!r}"
        text += f" ended (unreachable_timeout={limit:g} s)"
        if sw is not None and sw.ready.is_set() and sw.next_rev:
            text += (f"; watch again with start_revision={sw.next_rev} to continue "
                     "without missing an event")
        error = exceptions.ConnectionFailedError(text)
        confirmed = sw is not None and sw.ready.is_set()
        if sw is not None:
            sw.detach(sub)
            if sw.empty():
                self._drop(sw)
        if confirmed:
            self._deliver_one(sub, error)
        else:
            sub.error = error

    # -- the dispatcher thread ------------------------------------------------------------

    def _run_dispatcher(self) -> None:
        while True:
            item = self._dispatch.get()
            if item is END:
                return
            targets, payload = item
            for sub in targets:
                if not sub.cancelled:
                    try:
                        sub.callback(payload)
                    except Exception:
                        log.exception("etcd3: watch callback %r raised; delivery "
                                      "continues", sub.callback)
                if sub.max_queue is not None:
                    sub.delivered += 1

    # -- shutdown -------------------------------------------------------------------------

    def _suspend_for_fork(self) -> None:
        with self._lock:
            self._fork_paused = True
            call = self._call
        if call is not None:
            call.cancel()

    def _resume_after_fork(self) -> None:
        with self._lock:
            self._fork_paused = False
            self._wakeup.notify_all()

    def abandon_after_fork(self) -> None:
        """In a forked child: the stream and threads are the parent's. Iterators of
        watches started before the fork raise :class:`ForkedWatchError`; callbacks
        are never called here. The client makes a new engine on the next watch."""
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._closed = threading.Event()
        self._closed.set()
        self._threads = []
        self._call = self._requests = None
        error = exceptions.ForkedWatchError(
            "this watch was started before os.fork(), in the parent process; its "
            "events go to the parent. Start the watch again in the child")
        for sub in self._subs.values():
            sub.finished = True
            if sub.queue is not None:
                sub.queue.put(error)
        self._subs.clear()
        self._watches.clear()
        self._shared.clear()

    def close(self, wait: bool = True, timeout: float = 5.0) -> None:
        """End every watch, the stream and the threads (iterators end promptly);
        ``wait``: join the threads, each for up to ``timeout`` seconds."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            self._wakeup.notify_all()
            call, requests = self._call, self._requests
            for sub in self._subs.values():
                sub.cancelled = sub.finished = True
                if sub.queue is not None:
                    sub.queue.put(END)
            for sw in self._watches.values():
                sw.ready.set()
            self._subs.clear()
            self._watches.clear()
            self._shared.clear()
        if requests is not None:
            requests.put(END)
        if call is not None:
            call.cancel()
        self._dispatch.put(END)
        if not wait:
            return
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout)
