"""The asyncio watch driver: one multiplexed Watch stream per client, run by tasks.

The same :class:`~etcd3._core.watch_core.WatchCore` as the threaded driver
(:mod:`etcd3._sync.watch_engine`) decides what is watched, coalescing, resume
revisions, compaction, confirmation and cancel; this module carries out the actions
it returns with tasks of the client's event loop. Every call into the core runs on
the loop, between two awaits, so no lock is needed:

- the *reader* opens the stream (another endpoint first after a failure, with
  backoff), lets the core re-create every server watch on it, and feeds it each
  response; when the stream breaks every watch resumes from the revision after the
  last whole response it delivered;
- the *dispatcher* runs callbacks (plain functions, or coroutine functions it
  awaits) one at a time, so a slow callback never holds the network back;
- the *watchdog* asks a silent stream for a progress notification and reopens it
  elsewhere when the member does not answer (a frozen member keeps its TCP socket);
  while no member answers at all it logs a WARNING and ends the subscribers whose
  ``unreachable_timeout`` has passed.

A watch counts as created only once etcd confirmed it; a task cancelled while it
waits for that (or for anything else in :meth:`AioWatchEngine.subscribe`) leaves
nothing registered. Iterators read their own :class:`asyncio.Queue`.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import time
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Deque,
    Dict,
    List,
    Optional,
    Union,
)

import grpc
import grpc.aio

from .. import exceptions
from .._core.deadline import Deadline
from .._core.watch_actions import Actions, Dispatch, End, Enqueue, Reconnect, Send, Settle
from .._core.watch_core import WatchCore
from .._core.watch_liveness import PROBE, RECONNECT, Outage, SilenceProbe
from .._core.watch_state import ServerWatch, Subscriber, WatchSpec
from .._grpc import rpc as _rpc
from .._grpc import watch_errors as _watch_errors
from .._grpc import watch_stream as _stream
from .._grpc.watch_errors import GrpcWatchErrors
from .._grpc.watch_stream import WatchStreamRules, needs_new_token
from ..etcdrpc import rpc_pb2 as pb
from ..events import WatchResponse

log = logging.getLogger("etcd3")

_WATCHDOG_TICK = _stream.WATCHDOG_TICK
#: Seconds without a working stream before a WARNING, and between later ones.
_UNREACHABLE_WARN_AFTER = _stream.UNREACHABLE_WARN_AFTER
_UNREACHABLE_WARN_EVERY = _stream.UNREACHABLE_WARN_EVERY
#: "The engine's default" for a subscriber's unreachable_timeout.
DEFAULT: Any = object()

#: Ends a request stream, a subscriber's inbox or the dispatcher.
END: Any = object()
_CLOSED = "this etcd3 client has been closed"

#: A watch callback: called with each WatchResponse (or the error ending the watch);
#: a coroutine function is awaited.
AioCallback = Callable[[Union[WatchResponse, BaseException]], Union[None, Awaitable[None]]]


class Inbox:
    """An iterator subscriber's unbounded inbox, read by one task at a time (a
    leaner :class:`asyncio.Queue`: deliveries to many subscribers are the hot path).
    ``get`` is cancellation-safe: an item is taken only when ``get`` returns it."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: Deque[Any] = collections.deque()
        self._waiter: Optional[asyncio.Future[None]] = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        items = self._items
        while not items:
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter
        return items.popleft()


class AioSubscriber(Subscriber):
    """A subscriber whose inbox is an :class:`Inbox` (iterators) or whose
    callback may be a coroutine function."""

    __slots__ = ()


class WatchResponses:
    """``async for response in ...``: the responses of one iterator subscriber.

    Ends (StopAsyncIteration) when the watch is cancelled or the client closed;
    raises the error that ends the watch otherwise, once, then ends. ``await
    aclose()`` cancels the watch (so ``contextlib.aclosing(...)`` works);
    ``on_close`` is what cancels it.
    """

    def __init__(self, sub: AioSubscriber,
                 on_close: Optional[Callable[[], Any]] = None) -> None:
        self._sub = sub
        self._done = False
        self._on_close = on_close

    async def aclose(self) -> None:
        """Cancel the watch and end this iterator (idempotent)."""
        self._done = True
        if self._on_close is not None:
            self._on_close()

    def __aiter__(self) -> WatchResponses:
        return self

    async def __anext__(self) -> WatchResponse:
        sub = self._sub
        if self._done or sub.cancelled:
            raise StopAsyncIteration
        item = await sub.queue.get()
        if item is END or sub.cancelled:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        sub.took(item)
        return item  # type: ignore[no-any-return]


