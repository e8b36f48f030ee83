"""The asyncio driver's call path: the threaded transport's rules
(:class:`~etcd3._grpc.call_rules.CallRules`: endpoint picking, attempt budgets,
retry decisions, token refresh, the final error, read-only Txns on etcd
3.5.0-3.5.4) carried out with ``await`` over ``grpc.aio`` channels.

Event loops: ``grpc.aio`` channels belong to the loop they are made in. The pool is
made on the first call, in the running loop. When that loop has ended (a new
``asyncio.run``, a test framework's loop per test) the next call starts over in
the new loop with new channels, as a forked child does; using one client from two
loops running at once raises :class:`RuntimeError`.

Cancellation: a call whose task is cancelled is cancelled on the wire and the
:class:`asyncio.CancelledError` propagates unchanged (``asyncio.timeout()`` turns
it into :class:`TimeoutError`). For a write it carries a note saying the write may
or may not have been applied, as a timed-out write's error says.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import grpc
import grpc.aio

from .. import exceptions
from .._core import retry_rules as _rules
from .._core.deadline import NEVER, UNSET, Deadline, Timeout
from .._core.txn_safety import parse_version
from .._grpc import call_errors as _call_errors
from .._grpc import errors as _errors
from .._grpc.call_rules import Attempts, CallRules, LeftRunning, Metadata, routed_metadata
from .._grpc.rpc import Method
from ..etcdrpc import rpc_pb2
from ..pool import Endpoint, EndpointState
from ..retry import Retry
from ._pool import AioChannelPool
from ._token import AioTokenProvider

log = logging.getLogger("etcd3")

#: Seconds close() waits for read-only Txns left running (see _call_left_running).
LEFT_RUNNING_GRACE = 0.5
#: Seconds before a failed Status call (to learn a server's version) is tried again.
_VERSION_RETRY = 5.0
_STATUS = "/etcdserverpb.Maintenance/Status"

_CLOSED = "this etcd3 client has been closed"


class AioTransport(CallRules):
    """Runs RPCs for one asyncio client (see the module docstring).

    :param endpoints: the endpoints (the pool is made on the first call).
    :param on_bind: called (with no argument) once the pool is made in a loop: on
        the first call, and when the client starts over in a new event loop after
        the old one ended (engines of the old loop are gone then).
    """

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        channels_per_endpoint: int,
        grpc_options: Optional[Sequence[Tuple[str, Any]]],
        retry: Retry,
        timeout: Optional[float],
        token_provider: Optional[AioTokenProvider] = None,
        authenticate_method: Optional[Method] = None,
        on_bind: Optional[Callable[[], None]] = None,
    ) -> None:
        self._endpoints = list(endpoints)
        self._pool_args = dict(channels_per_endpoint=channels_per_endpoint,
                               grpc_options=grpc_options)
        self._pool: Optional[AioChannelPool] = None
        self.retry = retry
        self.timeout = timeout
        self.token_provider = token_provider
        self._authenticate_method = authenticate_method
        self._on_bind = on_bind
        self._closed = False
        self._left_running: Set[Any] = set()

    # -- the pool and its loop ----------------------------------------------------

    @property
    def pool(self) -> AioChannelPool:  # type: ignore[override]
        """The pool of the running loop (made on first use).

        :raises ClientClosedError: the client is closed.
        :raises RuntimeError: no event loop runs, or the client is in use by
            another loop that is still running.
        """
        pool = self._pool
        if pool is not None and pool.loop is asyncio.get_running_loop():
            return pool
        return self._bind()

    def _bind(self) -> AioChannelPool:
        if self._closed:
            raise exceptions.ClientClosedError(_CLOSED)
        loop = asyncio.get_running_loop()
        old = self._pool
        if old is not None:
            if old.loop.is_running() and not old.loop.is_closed():
                raise RuntimeError(
                    "this etcd3.aio client is in use by another event loop that is "
                    "still running; make one client per event loop")
            log.info("etcd3: the event loop of an etcd3.aio client ended; starting over "
                     "in the new loop with new connections")
            self._endpoints = list(old.endpoints)
            old.close()
            if self.token_provider is not None:
                self.token_provider.forget_loop()
            self._left_running = set()
        pool = self._pool = AioChannelPool(self._endpoints, **self._pool_args)
        pool.recorder = self.recorder
        assert pool.loop is loop
        if self._on_bind is not None:
            self._on_bind()
        return pool

    @property
    def endpoints(self) -> List[Endpoint]:
        """The endpoints in use now."""
        return list(self._pool.endpoints if self._pool is not None else self._endpoints)

    def describe(self) -> str:
        """The endpoints, comma-separated, for messages."""
        return ", ".join(str(ep) for ep in self.endpoints)

    @property
    def closed(self) -> bool:
        return self._closed

    def _callable(self, state: EndpointState, method: Method) -> Any:
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

    # -- auth -----------------------------------------------------------------------

    async def metadata_for(self, state: EndpointState, *,
                           timeout: Timeout = UNSET) -> Metadata:
        """The auth metadata for a call to ``state`` (authenticating if needed)."""
        provider = self.token_provider
        if provider is None:
            return None
        token = provider.cached(state.name)
        if token is None:
            token = await provider.aget(
                state.name, lambda u, p: self._authenticate(state, u, p, timeout))
        return (("token", token),) if token else None

    async def refresh_token(self, state: EndpointState, rejected: Metadata) -> None:
        """Replace the token that ``state`` rejected with a new one."""
        provider = self.token_provider
        if provider is None:
            return
        old = next((value for key, value in rejected or () if key == "token"), None)
        log.info("etcd3: auth token rejected by %s, re-authenticating", state.name)
        await provider.arefresh(state.name, old,
                                lambda u, p: self._authenticate(state, u, p))

    async def _authenticate(self, state: EndpointState, user: str, password: str,
                            timeout: Timeout = UNSET) -> str:
        method = self._authenticate_method
        if method is None:
            raise exceptions.AuthError("authentication is not available")
        request = rpc_pb2.AuthenticateRequest(name=user, password=password)
        response = await self.call(method, request, context=f"authenticating as {user!r}",
                                   endpoint=state, anonymous=True, timeout=timeout)
        return str(response.token)

    # -- unary calls ------------------------------------------------------------------

    async def call(self, method: Method, request: Any, *, timeout: Timeout = UNSET,
                   context: str = "", endpoint: Optional[EndpointState] = None,
                   anonymous: bool = False) -> Any:
        """Run a unary RPC and return its decoded response (see
        :meth:`etcd3._sync.transport.Transport.call`: same arguments, same rules).

        :raises Etcd3Exception: the translated failure, with the call's ``attempts``
            and ``endpoints_tried``.
        :raises TypeError: ``timeout`` is not a number of seconds.
        :raises ValueError: it is not > 0.
        """
        if timeout is UNSET:
            timeout = self.timeout
        deadline = NEVER if timeout is None else Deadline.after(timeout, zero_ok=False)
        pool = self.pool
        ctx = Attempts(method, request, deadline, context, endpoint, anonymous)
        recorder = self.recorder
        if recorder is not None:
            recorder.call_started(ctx)
        try:
            while True:
                if self.token_provider is None and not self._closed:
                    # _begin_attempt without a token to fetch: nothing to await.
                    attempt_timeout, _ = self._plan_attempt(ctx)
                    ctx.metadata = routed_metadata(method, None, ctx.carried)
                    fn = self._callable(ctx.state, method)  # type: ignore[arg-type]
                else:
                    try:
                        fn, attempt_timeout = await self._begin_attempt(ctx)
                    except exceptions.Etcd3Exception as error:
                        wait = self._token_fetch_failed(ctx, error)
                        if wait:
                            await asyncio.sleep(wait)
                        continue
                try:
                    if self._without_deadline(ctx):
                        result = await self._call_left_running(ctx, fn, attempt_timeout)
                    else:
                        result = await fn(request, timeout=attempt_timeout,
                                          metadata=_aio_metadata(ctx.metadata))
                except grpc.RpcError as error:
                    step = self._after_failure(ctx, error)
                    if isinstance(step, _rules.Refresh):
                        assert ctx.state is not None
                        await self.refresh_token(ctx.state, ctx.metadata)
                    elif step.pause:
                        await asyncio.sleep(step.pause)
                    continue
                except LeftRunning as left:
                    pause = self._left_running_timed_out(ctx, left.call)
                    if pause:
                        await asyncio.sleep(pause)
                    continue
                except asyncio.CancelledError as cancelled:
                    if self._closed and not _cancelling():
                        # close() closed the channel under the call; nobody cancelled
                        # this task, so it must not end as if someone had.
                        raise _call_errors.stamped(exceptions.ClientClosedError(_CLOSED),
                                                   ctx.failed()) from cancelled
                    if not method.repeatable:
                        _note(cancelled, _cancelled_write_note(ctx))
                    raise
                if recorder is not None:
                    recorder.call_ended(ctx, "OK")
                if ctx.state.failures:  # type: ignore[union-attr]
                    pool.mark_ok(ctx.state)  # type: ignore[arg-type]
                return result
        except BaseException as error:
            if recorder is not None:  # ended here unless ended already
                stopped = isinstance(error, asyncio.CancelledError)
                recorder.call_ended(ctx, "CANCELLED" if stopped else "UNKNOWN", error)
            raise

    async def _begin_attempt(self, ctx: Attempts) -> Tuple[Any, Optional[float]]:
        """Pick the endpoint of the next attempt; returns (multi-callable, timeout)."""
        if self._closed:
            raise exceptions.ClientClosedError(_CLOSED)
        remaining, auth_budget = self._plan_attempt(ctx)
        state = ctx.state
        assert state is not None
        metadata = None
        if not ctx.anonymous and self.token_provider is not None:
            metadata = await self.metadata_for(
                state, timeout=UNSET if auth_budget is None else auth_budget)
        ctx.metadata = routed_metadata(ctx.method, metadata, ctx.carried)
        return self._callable(state, ctx.method), remaining

    async def _call_left_running(self, ctx: Attempts, fn: Any,
                                 wait: Optional[float]) -> Any:
        """One attempt sent without a gRPC deadline, waited for up to ``wait`` s; on
        cancellation of the caller the call is left running, never cancelled (see
        :mod:`etcd3._sync.transport`).

        :raises LeftRunning: no answer in time: the call is left running.
        """
        return await self._unbounded(
            fn(ctx.request, timeout=None, metadata=_aio_metadata(ctx.metadata)), wait)

    async def _unbounded(self, coroutine: Any, wait: Optional[float]) -> Any:
        """Await the call ``coroutine`` starts for at most ``wait`` s, never cancelling
        it: when the caller is cancelled, it is left running.

        :raises LeftRunning: no answer in time (the caller decides what to do with it).
        """
        call = asyncio.ensure_future(coroutine)
        try:
            done, _ = await asyncio.wait((call,), timeout=wait)
        except asyncio.CancelledError:
            self._leave_running(call)
            raise
        if not done:
            raise LeftRunning(call)
        return call.result()

    def _left_running_error(self, ctx: Attempts, call: Any) -> exceptions.Etcd3Exception:
        error = super()._left_running_error(ctx, call)
        call.add_done_callback(_consume)
        return error

    def _leave_running(self, call: Any) -> None:
        self._left_running.add(call)
        call.add_done_callback(self._left_running.discard)
        call.add_done_callback(_consume)

    # -- server versions --------------------------------------------------------------

    def _learn_version(self, state: EndpointState) -> None:
        now = time.monotonic()
        if state.version_pending > now:
            return
        state.version_pending = float("inf")
        self.pool.spawn(self._fetch_version(state))

    async def _fetch_version(self, state: EndpointState) -> None:
        try:
            try:
                metadata = await self.metadata_for(state, timeout=self.pool.probe_timeout)
            except exceptions.Etcd3Exception:
                metadata = None
            status = state.channels[0].unary_unary(
                _STATUS, request_serializer=_identity,
                response_deserializer=rpc_pb2.StatusResponse.FromString)
            response = await status(b"", timeout=self.pool.probe_timeout, metadata=metadata)
            state.version = parse_version(response.version)
        except Exception as error:  # not reachable now, or refused: try later
            log.debug("etcd3: could not learn the version of %s: %s", state.name, error)
        state.version_pending = time.monotonic() + _VERSION_RETRY

    # -- one attempt, for callers that handle failures themselves -------------------

    async def call_once(self, method: Method, request: Any, *, timeout: Optional[float],
                        read_only_txn: bool = False) -> Any:
        """ONE attempt of a read: no retry, no error translation (the read batcher
        re-runs failed batches as ordinary calls). Gets a repeatable call's first
        attempt budget; running out of it ejects the endpoint.

        A ``read_only_txn`` to an endpoint not known to be safe for one (see
        :meth:`read_txn_safe`) goes without a gRPC deadline and is never cancelled:
        when its time runs out, or the caller is cancelled, it is left to finish on
        the server (:meth:`aclose` gives it a moment before closing the channels).

        :raises grpc.RpcError: the attempt failed.
        :raises ConnectionTimeoutError: a call left running got no answer in time.
        :raises Etcd3Exception: it could not start (client closed, no token yet).
        """
        pool = self.pool
        state = pool.pick()
        metadata = routed_metadata(method, await self.metadata_for(state))
        budget, attempt_only = self.once_budget(state, timeout)
        fn = self._callable(state, method)
        try:
            if read_only_txn and not self.read_txn_safe(state):
                try:
                    result = await self._unbounded(
                        fn(request, timeout=None, metadata=_aio_metadata(metadata)), budget)
                except LeftRunning as left:
                    self._leave_running(left.call)
                    raise exceptions.ConnectionTimeoutError(
                        "a batch of reads got no answer in time; it is left to finish "
                        "on the server (cancelling it can crash etcd 3.5.0-3.5.4)"
                    ) from None
            else:
                result = await fn(request, timeout=budget, metadata=_aio_metadata(metadata))
        except (grpc.RpcError, exceptions.ConnectionTimeoutError) as error:
            timed_out = (not isinstance(error, grpc.RpcError)
                         or error.code() is grpc.StatusCode.DEADLINE_EXCEEDED)
            if timed_out and attempt_only:
                log.info("etcd3: a read on %s got no answer within its attempt budget",
                         state.name)
                pool.mark_failed(state)
            raise
        if state.failures:
            pool.mark_ok(state)
        return result

    # -- streams ----------------------------------------------------------------------

    async def open_stream(self, method: Method, request: Any = None, *,
                          avoid: Optional[EndpointState] = None,
                          timeout: Optional[float] = None,
                          endpoint: Optional[EndpointState] = None
                          ) -> Tuple[Any, EndpointState]:
        """Open a streaming RPC on a healthy endpoint (or on ``endpoint`` only).

        ``request``: the request message (unary-stream), or for stream-stream None
        (write with ``await call.write(...)``) or an async iterator of requests.
        Returns the ``grpc.aio`` call and the endpoint it runs on; the caller
        reports failures with :meth:`report_failure`.
        :raises ClientClosedError: the client is closed.
        """
        if self._closed:
            raise exceptions.ClientClosedError(_CLOSED)
        state = self.pool.pick(avoid) if endpoint is None else endpoint
        metadata = routed_metadata(method, await self.metadata_for(state))
        fn = self._callable(state, method)
        return fn(request, timeout=timeout, metadata=_aio_metadata(metadata)), state

    def report_failure(self, state: EndpointState, error: BaseException) -> None:
        """Tell the pool a stream on ``state`` failed (ejects it when unavailable)."""
        if _errors.is_endpoint_failure(error) and self._pool is not None:
            self._pool.mark_failed(state)

    def report_success(self, state: EndpointState) -> None:
        """Tell the pool a stream on ``state`` works."""
        if state.failures and self._pool is not None:
            self._pool.mark_ok(state)

    def set_endpoints(self, endpoints: Iterable[Endpoint]) -> None:
        """Replace the endpoints (kept ones keep their channels and health)."""
        wanted = list(endpoints)
        if self._pool is not None:
            self._pool.set_endpoints(wanted)
        elif not wanted:
            raise ValueError("at least one etcd endpoint is required")
        else:
            self._endpoints = wanted

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Close without waiting: calls in flight fail, channels close on their loop
        (when it still runs). Idempotent."""
        self._closed = True
        if self._pool is not None:
            self._pool.close()

    async def aclose(self) -> None:
        """Close and wait for the channels to close. Idempotent."""
        self._closed = True
        pool = self._pool
        if pool is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not pool.loop:
            pool.close()
            return
        if self._left_running:
            # Closing channels cancels calls, which etcd 3.5.0-3.5.4 may crash on
            # for a read-only Txn: give those left running a moment to finish.
            await asyncio.wait(list(self._left_running), timeout=LEFT_RUNNING_GRACE)
        await pool.aclose()


