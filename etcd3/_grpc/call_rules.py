"""What every gRPC driver's call path shares: one unary call's attempts, the retry
decision carried out, the final error, and which read-only transactions must go
without a gRPC deadline.

A driver (threads: :mod:`etcd3._sync.transport`; asyncio: :mod:`etcd3.aio._transport`)
subclasses :class:`CallRules` and supplies the I/O: sending an attempt, fetching a
token, sleeping, and learning a server's version (:meth:`CallRules._learn_version`).
See :mod:`etcd3._sync.transport` for require-leader and the etcd 3.5.0-3.5.4 rule.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Optional, Set, Tuple, Union

import grpc

from .. import exceptions
from .._core import retry_rules as _rules
from .._core.deadline import NEVER, UNSET, Deadline, Timeout
from .._core.txn_safety import is_read_only_txn, txn_unsafe_version
from ..pool import REQUIRE_LEADER, ChannelPool, EndpointState
from ..retry import Retry
from . import call_errors as _call_errors
from . import errors as _errors
from .rpc import Method

if TYPE_CHECKING:
    from ..observability import Recorder

log = logging.getLogger("etcd3")

Metadata = Optional[Tuple[Tuple[str, str], ...]]

_TXN_PATH = "/etcdserverpb.KV/Txn"


class Attempts:
    """One unary call (blocking or future) on its way: what it sends, its retry
    :class:`~etcd3._core.retry_rules.History`, and the attempt in flight (its
    endpoint ``state`` and whether it runs on a ``budgeted`` share of the time).

    The attempt in flight joins the history only when it fails (:meth:`failed`):
    a call that succeeds at once, as most do, makes no History at all.
    """

    __slots__ = ("method", "request", "deadline", "context", "history", "state",
                 "budgeted", "metadata", "pinned", "anonymous", "read_only", "avoid",
                 "started", "span", "carried", "scope")

    def __init__(self, method: Method, request: Any, deadline: Deadline,
                 context: str, pinned: Optional[EndpointState] = None,
                 anonymous: bool = False) -> None:
        self.pinned = pinned  # every attempt goes to this endpoint (per-member calls)
        self.anonymous = anonymous  # sent without an auth token (Authenticate itself)
        self.method = method
        self.request = request
        self.deadline = deadline
        self.context = context
        self.history = _NO_ATTEMPT  # the attempts that failed
        self.state: Optional[EndpointState] = None
        self.budgeted = False
        self.avoid: Optional[EndpointState] = None  # the next attempt skips it
        self.metadata: Metadata = None
        self.read_only: Optional[bool] = None  # a read-only Txn? (worked out once)
        self.started = 0.0  # set by a recorder (see etcd3.observability)
        self.span: Any = None
        self.carried: Metadata = None  # trace context sent along, when asked
        self.scope: Any = None  # the span made current while a blocking call runs

    def failed(self) -> _rules.History:
        """The history with the attempt in flight, which failed, added to it."""
        assert self.state is not None
        return self.history.started(self.state.name, budgeted=self.budgeted)

    def kind(self, transport: CallRules) -> _rules.CallKind:
        """What the retry rules need to know about this call."""
        return _rules.CallKind(
            self.method.repeatable,
            authenticated=transport.token_provider is not None and not self.anonymous,
            pinned=self.pinned is not None)


_NO_ATTEMPT = _rules.History()


class LeftRunning(Exception):
    """Internal: an attempt sent without a gRPC deadline got no answer within its
    time and is left running (see :meth:`CallRules._left_running_timed_out`)."""

    def __init__(self, call: Any) -> None:
        super().__init__("left running")
        self.call = call


class CallRules:
    """The driver-independent half of a transport (see the module docstring)."""

    pool: ChannelPool
    retry: Retry
    timeout: Optional[float]
    token_provider: Any
    _left_running: Set[Any]
    #: Metrics and traces (see :mod:`etcd3.observability`); None: nothing recorded.
    recorder: Optional[Recorder] = None

    @property
    def closed(self) -> bool:
        """True once the driver's client is closed."""
        raise NotImplementedError

    def _learn_version(self, state: EndpointState) -> None:
        """Start learning ``state``'s server version, without waiting."""
        raise NotImplementedError

    def deadline(self, timeout: Timeout = UNSET) -> Deadline:
        """The deadline of a call given ``timeout`` (default: the client's timeout;
        None: no deadline).

        :raises TypeError: ``timeout`` is not a number of seconds.
        :raises ValueError: it is not > 0.
        """
        if timeout is UNSET:
            timeout = self.timeout
        if timeout is None:
            return NEVER
        return Deadline.after(timeout, zero_ok=False)

    def _plan_attempt(self, ctx: Attempts) -> Tuple[Optional[float], Optional[float]]:
        """Pick the endpoint of the next attempt (``ctx.state``) and its share of the
        remaining time. Returns (attempt timeout, auth budget): the seconds the
        attempt may take, and those a token fetch for it may take (None: no limit).
        """
        state = ctx.pinned or self.pool.pick(ctx.avoid)
        ctx.state = state
        history = ctx.history
        remaining = total = ctx.deadline.remaining()
        spread = ctx.pinned is None and len(self.pool.endpoints) > 1
        more = spread and self.pool.has_untried((*history.endpoints_tried, state.name))
        budgeted = False
        # An attempt budget only makes sense when another endpoint can be tried and
        # the call may be repeated; the last attempt gets the whole remaining time.
        if (ctx.method.repeatable and spread
                and history.attempts + 1 < self.retry.max_attempts):
            budget = self.retry.attempt_budget(remaining, more_endpoints=more)
            if budget is not None and (remaining is None or budget < remaining):
                remaining = budget
                budgeted = True
        ctx.budgeted = budgeted
        # A token fetch on a hung or stale member must not take the whole call,
        # write or not: the call itself is not sent until it has a token.
        auth_budget = (self.retry.attempt_budget(total, more_endpoints=more)
                       if spread else total)
        return remaining, None if auth_budget is None else max(auth_budget, 0.001)

    def _after_failure(self, ctx: Attempts, error: grpc.RpcError
                       ) -> Union[_rules.Refresh, _rules.RetryAfter]:
        """Decide what follows a failed attempt (see :func:`_rules.decide`): eject its
        endpoint when the rules say so, and return the next step: a
        :class:`~_rules.Refresh` (the caller must then call :meth:`_refresh`) or a
        :class:`~_rules.RetryAfter` (the caller waits its ``pause``).

        :raises Etcd3Exception: the final, translated error, with the call's
            ``attempts`` and ``endpoints_tried``.
        """
        state = ctx.state
        assert state is not None
        history = ctx.history = ctx.failed()
        if self.closed:
            if self.recorder is not None:
                self.recorder.call_ended(ctx, "CANCELLED")
            raise _call_errors.stamped(exceptions.ClientClosedError(
                "this etcd3 client has been closed"), history) from error
        failure = _errors.classify(error, secure=state.endpoint.secure)
        decision = _rules.decide(ctx.kind(self), failure, history, ctx.deadline,
                                 self.retry, time.monotonic())
        ctx.history = decision.history
        if self.recorder is not None:
            self.recorder.attempt_failed(ctx, failure, decision)
        if decision.eject:
            self.pool.mark_failed(state)
        if isinstance(decision, _rules.Give):
            if decision.reason is _rules.Reason.TLS:
                raise _call_errors.stamped(self._tls_error(error, ctx), ctx.history) from error
            raise self._final_error(error, ctx) from error
        ctx.avoid = state if decision.avoid_last else None
        if isinstance(decision, _rules.RetryAfter):
            log.debug("etcd3: %s failed on %s (%s); retry %d in %.3fs",
                      ctx.method.path, state.name, failure.code,
                      decision.history.attempts, decision.pause)
        return decision

    def _token_fetch_failed(self, ctx: Attempts, error: exceptions.Etcd3Exception
                            ) -> float:
        """The auth token for the attempt's endpoint could not be fetched. When that
        endpoint could not be reached in time (hung, stale, down), it is ejected and the
        seconds to wait before the next attempt are returned: the call itself was never
        sent, so even a write may go elsewhere. Anything else is raised (as the token
        fetch raised it).
        """
        state = ctx.state
        if state is None:  # no endpoint was picked (the client is closed)
            if self.recorder is not None:
                self.recorder.call_ended(ctx, "CANCELLED", error)
            raise error
        failure = _errors.classify_token_fetch(error)
        decision = _rules.decide(ctx.kind(self), failure, ctx.failed(), ctx.deadline,
                                 self.retry, time.monotonic())
        ctx.history = decision.history
        if self.recorder is not None:
            self.recorder.attempt_failed(ctx, failure, decision)
        if not isinstance(decision, _rules.RetryAfter):
            raise error
        log.info("etcd3: could not authenticate with %s (%s); trying another endpoint",
                 state.name, error)
        self.pool.mark_failed(state)
        ctx.avoid = state
        return decision.pause

    def _succeeded(self, ctx: Attempts) -> None:
        if self.recorder is not None:
            self.recorder.call_ended(ctx, "OK")
        state = ctx.state
        if state is not None and state.failures:
            self.pool.mark_ok(state)

    def _tls_error(self, error: BaseException, ctx: Attempts) -> exceptions.Etcd3Exception:
        assert ctx.state is not None
        return _errors.tls_error(error, ctx.state.endpoint)

    def _final_error(self, error: BaseException, ctx: Attempts) -> exceptions.Etcd3Exception:
        """The error that ends the call (see :func:`_call_errors.final_error`)."""
        state = ctx.state
        assert state is not None
        return _call_errors.final_error(
            error, ctx.history, method=ctx.method, context=ctx.context,
            endpoint=state.name, secure=state.endpoint.secure,
            endpoints=len(self.pool.endpoints), credentials=self.token_provider is not None)

    def _without_deadline(self, ctx: Attempts) -> bool:
        """True when this attempt must go without a gRPC deadline: a read-only Txn to
        a server that may crash if its context ends (see the module docstring)."""
        if ctx.method.path != _TXN_PATH:
            return False
        assert ctx.state is not None
        if self.read_txn_safe(ctx.state):
            return False
        if ctx.read_only is None:
            ctx.read_only = is_read_only_txn(ctx.request)
        return ctx.read_only

    def _left_running_error(self, ctx: Attempts, call: Any) -> exceptions.Etcd3Exception:
        self._left_running.add(call)
        call.add_done_callback(self._left_running.discard)
        assert ctx.state is not None
        return _call_errors.stamped(exceptions.ConnectionTimeoutError(
            f"{ctx.method.path} did not complete within the deadline (endpoint "
            f"{ctx.state.name}; a read-only transaction to etcd "
            f"{_version_text(ctx.state.version)} is left to finish on the server, "
            "since cancelling it can crash etcd 3.5.0-3.5.4)"), ctx.failed())

    def _left_running_timed_out(self, ctx: Attempts, call: Any) -> float:
        """An attempt sent without a gRPC deadline (see :meth:`_without_deadline`)
        got no answer within its time; ``call`` stays running on the server. When
        the rules allow another attempt (a repeatable call, such as ``get_many``'s
        read-only Txns, with time left) its endpoint is ejected as a hung one would
        be and the pause before the next attempt is returned.

        :raises ConnectionTimeoutError: no other attempt: the call ends here.
        """
        state = ctx.state
        assert state is not None
        error = self._left_running_error(ctx, call)
        failure = _rules.Failure(_rules.DEADLINE_EXCEEDED, "left running on the server")
        decision = _rules.decide(ctx.kind(self), failure, ctx.failed(), ctx.deadline,
                                 self.retry, time.monotonic())
        if self.recorder is not None:
            self.recorder.attempt_failed(ctx, failure, decision)
        if not isinstance(decision, _rules.RetryAfter):
            raise error
        ctx.history = decision.history
        if decision.eject:
            self.pool.mark_failed(state)
        ctx.avoid = state if decision.avoid_last else None
        log.info("etcd3: a read-only transaction on %s got no answer within its attempt "
                 "budget; it is left running there and sent to another endpoint",
                 state.name)
        return decision.pause

    def once_budget(self, state: EndpointState, timeout: Optional[float]
                    ) -> Tuple[Optional[float], bool]:
        """The budget of a single attempt on ``state`` (a repeatable call's first,
        see :mod:`etcd3.retry`) within ``timeout``, and whether it is shorter than
        ``timeout`` (running out of it then means the member did not answer in time,
        not that the caller's deadline passed)."""
        budget = timeout
        if len(self.pool.endpoints) > 1:
            budget = self.retry.attempt_budget(
                timeout, more_endpoints=self.pool.has_untried((state.name,)))
        return budget, budget is not None and (timeout is None or budget < timeout)

    def read_txn_safe(self, state: EndpointState) -> bool:
        """True when ``state``'s server is known not to panic on a read-only Txn whose
        context ends (see the module docstring); when its version is not known yet,
        False, and a Status call to learn it is started (without waiting)."""
        version = state.version
        if version is None:
            self._learn_version(state)
            return False
        return not txn_unsafe_version(version)


def routed_metadata(method: Method, auth: Metadata, carried: Metadata = None) -> Metadata:
    """The metadata of a call of ``method``: ``auth`` (the token, if any), plus
    require-leader for the services that take it (see the module docstring), plus
    ``carried`` (trace context, when asked for)."""
    if carried:
        auth = (auth or ()) + carried
    if method.require_leader:
        return (auth or ()) + (REQUIRE_LEADER,)
    return auth


def _version_text(version: Optional[Tuple[int, ...]]) -> str:
    return ".".join(map(str, version)) if version else "of unknown version"


