"""The one call path every RPC takes.

pick an endpoint -> attach the auth token -> call -> on failure decide (token refresh,
retry elsewhere, or raise a translated error). Streams get their channel and token
from here too and report failures back, so the pool's view of health is shared.

Blocking calls (:meth:`Transport.call`) and non-blocking ones
(:meth:`Transport.call_future`) classify a failure into a plain value and ask the one
pure decision, :func:`etcd3._core.retry_rules.decide`, what follows, so both obey
exactly the same retry rules (see :mod:`etcd3.retry`); ``_after_failure`` and
``_token_fetch_failed`` carry out its answer.

Require-leader: every KV, Lease, Watch and Auth call and stream the pool routes
carries the gRPC metadata ``hasleader: true`` (Go's ``clientv3.WithRequireLeader``),
so a member that lost its leader refuses it with "etcdserver: no leader"
(UNAVAILABLE: the call moves on, the member is ejected) and cancels the streams it
holds (a watch or keepalive moves to the majority) instead of serving stale reads or
staying silent. Cluster and Maintenance calls (member list, status, alarms,
defragment, snapshot, ...) do not carry it: they are how one looks at a cluster in
trouble.

Read-only transactions and etcd 3.5.0-3.5.4: those servers panic when a read-only
Txn's context ends (deadline or cancel) while it is applied (etcd issue #14110, fixed
in 3.5.5). The server version of each endpoint is learnt with a Status call and
cached on its :class:`~etcd3.pool.EndpointState` (forgotten when the endpoint is
ejected, since it may come back as another version). Until it is known to be safe,
every read-only Txn (every op a range: a batch of reads, a user's ``transaction()``,
``get_many``, an STM commit without writes) is sent without a gRPC deadline: the
caller still waits only until its deadline, and the call is left to finish on the
server rather than cancelled; close() gives such calls a moment to finish before it
closes the channels.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import threading
import time
from typing import Any, Callable, Iterator, NamedTuple, Optional, Tuple

import grpc

from .. import exceptions
from .._core import retry_rules as _rules
from .._core.deadline import NEVER, UNSET, Deadline, Timeout
from .._core.txn_safety import parse_version
from .._grpc import errors as _errors
from .._grpc.call_rules import Attempts, CallRules, LeftRunning, Metadata, routed_metadata
from .._grpc.rpc import Method
from ..pool import ChannelPool, EndpointState
from ..retry import Retry
from . import forksafe as _forksafe
from .token import TokenProvider

log = logging.getLogger("etcd3")

_STATUS_PATH = "/etcdserverpb.Maintenance/Status"
#: Seconds close() waits for read-only Txns left running (see _call_left_running).
LEFT_RUNNING_GRACE = 0.5
#: Seconds before a failed Status call (to learn a server's version) is tried again.
_VERSION_RETRY = 5.0


class Transport(CallRules):
    """Runs RPCs over a :class:`ChannelPool` under a :class:`Retry` policy."""

    def __init__(
        self,
        pool: ChannelPool,
        *,
        retry: Retry,
        timeout: Optional[float],
        token_provider: Optional[TokenProvider] = None,
        authenticate_method: Optional[Method] = None,
    ) -> None:
        self.pool = pool
        self.retry = retry
        self.timeout = timeout
        self.token_provider = token_provider
        self._authenticate_method = authenticate_method
        self._closed = threading.Event()
        self._retry_lock = threading.Lock()
        self._retry_executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        # Read-only Txns left running on a server that may crash if they are
        # cancelled: close() gives them a moment to finish first.
        self._left_running: set[Any] = set()
        _forksafe.register(self)

    def _after_fork_in_child(self) -> None:
        # The parent's retry threads don't exist here; a new pool starts when needed.
        self._retry_lock = threading.Lock()
        self._retry_executor = None
        self._left_running = set()

    # -- plumbing -------------------------------------------------------------------

    def _callable(self, state: EndpointState, method: Method,
                  index: Optional[int] = None) -> Any:
        if index is None:
            index = state.pick_index()
        registry = state.callables[index]
        fn = registry.get(method.key)
        if fn is None:
            channel = state.channels[index]
            factory = getattr(channel, method.kind)
            fn = factory(method.path, request_serializer=method.serializer,
                         response_deserializer=method.deserializer)
            registry[method.key] = fn
        return fn

    def metadata_for(self, state: EndpointState, *, fetch: bool = True,
                     timeout: Timeout = UNSET) -> Metadata:
        """The auth metadata for a call to ``state`` (authenticating if needed).

        :param fetch: False: never authenticate here (it blocks on an RPC); raise
            :class:`~etcd3.exceptions.InvalidAuthTokenError` when no token is cached.
        :param timeout: seconds the Authenticate call may take (default: the
            client's timeout).
        """
        provider = self.token_provider
        if provider is None:
            return None
        token = provider.cached(state.name)
        if token is None:
            if not fetch:
                raise exceptions.InvalidAuthTokenError(f"no auth token for {state.name} yet")
            token = provider.get(state.name,
                                 lambda u, p: self._authenticate(state, u, p, timeout))
        return (("token", token),) if token else None

    def refresh_token(self, state: EndpointState, rejected: Metadata) -> None:
        """Replace the token that ``state`` rejected with a new one."""
        provider = self.token_provider
        if provider is None:
            return
        old = next((value for key, value in rejected or () if key == "token"), None)
        log.info("etcd3: auth token rejected by %s, re-authenticating", state.name)
        provider.refresh(state.name, old, lambda u, p: self._authenticate(state, u, p))

    def _authenticate(self, state: EndpointState, user: str, password: str,
                      timeout: Timeout = UNSET) -> str:
        method = self._authenticate_method
        if method is None:
            raise exceptions.AuthError("authentication is not available")
        from ..etcdrpc import rpc_pb2

        request = rpc_pb2.AuthenticateRequest(name=user, password=password)
        response = self.call(method, request, context=f"authenticating as {user!r}",
                             endpoint=state, anonymous=True, timeout=timeout)
        return str(response.token)

    # -- the retry decision, shared by call() and call_future() ----------------------

    def _begin_attempt(self, ctx: Attempts, channel_index: Optional[int] = None
                       ) -> Tuple[Any, Optional[float]]:
        """Pick the endpoint of the next attempt; returns (multi-callable, timeout).

        ``channel_index`` picks one of the endpoint's channels (default: round-robin).
        """
        remaining, auth_budget = self._plan_attempt(ctx)
        state = ctx.state
        assert state is not None
        metadata = None
        if not ctx.anonymous and self.token_provider is not None:
            metadata = self.metadata_for(
                state, timeout=UNSET if auth_budget is None else auth_budget)
        ctx.metadata = routed_metadata(ctx.method, metadata, ctx.carried)
        return self._callable(state, ctx.method, channel_index), remaining

    def _refresh(self, ctx: Attempts) -> None:
        assert ctx.state is not None
        self.refresh_token(ctx.state, ctx.metadata)

    # -- unary calls ------------------------------------------------------------------

    def call(self, method: Method, request: Any, *, timeout: Timeout = UNSET,
             context: str = "", endpoint: Optional[EndpointState] = None,
             anonymous: bool = False) -> Any:
        """Run a unary RPC and return its decoded response.

        :param timeout: seconds for the whole call, retries included (default: the
            client's timeout; None: no deadline).
        :param context: words added to an error message (e.g. the key).
        :param endpoint: run every attempt on this endpoint (one of ``pool.states``),
            for per-member calls such as Status or Defragment.
        :param anonymous: send it without an auth token, even when the client has
            credentials.
        :raises Etcd3Exception: the translated failure (see :mod:`etcd3.exceptions`),
            with the call's ``attempts`` and ``endpoints_tried``.
        :raises TypeError: ``timeout`` is not a number of seconds.
        :raises ValueError: it is not > 0.
        """
        # What self.deadline(timeout) does, without a call: this is the hot path.
        if timeout is UNSET:
            timeout = self.timeout
        deadline = NEVER if timeout is None else Deadline.after(timeout, zero_ok=False)
        ctx = Attempts(method, request, deadline, context, endpoint, anonymous)
        recorder = self.recorder
        if recorder is not None:
            recorder.call_started(ctx)
        try:
            while True:
                try:
                    fn, attempt_timeout = self._begin_attempt(ctx)
                except exceptions.Etcd3Exception as error:
                    wait = self._token_fetch_failed(ctx, error)
                    if wait:
                        time.sleep(wait)
                    continue
                gate = _forksafe.GATE
                gate.enter()
                try:
                    if self._without_deadline(ctx):
                        result = self._call_left_running(ctx, fn, attempt_timeout)
                    else:
                        result = fn(request, timeout=attempt_timeout, metadata=ctx.metadata)
                except grpc.RpcError as error:
                    gate.leave()
                    step = self._after_failure(ctx, error)
                    if isinstance(step, _rules.Refresh):
                        self._refresh(ctx)
                    elif step.pause:
                        time.sleep(step.pause)
                    continue
                except LeftRunning as left:
                    gate.leave()
                    pause = self._left_running_timed_out(ctx, left.call)
                    if pause:
                        time.sleep(pause)
                    continue
                except BaseException:
                    gate.leave()
                    raise
                gate.leave()
                if recorder is not None:
                    recorder.call_ended(ctx, "OK")
                if ctx.state.failures:  # type: ignore[union-attr]
                    self.pool.mark_ok(ctx.state)  # type: ignore[arg-type]
                return result
        except BaseException as error:
            if recorder is not None:  # ended here unless ended already
                recorder.call_ended(ctx, "UNKNOWN", error)
            raise

    def _call_left_running(self, ctx: Attempts, fn: Any, wait: Optional[float]) -> Any:
        """One attempt sent without a gRPC deadline, waited for up to ``wait`` s.

        :raises LeftRunning: no answer in time: the call is left running (never
            cancelled; see :meth:`_left_running_timed_out`).
        """
        call = fn.future(ctx.request, timeout=None, metadata=ctx.metadata)
        try:
            return call.result(timeout=wait)
        except grpc.FutureTimeoutError:
            raise LeftRunning(call) from None

    # -- server versions --------------------------------------------------------------

    def _learn_version(self, state: EndpointState) -> None:
        now = time.monotonic()
        with self._retry_lock:
            if state.version_pending > now:
                return
            state.version_pending = float("inf")
        from ..etcdrpc import rpc_pb2

        def done(call: Any) -> None:
            try:
                state.version = parse_version(call.result().version)
            except Exception as error:  # not reachable now, or refused: try later
                log.debug("etcd3: could not learn the version of %s: %s", state.name,
                          error)
            state.version_pending = time.monotonic() + _VERSION_RETRY

        try:
            try:
                metadata = self.metadata_for(state, fetch=False)
            except exceptions.Etcd3Exception:
                metadata = None
            status = state.channels[0].unary_unary(
                _STATUS_PATH, request_serializer=_identity,
                response_deserializer=rpc_pb2.StatusResponse.FromString)
            status.future(b"", timeout=self.pool.probe_timeout,
                          metadata=metadata).add_done_callback(done)
        except Exception as error:  # the channel was closed meanwhile
            log.debug("etcd3: could not ask %s for its version: %s", state.name, error)
            state.version_pending = now + _VERSION_RETRY

    def call_future(self, method: Method, request: Any, *, timeout: Timeout = UNSET,
                    context: str = "") -> concurrent.futures.Future[Any]:
        """Start a unary RPC without waiting; returns a :class:`concurrent.futures.Future`.

        The future's ``result(timeout=None)`` gives the decoded response or raises the
        same translated :class:`~etcd3.exceptions.Etcd3Exception` :meth:`call` would;
        the same retry rules apply (writes are retried only when never sent, expired
        auth tokens are refreshed). Many futures may be in flight at once, which is
        how a single thread keeps several requests on the wire. ``cancel()`` on a
        pending future cancels the RPC (a write may still have been applied).
        Retries and token refreshes run on a small helper thread of the transport,
        never on gRPC's completion thread; :meth:`close` fails pending futures with
        :class:`~etcd3.exceptions.ClientClosedError`.

        :param timeout: seconds for the whole call, retries included (default: the
            client's timeout; None: no deadline).
        :param context: words added to an error message (e.g. the key).
        :raises ClientClosedError: the client is closed (raised at once).
        :raises TypeError: ``timeout`` is not a number of seconds.
        :raises ValueError: it is not > 0.
        """
        ctx = Attempts(method, request, self.deadline(timeout), context)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if self.recorder is not None:
            self.recorder.call_started(ctx, current=False)
            future.add_done_callback(functools.partial(self.recorder.future_done, ctx))
        self._start_future_attempt(ctx, future)
        return future

    def start_once(self, method: Method, request: Any, *, timeout: Optional[float],
                   read_only_txn: bool = False) -> Tuple[Any, Optional[NoDeadline]]:
        """Start ONE attempt of a read without waiting: no retry, no error
        translation. For callers that handle every failure themselves (the read
        batcher re-runs failed batches as ordinary calls).

        The attempt gets the budget of a repeatable call's first attempt (see
        :mod:`etcd3.retry`); when it runs out of it, its endpoint is ejected before
        the future's callbacks run.
        Returns the gRPC future (``result()`` raises ``grpc.RpcError`` on failure)
        and None; or, for a ``read_only_txn`` to an endpoint not known to be safe for
        one (see :meth:`read_txn_safe`), the future of a call sent without a gRPC
        deadline and the :class:`NoDeadline` that says how long to wait for it:
        the caller gives up by itself, with :meth:`abandon`, never by cancelling.
        :raises Etcd3Exception: no call could be started (e.g. the client is closed,
            or it has no auth token for the endpoint yet: fetching one would block).
        """
        state = self.pool.pick()
        metadata = routed_metadata(method, self.metadata_for(state, fetch=False))
        budget, attempt_only = self.once_budget(state, timeout)
        fn = self._callable(state, method, 0)  # see _start_future_attempt
        if read_only_txn and not self.read_txn_safe(state):
            call = _start_future(fn, request, None, metadata)
            self._left_running.add(call)
            call.add_done_callback(self._left_running.discard)
            return call, NoDeadline(state, budget, attempt_only)
        call = _start_future(fn, request, budget, metadata)
        if attempt_only:
            call.add_done_callback(lambda done: self._once_done(state, done))
        return call, None

    def abandon(self, no_deadline: NoDeadline) -> None:
        """Stop waiting for a call :meth:`start_once` sent without a deadline: it is
        left to finish on the server; when only its attempt's budget (not the
        caller's deadline) ran out, its endpoint is ejected as a hung one would be."""
        if no_deadline.attempt_only:
            log.info("etcd3: a batch of reads on %s got no answer within its attempt "
                     "budget; it is left running there", no_deadline.state.name)
            self.pool.mark_failed(no_deadline.state)

    def _once_done(self, state: EndpointState, call: Any) -> None:
        # An attempt that ran out of its own budget (not the caller's deadline): the
        # member did not answer in time; leave it aside.
        if call.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
            log.info("etcd3: a read on %s got no answer within its attempt budget",
                     state.name)
            self.pool.mark_failed(state)

    def _start_future_attempt(self, ctx: Attempts, future: concurrent.futures.Future[Any]
                              ) -> None:
        try:
            # Every future goes to the endpoint's first channel: gRPC completes futures
            # on a Python thread per channel, which it stops when the channel has no
            # call left and starts again for the next one; one channel keeps one such
            # thread busy instead of several starting and stopping.
            fn, attempt_timeout = self._begin_attempt(ctx, channel_index=0)
            if self._without_deadline(ctx):
                call = _start_future(fn, ctx.request, None, ctx.metadata)
                if attempt_timeout is not None:
                    self._settle_at_deadline(ctx, future, call, attempt_timeout)
            else:
                call = _start_future(fn, ctx.request, attempt_timeout, ctx.metadata)
        except exceptions.Etcd3Exception as error:
            try:
                wait = self._token_fetch_failed(ctx, error)
            except exceptions.Etcd3Exception as final:
                _settle(future, error=final)
                return
            self._run_later(lambda: self._retry_future(ctx, future, wait), future)
            return
        except grpc.RpcError as error:  # failed before a call object existed
            self._future_failed(ctx, future, error)
            return
        future.add_done_callback(lambda f: f.cancelled() and call.cancel())
        call.add_done_callback(lambda done: self._future_done(ctx, future, done))

    def _settle_at_deadline(self, ctx: Attempts, future: concurrent.futures.Future[Any],
                            call: Any, wait: float) -> None:
        """Fail ``future`` after ``wait`` seconds unless ``call`` is done by then,
        leaving ``call`` running (see _call_left_running)."""
        def expire() -> None:
            if not call.done():
                _settle(future, error=self._left_running_error(ctx, call))

        timer = threading.Timer(wait, expire)
        timer.daemon = True
        timer.start()
        call.add_done_callback(lambda _: timer.cancel())

    def _future_done(self, ctx: Attempts, future: concurrent.futures.Future[Any],
                     call: Any) -> None:
        # Runs on gRPC's completion thread: decide quickly, never block here.
        try:
            result = call.result()
        except grpc.RpcError as error:
            self._future_failed(ctx, future, error)
            return
        except grpc.FutureCancelledError:
            _settle(future, error=exceptions.ClientClosedError(
                "the call was cancelled (client closed)"))
            return
        except BaseException as error:  # a deserializer failure
            _settle(future, error=error)
            return
        self._succeeded(ctx)
        _settle(future, result=result)

    def _future_failed(self, ctx: Attempts, future: concurrent.futures.Future[Any],
                       error: grpc.RpcError) -> None:
        try:
            step = self._after_failure(ctx, error)
        except BaseException as final:
            _settle(future, error=final)
            return
        pause = None if isinstance(step, _rules.Refresh) else step.pause
        self._run_later(lambda: self._retry_future(ctx, future, pause), future)

    def _retry_future(self, ctx: Attempts, future: concurrent.futures.Future[Any],
                      pause: Optional[float]) -> None:
        """Start the next attempt of a future's call, after ``pause`` seconds (None:
        after refreshing the auth token)."""
        try:
            if pause is None:
                self._refresh(ctx)
            elif pause:
                time.sleep(pause)
        except BaseException as error:
            _settle(future, error=error)
            return
        self._start_future_attempt(ctx, future)

    def _run_later(self, job: Callable[[], None],
                   future: concurrent.futures.Future[Any]) -> None:
        with self._retry_lock:
            executor = self._retry_executor
            if executor is None and not self._closed.is_set():
                executor = self._retry_executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=4, thread_name_prefix="etcd3-retry")
            try:
                if executor is None:
                    raise RuntimeError("closed")
                task = executor.submit(job)
            except RuntimeError:
                _settle(future, error=exceptions.ClientClosedError(
                    "this etcd3 client has been closed"))
                return

        def settle_if_cancelled(done: concurrent.futures.Future[Any]) -> None:
            if done.cancelled():
                _settle(future, error=exceptions.ClientClosedError(
                    "this etcd3 client has been closed"))

        task.add_done_callback(settle_if_cancelled)

    # -- streams ----------------------------------------------------------------------

    def open_stream(self, method: Method, request: Any, *,
                    avoid: Optional[EndpointState] = None,
                    timeout: Optional[float] = None,
                    endpoint: Optional[EndpointState] = None) -> Tuple[Any, EndpointState]:
        """Open a streaming RPC on a healthy endpoint (or on ``endpoint`` only).

        ``request`` is the request iterator (stream-stream) or message (unary-stream).
        Returns the gRPC call (iterate it for responses) and the endpoint it runs on;
        the caller reports failures with :meth:`report_failure`.
        :raises ClientClosedError: the client is closed.
        """
        state = self.pool.pick(avoid) if endpoint is None else endpoint
        metadata = routed_metadata(method, self.metadata_for(state))
        fn = self._callable(state, method)
        return fn(request, timeout=timeout, metadata=metadata), state

    def report_failure(self, state: EndpointState, error: BaseException) -> None:
        """Tell the pool a stream on ``state`` failed (ejects it when unavailable)."""
        if _errors.is_endpoint_failure(error):
            self.pool.mark_failed(state)

    def report_success(self, state: EndpointState) -> None:
        """Tell the pool a stream on ``state`` works."""
        if state.failures:
            self.pool.mark_ok(state)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Close every channel; in-flight calls fail with ClientClosedError. Idempotent."""
        self._closed.set()
        with self._retry_lock:
            executor, self._retry_executor = self._retry_executor, None
        # Closing the channels cancels calls, which etcd 3.5.0-3.5.4 may crash on for
        # a read-only Txn: give those left running a moment (bounded) to finish.
        give_up = time.monotonic() + LEFT_RUNNING_GRACE
        for call in list(self._left_running):
            left = give_up - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(Exception):
                call.exception(timeout=left)
        self.pool.close()
        if executor is not None:
            # A retry job may close the client itself: never join our own thread.
            own = threading.current_thread().name.startswith("etcd3-retry")
            executor.shutdown(wait=not own, cancel_futures=True)


def _start_future(fn: Any, request: Any, timeout: Optional[float], metadata: Metadata
                  ) -> Any:
    """``fn.future(...)``, holding the fork gate while the call is in flight."""
    gate = _forksafe.GATE
    gate.enter_nowait()
    try:
        call = fn.future(request, timeout=timeout, metadata=metadata)
    except BaseException:
        gate.leave()
        raise
    call.add_done_callback(_leave_gate)
    return call


def _leave_gate(_: Any) -> None:
    _forksafe.GATE.leave()


class NoDeadline(NamedTuple):
    """A read-only Txn :meth:`Transport.start_once` sent without a gRPC deadline."""

    #: The endpoint it went to.
    state: EndpointState
    #: Seconds to wait for it before giving up (None: no limit).
    wait: Optional[float]
    #: True when ``wait`` is the attempt's budget, shorter than the caller's deadline
    #: (giving up then ejects the endpoint; see :meth:`Transport.abandon`).
    attempt_only: bool


def _identity(data: bytes) -> bytes:
    return data


def _settle(future: concurrent.futures.Future[Any], *, result: Any = None,
            error: Optional[BaseException] = None) -> None:
    """Complete ``future`` unless it already is (e.g. cancelled by its owner)."""
    if future.done():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass


def iterate_stream(call: Iterator[Any]) -> Iterator[Any]:
    """Iterate a gRPC response stream, translating its failure."""
    try:
        yield from call
    except grpc.RpcError as error:
        raise _errors.translate(error) from error