async def _requests(q: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    while True:
        request = await q.get()
        if request is END:
            return
        yield request


def _backlog(sub: Subscriber) -> int:
    """Responses waiting in an iterator subscriber's inbox."""
    return int(sub.queue.qsize())


def _being_cancelled(unknown: bool) -> bool:
    """True when the running task has been asked to stop; ``unknown`` before Python
    3.11, which cannot tell."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    if cancelling is None:
        return unknown
    return bool(cancelling())


#: Python 3.11+ tells a task that was cancelled from a coroutine that raised
#: CancelledError on its own (Task.cancelling).
_TELLS_CANCELLING = hasattr(asyncio.Task, "cancelling")


class CallbackCancelled(Exception):
    """A coroutine callback ended with CancelledError of its own (logged)."""


async def _await_apart(awaitable: Awaitable[Any]) -> None:
    """Await a callback's coroutine as a task of its own, so that a CancelledError
    it raises is told from the dispatcher's own cancellation (before Python 3.11).

    :raises CallbackCancelled: the callback was cancelled, not the dispatcher.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        await asyncio.wait((task,))
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task.cancelled():
        raise CallbackCancelled("the callback raised CancelledError")
    task.result()


class AioWatchEngine(WatchStreamRules):
    """Every watch of one asyncio client (see the module docstring). Use it from its
    event loop only, except :meth:`close`."""

    def __init__(self, transport: Any, *, coalesce: bool = True,
                 unreachable_timeout: Optional[float] = None) -> None:
        self._transport = transport
        self._core = WatchCore(GrpcWatchErrors(transport), _backlog, coalesce=coalesce,
                               recorder=transport.recorder)
        #: Default ``unreachable_timeout`` of new subscribers (None: keep trying).
        self.unreachable_timeout = unreachable_timeout
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._wakeup = asyncio.Event()  # the reader: there is something to watch
        self._requests: Optional[asyncio.Queue[Any]] = None
        self._call: Any = None
        self._dropped: Any = None  # a call this engine cancelled on purpose
        self._token_rejected = False
        self._stalled = False  # set by the watchdog: the member stopped answering
        self._probe = SilenceProbe(_stream.SILENCE_BEFORE_PROBE, _stream.PROBE_TIMEOUT)
        self._outage = Outage()
        #: The endpoint (``host:port``) the stream is open to; None while it is down.
        self.endpoint: Optional[str] = None
        self._stream_state: Any = None  # its pool state (for probes of a proxy)
        self._dispatch: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: List[asyncio.Task[Any]] = []

    @property
    def coalesce(self) -> bool:
        """Whether identical watches share one server watch."""
        return self._core.coalesce

    @property
    def closed(self) -> bool:
        return self._closed

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
        """Carry out the core's ``actions``, in order (never awaits)."""
        for action in actions:
            if isinstance(action, Enqueue):
                item = action.item
                for sub in action.subscribers:
                    sub.queue.put_nowait(item)
            elif isinstance(action, Dispatch):
                self._dispatch.put_nowait((action.subscribers, action.item))
            elif isinstance(action, Send):
                if self._requests is not None:
                    self._requests.put_nowait(action.request)
            elif isinstance(action, Settle):
                if action.watch.ready is not None:
                    action.watch.ready.set()
            elif isinstance(action, End):
                action.subscriber.queue.put_nowait(END)
            elif isinstance(action, Reconnect):
                self._token_rejected = True
                self._drop_call()

    def _drop_call(self) -> None:
        """Cancel the open stream on purpose (the reader reopens one)."""
        call = self._call
        if call is not None:
            self._dropped = call
            call.cancel()

    # -- subscribing --------------------------------------------------------------------

    async def subscribe(self, spec: WatchSpec, *, start_revision: Optional[int] = None,
                        callback: Optional[AioCallback] = None,
                        timeout: Optional[float] = None,
                        max_queue: Optional[int] = None,
                        unreachable_timeout: Any = DEFAULT) -> AioSubscriber:
        """Add a subscriber; returns once etcd has confirmed the watch (see
        :meth:`etcd3._sync.watch_engine.WatchEngine.subscribe`: same rules).

        Without ``callback`` the subscriber gets an inbox (see :class:`WatchResponses`).
        Cancelling the awaiting task cancels the subscriber: nothing stays registered.

        :raises WatchTimedOut: etcd answered the stream but did not confirm the watch
            within ``timeout``.
        :raises ConnectionFailedError: no member answered the stream within
            ``timeout`` (or ``unreachable_timeout``).
        :raises Etcd3Exception: etcd refused the watch, or the stream could not be
            opened (e.g. :class:`~etcd3.exceptions.AuthenticationFailedError`).
        :raises ClientClosedError: the client is closed.
        """
        if unreachable_timeout is DEFAULT:
            unreachable_timeout = self.unreachable_timeout
        sub = AioSubscriber(0, callback,  # type: ignore[arg-type]
                            None if callback else Inbox(), max_queue,
                            unreachable_timeout)
        if self._closed:
            raise exceptions.ClientClosedError(_CLOSED)
        self._start_tasks()
        joining, actions = self._core.subscribe(sub, spec, start_revision, time.monotonic())
        sw = sub.watch
        assert sw is not None
        if sw.ready is None:
            sw.ready = asyncio.Event()
        self._apply(actions)
        if not joining:
            self._wakeup.set()
        try:
            await self._await_confirmation(sub, sw, timeout)
            if joining:
                revision = await self._current_revision(spec.key)
                self._apply(self._core.settle_join(sub, revision))
        except BaseException:
            self.cancel(sub.id)
            raise
        return sub

    async def _await_confirmation(self, sub: Subscriber, sw: ServerWatch,
                                  timeout: Optional[float]) -> None:
        deadline = Deadline.after(timeout)
        ready: asyncio.Event = sw.ready
        while not ready.is_set() and sub.error is None and not self._closed:
            wait = deadline.remaining()
            if sub.unreachable_timeout is not None:
                # The watchdog may end this subscriber alone (sw stays unconfirmed).
                wait = _WATCHDOG_TICK if wait is None else min(wait, _WATCHDOG_TICK)
            try:
                await asyncio.wait_for(ready.wait(), wait)
            except asyncio.TimeoutError:
                if deadline.expired:
                    down = self._outage.since is not None
                    raise _watch_errors.unconfirmed_error(
                        sw.spec.key, timeout, down, self._outage_words()) from None
        if self._closed:
            raise exceptions.ClientClosedError(_CLOSED)
        if sub.error is not None:
            raise sub.error

    async def _current_revision(self, key: bytes) -> int:
        response = await self._transport.call(
            _rpc.RANGE, pb.RangeRequest(key=key, count_only=True),
            context=f"watch on {key!r}")
        return int(response.header.revision)

    def cancel(self, sub_id: int) -> bool:
        """Stop delivering to subscriber ``sub_id`` (its server watch is cancelled with
        its last subscriber); False when it was not active."""
        actions = self._core.cancel(sub_id)
        if actions is None:
            return False
        self._apply(actions)
        return True

    def request_progress(self) -> None:
        """Ask etcd for a progress notification on every watch of the stream."""
        self._apply(self._progress_request())

    # -- tasks --------------------------------------------------------------------------

    def _start_tasks(self) -> None:
        if self._tasks:
            return
        loop = self._loop
        for name, run in (("reader", self._run_reader), ("dispatcher", self._run_dispatcher),
                          ("watchdog", self._run_watchdog)):
            self._tasks.append(loop.create_task(run(), name=f"etcd3-watch-{name}"))

    # -- the reader ---------------------------------------------------------------------

    async def _run_reader(self) -> None:
        backoff = 0.0
        avoid = None
        transport = self._transport
        probe = self._probe
        while not self._closed:
            if not self._core.watches:
                self._outage.since = None  # an idle engine is not cut off
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._outage.begin(time.monotonic())
            if backoff:
                await asyncio.sleep(backoff)
                if self._closed:
                    return
            backoff = _stream.next_backoff(backoff)
            requests: asyncio.Queue[Any] = asyncio.Queue()
            try:
                target = transport.pool.pick(avoid)
                self._outage.tried_endpoint(target.name)
                call, state = await transport.open_stream(_rpc.WATCH, _requests(requests),
                                                          endpoint=target)
            except exceptions.ClientClosedError:
                return
            except exceptions.Etcd3Exception as setup_error:
                self._setup_failed(setup_error)
                continue
            except Exception:  # e.g. a channel closed meanwhile
                if self._closed:
                    return
                log.exception("etcd3: cannot open the watch stream; retrying")
                continue
            if self._closed:
                call.cancel()
                return
            self._requests, self._call, self.endpoint = requests, call, state.name
            self._stream_state = state
            probe.attached(time.monotonic())
            self._apply(self._core.stream_opened())
            failure: Optional[BaseException] = None
            healthy = False
            try:
                while True:
                    try:
                        response = await call.read()
                    except asyncio.CancelledError:
                        if self._dropped is call and not _being_cancelled(unknown=False):
                            break  # dropped on purpose: reopen below
                        raise
                    if response is grpc.aio.EOF:
                        break
                    probe.last_seen = time.monotonic()
                    if not healthy:
                        healthy = True
                        transport.report_success(state)
                        backoff, avoid = 0.0, None
                        self._stream_reached(state.name, time.monotonic())
                    self._apply(self._core.receive(response))
            except grpc.RpcError as rpc_error:
                failure = rpc_error
            except Exception as bug:  # never let the reader die: reopen and resume
                log.exception("etcd3: failed to process a watch response; reopening")
                failure = bug
                call.cancel()
            finally:
                self._requests = self._call = self.endpoint = self._dropped = None
                self._core.stream_closed()
                requests.put_nowait(END)
                if not call.done():
                    call.cancel()
            if self._closed:
                return
            if self._stalled:
                self._stalled = False
                transport.pool.mark_failed(state)
                avoid, backoff = state, 0.0
                continue
            if self._token_rejected:
                # etcd refused a create because our token went stale (it says
                # "permission denied" up to 3.5): new token, new stream, same watches.
                self._token_rejected = False
                await self._refresh_token(state)
                backoff = 0.0
                continue
            avoid = state
            if failure is not None:
                await self._stream_broke(state, failure, healthy)

    async def _stream_broke(self, state: Any, error: BaseException,
                            was_healthy: bool) -> None:
        if needs_new_token(error):
            await self._refresh_token(state)
        else:
            self._transport.report_failure(state, error)
        self._stream_failed(state, error, was_healthy)

    async def _refresh_token(self, state: Any) -> None:
        transport = self._transport
        try:
            await transport.refresh_token(state, await transport.metadata_for(state))
        except exceptions.Etcd3Exception as error:
            log.info("etcd3: token refresh for the watch stream failed (%s)", error)

    # -- the watchdog -------------------------------------------------------------------

    async def _run_watchdog(self) -> None:
        while not self._closed:
            await asyncio.sleep(_WATCHDOG_TICK)
            now = time.monotonic()
            self._check_unreachable(now, _UNREACHABLE_WARN_AFTER, _UNREACHABLE_WARN_EVERY)
            call = self._call
            silent = self._probe.silent_for(now)
            step = self._probe.tick(now, call is not None)
            if step == RECONNECT:
                log.warning("etcd3: watch stream to %s did not answer for %.1f s; "
                            "reconnecting", self.endpoint, silent)
                self._stalled = True
                self._drop_call()
            elif step == PROBE and self._core.ids_assigned_by_server:
                # etcd's gRPC proxy ignores progress requests: ask the proxy itself.
                self._transport.pool.spawn(self._check_proxy(call, self._stream_state))
            elif step == PROBE and self._requests is not None:
                self._requests.put_nowait(pb.WatchRequest(
                    progress_request=pb.WatchProgressRequest()))

    async def _check_proxy(self, call: Any, state: Any) -> None:
        """Probe the proxy the stream ``call`` goes through; an answer counts as one
        from the stream."""
        if await self._transport.pool.answers(state) and call is self._call:
            self._probe.last_seen = time.monotonic()

    # -- the dispatcher -----------------------------------------------------------------

    async def _run_dispatcher(self) -> None:
        while True:
            item = await self._dispatch.get()
            if item is END:
                return
            targets, payload = item
            for sub in targets:
                if not sub.cancelled:
                    sub.took(payload)
                    try:
                        result = sub.callback(payload)
                        if inspect.isawaitable(result):
                            if _TELLS_CANCELLING:
                                await result
                            else:
                                await _await_apart(result)
                    except asyncio.CancelledError:
                        if self._closed or _being_cancelled(unknown=True):
                            raise
                        log.error("etcd3: watch callback %r was cancelled; delivery "
                                  "continues", sub.callback)
                    except CallbackCancelled:
                        log.error("etcd3: watch callback %r was cancelled; delivery "
                                  "continues", sub.callback)
                    except Exception:
                        log.exception("etcd3: watch callback %r raised; delivery "
                                      "continues", sub.callback)
                if sub.max_queue is not None:
                    sub.delivered += 1

    # -- shutdown -----------------------------------------------------------------------

    def _shut(self) -> List[asyncio.Task[Any]]:
        """End every watch, the stream and the tasks (on the loop); returns the tasks
        to wait for."""
        if self._closed:
            return []
        self._closed = True
        self._wakeup.set()
        requests = self._requests
        self._apply(self._core.close())
        if requests is not None:
            requests.put_nowait(END)
        self._drop_call()
        self._dispatch.put_nowait(END)
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        return tasks

    async def aclose(self) -> None:
        """End every watch (iterators end, callbacks are called no more), the stream
        and the tasks, and wait for the tasks to end. Idempotent."""
        tasks = self._shut()
        if tasks:
            await asyncio.wait(tasks)

    def close(self) -> None:
        """:meth:`aclose` without waiting; safe from any thread (a finalizer). When
        the engine's loop has ended, only forgets the watches."""
        loop = self._loop
        try:
            running: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._shut()
            return
        if not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._shut)
                return
            except RuntimeError:  # closed meanwhile
                pass
        self._closed = True
        self._tasks = []
        try:
            self._apply(self._core.close())
        except RuntimeError:  # an inbox's waiter belongs to the closed loop
            log.debug("etcd3: watch inboxes of a closed loop", exc_info=True)
