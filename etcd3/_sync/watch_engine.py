"""The threaded watch driver: one multiplexed Watch stream per client.

What is watched, coalescing, resume revisions, compaction, confirmation and cancel
are decided by :class:`etcd3._core.watch_core.WatchCore`; this module runs it with
threads (started on the first watch, ended by :meth:`WatchEngine.close`), calling
the core under one lock and carrying out the actions it returns:

- the *reader* opens the stream, lets the core re-create every server watch on it,
  and feeds it each response; when the stream breaks it reopens it (another endpoint
  first, with backoff) and every watch resumes from the revision after the last
  whole response it delivered;
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
the reader, so they never wait behind callbacks. Users only see subscriber ids, which
never change across resumes.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from typing import Any, Dict, Iterator, List, Optional

import grpc

from .. import exceptions
from .._core.deadline import Deadline
from .._core.watch_actions import Actions, Dispatch, End, Enqueue, Reconnect, Send, Settle
from .._core.watch_core import WatchCore
from .._core.watch_liveness import PROBE, RECONNECT, Outage, SilenceProbe
from .._core.watch_state import Callback, ServerWatch, Subscriber, WatchSpec
from .._grpc import rpc as _rpc
from .._grpc import watch_errors as _watch_errors
from .._grpc import watch_stream as _stream
from .._grpc.watch_errors import GrpcWatchErrors
from .._grpc.watch_stream import WatchStreamRules, needs_new_token
from ..etcdrpc import rpc_pb2 as pb
from ..events import WatchResponse
from . import forksafe as _forksafe

log = logging.getLogger("etcd3")

_WATCHDOG_TICK = _stream.WATCHDOG_TICK
#: Seconds without a working stream before a WARNING, and between later ones.
_UNREACHABLE_WARN_AFTER = _stream.UNREACHABLE_WARN_AFTER
_UNREACHABLE_WARN_EVERY = _stream.UNREACHABLE_WARN_EVERY
#: "The engine's default" for a subscriber's unreachable_timeout.
_DEFAULT: Any = object()


END: Any = object()  # ends a request iterator, a subscriber queue or the dispatcher


class SyncSubscriber(Subscriber):
    """A subscriber whose iterator blocks on its queue."""

    __slots__ = ()

    def iterate(self) -> Iterator[WatchResponse]:
        """The responses of a queue subscriber; raises the error that ends the watch."""
        q = self.queue
        assert q is not None
        while not self.cancelled:
            item = q.get()
            if item is END or self.cancelled:
                return
            if isinstance(item, BaseException):
                raise item
            self.took(item)
            yield item


def request_iterator(q: queue.SimpleQueue[Any]) -> Iterator[Any]:
    while True:
        request = q.get()
        if request is END:
            return
        yield request


class WatchEngine(WatchStreamRules):
    """Every watch of one client. Thread-safe; see the module docstring."""

    def __init__(self, transport: Any, *, coalesce: bool = True,
                 unreachable_timeout: Optional[float] = None) -> None:
        self._transport = transport
        self._core = WatchCore(GrpcWatchErrors(transport), _backlog, coalesce=coalesce,
                               recorder=transport.recorder)
        #: Default ``unreachable_timeout`` of new subscribers (None: keep trying).
        self.unreachable_timeout = unreachable_timeout
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._closed = threading.Event()
        self._requests: Optional[queue.SimpleQueue[Any]] = None
        self._call: Any = None
        self._token_rejected = False
        self._stalled = False  # set by the watchdog: the member stopped answering
        self._probe = SilenceProbe(_stream.SILENCE_BEFORE_PROBE, _stream.PROBE_TIMEOUT)
        # When the stream was last without an answering member, the endpoints tried
        # since, gRPC's words for the last failure (reader writes, watchdog and
        # subscribe read).
        self._outage = Outage()
        #: The endpoint (``host:port``) the stream is open to; None while it is down.
        self.endpoint: Optional[str] = None
        self._stream_state: Any = None  # its pool state (for probes of a proxy)
        self._fork_paused = False  # streams ended for an os.fork() (see _forksafe)
        _forksafe.register_stream_owner(self)
        self._dispatch: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: List[threading.Thread] = []

    @property
    def coalesce(self) -> bool:
        """Whether identical watches share one server watch."""
        return self._core.coalesce

    @property
    def _subs(self) -> Dict[int, Subscriber]:
        return self._core.subs

    @property
    def _watches(self) -> Dict[int, ServerWatch]:
        return self._core.watches

    @property
    def _shared(self) -> Dict[WatchSpec, ServerWatch]:
        return self._core.shared

    def _apply(self, actions: Actions) -> None:
        """Carry out the core's ``actions``, in order (lock held)."""
        for action in actions:
            if isinstance(action, Dispatch):
                self._dispatch.put((action.subscribers, action.item))
            elif isinstance(action, Enqueue):
                item = action.item
                for sub in action.subscribers:
                    sub.queue.put(item)
            elif isinstance(action, Send):
                if self._requests is not None:
                    self._requests.put(action.request)
            elif isinstance(action, Settle):
                if action.watch.ready is not None:
                    action.watch.ready.set()
            elif isinstance(action, End):
                action.subscriber.queue.put(END)
            elif isinstance(action, Reconnect):
                self._token_rejected = True
                if self._call is not None:
                    self._call.cancel()

    # -- subscribing --------------------------------------------------------------------

    def subscribe(self, spec: WatchSpec, *, start_revision: Optional[int] = None,
                  callback: Optional[Callback] = None,
                  timeout: Optional[float] = None,
                  max_queue: Optional[int] = None,
                  unreachable_timeout: Any = _DEFAULT) -> SyncSubscriber:
        """Add a subscriber; returns once etcd has confirmed the watch.

        Without ``callback`` the subscriber gets a queue (see
        :meth:`SyncSubscriber.iterate`).
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
        sub = SyncSubscriber(0, callback, None if callback else queue.SimpleQueue(),
                             max_queue, unreachable_timeout)
        with self._lock:
            if self._closed.is_set():
                raise exceptions.ClientClosedError("this etcd3 client has been closed")
            self._start_threads()
            joining, actions = self._core.subscribe(sub, spec, start_revision,
                                                    time.monotonic())
            sw = sub.watch
            assert sw is not None
            if sw.ready is None:
                sw.ready = threading.Event()
            self._apply(actions)
            if not joining:
                self._wakeup.notify_all()
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
        deadline = Deadline.after(timeout)
        while True:
            wait = deadline.remaining()
            if sub.unreachable_timeout is not None:
                # The watchdog may end this subscriber alone (sw stays unconfirmed).
                wait = _WATCHDOG_TICK if wait is None else min(wait, _WATCHDOG_TICK)
            if sw.ready.wait(wait) or sub.error is not None:
                break
            if deadline.expired:
                raise self._unconfirmed_error(sw.spec.key, timeout)
        if self._closed.is_set():
            raise exceptions.ClientClosedError("this etcd3 client has been closed")
        if sub.error is not None:
            raise sub.error

    def _unconfirmed_error(self, key: bytes, timeout: Optional[float]
                           ) -> exceptions.Etcd3Exception:
        with self._lock:
            down = self._outage.since is not None
            outage = self._outage_words()
        return _watch_errors.unconfirmed_error(key, timeout, down, outage)

    def _current_revision(self, key: bytes) -> int:
        response = self._transport.call(_rpc.RANGE, pb.RangeRequest(key=key, count_only=True),
                                        context=f"watch on {key!r}")
        return int(response.header.revision)

    def _settle_join(self, sub: Subscriber, revision: int) -> None:
        with self._lock:
            self._apply(self._core.settle_join(sub, revision))

    def cancel(self, sub_id: int) -> bool:
        """Stop delivering to subscriber ``sub_id``; False when it was not active."""
        with self._lock:
            actions = self._core.cancel(sub_id)
            if actions is None:
                return False
            self._apply(actions)
            return True

    def request_progress(self) -> None:
        """Ask etcd for a progress notification on every watch of the stream."""
        with self._lock:
            self._apply(self._progress_request())

    # -- threads (started with the lock held) ---------------------------------------------

    def _start_threads(self) -> None:
        if self._threads:
            return
        for name, target in (("reader", self._run_reader), ("dispatcher", self._run_dispatcher),
                             ("watchdog", self._run_watchdog)):
            thread = threading.Thread(target=target, name=f"etcd3-watch-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    # -- the reader thread ----------------------------------------------------------------

    def _run_reader(self) -> None:
        backoff = 0.0
        avoid = None
        transport = self._transport
        probe = self._probe
        while True:
            with self._lock:
                if not self._core.watches:
                    self._outage.since = None  # an idle engine is not cut off
                while not self._closed.is_set() and (not self._core.watches
                                                     or self._fork_paused):
                    self._wakeup.wait()
                self._outage.begin(time.monotonic())
            if self._closed.wait(backoff):
                return
            backoff = _stream.next_backoff(backoff)
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
            attached = self._attach_stream(call, requests, state)
            if not attached:
                gate.leave()
                if self._closed.is_set():
                    return
                continue  # a fork began while the stream was opening
            failure: Optional[BaseException] = None
            healthy = False
            try:
                for response in call:
                    probe.last_seen = time.monotonic()
                    if not healthy:
                        healthy = True
                        transport.report_success(state)
                        backoff, avoid = 0.0, None
                        self._stream_up(state.name)
                    with self._lock:
                        self._apply(self._core.receive(response))
            except grpc.RpcError as rpc_error:
                failure = rpc_error
            except Exception as bug:  # never let the reader die: reopen and resume
                log.exception("etcd3: failed to process a watch response; reopening")
                failure = bug
                call.cancel()
            finally:
                with self._lock:
                    self._requests = self._call = self.endpoint = None
                    self._core.stream_closed()
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
                       state: Any) -> bool:
        """Make ``call`` the engine's stream; False (the call cancelled) when the
        engine closed, or a fork is being prepared, while it was opening."""
        with self._lock:
            if self._closed.is_set() or self._fork_paused:
                call.cancel()
                requests.put(END)
                return False
            self._requests, self._call, self.endpoint = requests, call, state.name
            self._stream_state = state
            self._probe.attached(time.monotonic())
            self._apply(self._core.stream_opened())
            return True

    def _tried(self, endpoint: str) -> None:
        with self._lock:
            self._outage.tried_endpoint(endpoint)

    def _stream_up(self, endpoint: str) -> None:
        with self._lock:
            self._stream_reached(endpoint, time.monotonic())

    def _stream_setup_failed(self, error: exceptions.Etcd3Exception) -> None:
        with self._lock:
            self._setup_failed(error)

    def _stream_broke(self, state: Any, error: BaseException, was_healthy: bool) -> None:
        if needs_new_token(error):
            self._refresh_token(state)
        else:
            self._transport.report_failure(state, error)
        with self._lock:
            self._stream_failed(state, error, was_healthy)

    def _refresh_token(self, state: Any) -> None:
        transport = self._transport
        try:
            transport.refresh_token(state, transport.metadata_for(state))
        except exceptions.Etcd3Exception as error:
            log.info("etcd3: token refresh for the watch stream failed (%s)", error)

    # -- the watchdog thread -------------------------------------------------------------

    def _run_watchdog(self) -> None:
        while not self._closed.wait(_WATCHDOG_TICK):
            check_proxy = None
            with self._lock:
                self._check_outage(time.monotonic())
                call = self._call
                now = time.monotonic()
                silent = self._probe.silent_for(now)
                step = self._probe.tick(now, call is not None)
                if step == RECONNECT:
                    log.warning("etcd3: watch stream to %s did not answer for %.1f s; "
                                "reconnecting", self.endpoint, silent)
                    self._stalled = True
                    call.cancel()
                elif step == PROBE and self._core.ids_assigned_by_server:
                    # etcd's gRPC proxy ignores progress requests: ask the proxy itself
                    # (below: the answer may come at once, on this thread).
                    check_proxy = (self._stream_state, call)
                elif step == PROBE:
                    assert self._requests is not None
                    self._requests.put(pb.WatchRequest(
                        progress_request=pb.WatchProgressRequest()))
            if check_proxy is not None:
                state, call = check_proxy
                self._transport.pool.check(state, functools.partial(self._proxy_answered,
                                                                    call))

    def _proxy_answered(self, call: Any, ok: bool) -> None:
        """The probe of the proxy the stream ``call`` goes through answered (``ok``)."""
        with self._lock:
            if ok and call is self._call:
                self._probe.last_seen = time.monotonic()

    def _check_outage(self, now: float) -> None:
        """WARN while no member answers the stream; end subscribers past their
        ``unreachable_timeout`` (lock held)."""
        self._check_unreachable(now, _UNREACHABLE_WARN_AFTER, _UNREACHABLE_WARN_EVERY)

    # -- the dispatcher thread ------------------------------------------------------------

    def _run_dispatcher(self) -> None:
        while True:
            item = self._dispatch.get()
            if item is END:
                return
            targets, payload = item
            for sub in targets:
                if not sub.cancelled:
                    sub.took(payload)
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
        self._apply(self._core.abandon(error))

    def close(self, wait: bool = True, timeout: float = 5.0) -> None:
        """End every watch, the stream and the threads (iterators end promptly);
        ``wait``: join the threads, each for up to ``timeout`` seconds."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            self._wakeup.notify_all()
            call, requests = self._call, self._requests
            self._apply(self._core.close())
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


def _backlog(sub: Subscriber) -> int:
    """Responses waiting in an iterator subscriber's queue."""
    return int(sub.queue.qsize())