def _cancelled_write_note(ctx: Attempts) -> str:
    what = ctx.method.path.rpartition("/")[2] + (f" [{ctx.context}]" if ctx.context else "")
    return (f"etcd3: {what} was cancelled after it was sent; it may or may not have been "
            "applied (writes are not retried once sent: check before repeating it)")


def _cancelling() -> bool:
    """True when the current task is being cancelled (always True before Python
    3.11, which cannot tell: a CancelledError is then always passed on)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0


def _note(error: BaseException, note: str) -> None:
    """Add ``note`` to ``error``'s traceback (Python 3.11+), else log it."""
    add_note = getattr(error, "add_note", None)
    if add_note is not None:
        add_note(note)
    else:
        log.info("%s", note)


#: Prebuilt grpc.aio Metadata, by the metadata tuple it holds (see _aio_metadata).
_AIO_METADATA: Dict[Tuple[Tuple[str, str], ...], grpc.aio.Metadata] = {}
_AIO_METADATA_MAX = 64


def _aio_metadata(metadata: Metadata) -> Optional[grpc.aio.Metadata]:
    """``metadata`` as a ``grpc.aio.Metadata``, made once per distinct tuple.

    Given a tuple, grpc.aio builds a Metadata object in Python on every call; KV calls
    all carry require-leader metadata, and that rebuilding measured about 10 us of
    client CPU per call under load (bench_aio.py). grpc.aio only reads the object
    (it copies it into a tuple per call), so one per distinct tuple is reused; the
    cache is emptied when tokens have churned through ``_AIO_METADATA_MAX`` of them.
    """
    if metadata is None:
        return None
    built = _AIO_METADATA.get(metadata)
    if built is None:
        if len(_AIO_METADATA) >= _AIO_METADATA_MAX:
            _AIO_METADATA.clear()
        built = _AIO_METADATA[metadata] = grpc.aio.Metadata(*metadata)
    return built


def _consume(call: Any) -> None:
    """Retrieve a finished future's exception so asyncio does not log it."""
    if not call.cancelled():
        call.exception()


def _identity(data: bytes) -> bytes:
    return data
