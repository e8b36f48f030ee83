"""What follows a failed attempt of a unary call: one pure decision.

:func:`decide` takes everything the rules depend on as plain values — the kind of
call (:class:`CallKind`), the failure (:class:`Failure`, which a driver builds from
its gRPC error), the attempts so far (:class:`History`), the call's
:class:`~etcd3._core.deadline.Deadline` and the retry policy — and returns one of

- :class:`Refresh`: re-authenticate, then repeat the call (not counted as an attempt);
- :class:`RetryAfter`: wait ``pause`` seconds, then try again (on another endpoint
  unless the call is pinned to one);
- :class:`Give`: stop and raise (``reason`` says which error the driver raises).

Every decision also says whether to eject the endpoint of the failed attempt and
carries the :class:`History` to go on with. Nothing here does I/O, reads a clock or
keeps state, so the threaded driver, its future path and an asyncio driver share the
rules, and a table of cases tests them (``tests/unit/test_retry_table.py``).

The rules are etcd's Go client's (``client/v3/retry_interceptor.go``), spelt out in
:mod:`etcd3.retry`.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, Optional, Protocol, Tuple, Union

from .deadline import Deadline

#: Seconds a retry must have left before the deadline to be worth starting: a retry
#: with almost no time would only trade this error (e.g. "no leader") for a deadline.
MIN_RETRY_WINDOW = 0.01

UNAVAILABLE = "UNAVAILABLE"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"


class RetryPolicy(Protocol):
    """What the rules need of a policy (:class:`etcd3.retry.Retry` is one)."""

    @property
    def max_attempts(self) -> int: ...

    def backoff(self, retry_number: int) -> float: ...


class CallKind(NamedTuple):
    """What kind of call failed (constant over its attempts)."""

    #: May be sent again once it reached a server (reads, status, lists).
    repeatable: bool
    #: Carries an auth token that the client can refresh (a client with
    #: credentials, and not the Authenticate call itself).
    authenticated: bool = False
    #: Every attempt goes to one endpoint (per-member calls such as Status).
    pinned: bool = False


class Failure(NamedTuple):
    """A failed attempt, classified: no gRPC objects, only what the rules use."""

    #: The gRPC status code's name ("UNAVAILABLE", "DEADLINE_EXCEEDED", ...), None
    #: when the failure did not come with one. etcd's server-side "context deadline
    #: exceeded" counts as DEADLINE_EXCEEDED.
    code: Optional[str] = None
    #: gRPC's details (kept for the message of a call that never got through).
    details: str = ""
    #: The request provably never left this process (connection refused, no
    #: address): safe to send again, even a write.
    not_sent: bool = False
    #: The server refused the auth token (expired, old auth revision, no user).
    auth_token: bool = False
    #: The TLS handshake with a TLS endpoint failed: a configuration error.
    tls: bool = False
    #: The call's auth token could not be fetched (the call itself was not sent);
    #: ``code`` then tells whether its endpoint was unreachable.
    token_fetch: bool = False


class History(NamedTuple):
    """The attempts of one call so far (immutable: each step returns a new one)."""

    #: Attempts started (a repeat after a token refresh does not count).
    attempts: int = 0
    #: Endpoint names tried, in order, each once.
    endpoints_tried: Tuple[str, ...] = ()
    #: The auth token was refreshed once already (it is not refreshed twice).
    refreshed: bool = False
    #: Attempts that could not reach a server at all, and gRPC's words for the last.
    unreachable: int = 0
    unreachable_details: str = ""
    #: The last attempt ran on a budget shorter than the time left (see
    #: :meth:`etcd3.retry.Retry.attempt_budget`): its running out is not the
    #: call's deadline.
    budgeted: bool = False

    def started(self, endpoint: str, *, budgeted: bool = False) -> History:
        """The history once an attempt on ``endpoint`` has started."""
        tried = self.endpoints_tried
        if endpoint not in tried:
            tried = tried + (endpoint,)
        # tuple.__new__ directly: every call makes one, and the generated __new__
        # costs several times more.
        return _new(History, (self.attempts + 1, tried, self.refreshed, self.unreachable,
                              self.unreachable_details, budgeted))


_new = tuple.__new__


class Reason(enum.Enum):
    """Which error ends the call (see :class:`Give`)."""

    #: The failure, translated, with the attempts and endpoints in its message.
    FINAL = "final"
    #: A failed TLS handshake, worded as the configuration error it is.
    TLS = "tls"
    #: The token fetch's own error, as it is.
    TOKEN_FETCH = "token fetch"


class Refresh(NamedTuple):
    """Re-authenticate on the endpoint that refused the token, then repeat."""

    history: History
    #: The next attempt avoids the last endpoint (when another is available).
    avoid_last: bool = True
    eject: bool = False


class RetryAfter(NamedTuple):
    """Wait ``pause`` seconds, then start the next attempt."""

    pause: float
    history: History
    #: Eject the endpoint of the failed attempt (it is down, hung or leaderless).
    eject: bool = False
    #: The next attempt avoids the last endpoint (when another is available); False
    #: for a call pinned to one endpoint.
    avoid_last: bool = True


class Give(NamedTuple):
    """Stop: raise the error ``reason`` names."""

    reason: Reason
    history: History
    eject: bool = False


Decision = Union[Refresh, RetryAfter, Give]


def retryable(failure: Failure, *, repeatable: bool, attempt_timed_out: bool = False
              ) -> bool:
    """Whether the failure allows another attempt of a call of this kind.

    Anything never sent may be sent again; a repeatable call also after UNAVAILABLE
    (member down, no leader, connection broken) or after its attempt ran out of its
    own budget; a typed etcd error, or a write that reached a server, never.
    """
    if failure.not_sent:
        return True
    if not repeatable:
        return False
    if failure.code == UNAVAILABLE:
        return True
    return failure.code == DEADLINE_EXCEEDED and attempt_timed_out


def decide(call: CallKind, failure: Failure, history: History, deadline: Deadline,
           policy: RetryPolicy, now: float) -> Decision:
    """What follows the failed attempt that ``history`` ends with.

    :param now: the monotonic time of the decision (the clock is the caller's).
    :returns: :class:`Refresh`, :class:`RetryAfter` or :class:`Give`.
    """
    if failure.token_fetch:
        return _after_token_fetch(call, failure, history, deadline, policy, now)
    if failure.auth_token and call.authenticated and not history.refreshed:
        repeat = history._replace(attempts=history.attempts - 1, refreshed=True)
        return Refresh(repeat, avoid_last=not call.pinned)
    if failure.not_sent:
        history = history._replace(unreachable=history.unreachable + 1,
                                   unreachable_details=failure.details)
    expired = deadline.expired_at(now)
    attempt_timed_out = (history.budgeted and failure.code == DEADLINE_EXCEEDED
                         and not expired)
    eject = attempt_timed_out or failure.code == UNAVAILABLE
    if failure.tls:
        return Give(Reason.TLS, history, eject)
    if (history.attempts < policy.max_attempts and not expired
            and retryable(failure, repeatable=call.repeatable,
                          attempt_timed_out=attempt_timed_out)):
        pause = policy.backoff(history.attempts)
        left = deadline.remaining(now)
        if left is None or left - pause >= MIN_RETRY_WINDOW:
            return RetryAfter(pause, history, eject, avoid_last=not call.pinned)
    return Give(Reason.FINAL, history, eject)


def _after_token_fetch(call: CallKind, failure: Failure, history: History,
                       deadline: Deadline, policy: RetryPolicy, now: float) -> Decision:
    # The call was never sent: when its endpoint could not be reached in time (hung,
    # stale, down), even a write may go elsewhere; anything else (a wrong password)
    # is the answer.
    if (call.pinned or failure.code not in (UNAVAILABLE, DEADLINE_EXCEEDED)
            or history.attempts >= policy.max_attempts or deadline.expired_at(now)):
        return Give(Reason.TOKEN_FETCH, history)
    pause = policy.backoff(history.attempts)
    left = deadline.remaining(now)
    return RetryAfter(pause if left is None else min(pause, left), history, eject=True)
