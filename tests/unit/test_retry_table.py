"""Every row of the retry rules (etcd3._core.retry_rules.decide), without a server.

Each row: the kind of call x the failure x the attempts so far x the time left ->
the decision. The policy has no jitter, so pauses are exact: the first retry goes at
once (0 s), the second after 0.1 s, the third after 0.2 s; three attempts in all.
"""

from __future__ import annotations

import socket
from typing import Optional

import grpc
import pytest
from grpc_errors import HANDSHAKE_DETAILS, REFUSED_DETAILS, RpcError

import etcd3
from etcd3 import exceptions
from etcd3._core.deadline import NEVER, Deadline
from etcd3._core.retry_rules import (
    MIN_RETRY_WINDOW,
    CallKind,
    Decision,
    Failure,
    Give,
    History,
    Reason,
    Refresh,
    RetryAfter,
    decide,
    retryable,
)
from etcd3._grpc.errors import classify, classify_token_fetch, translate
from etcd3.retry import Retry

POLICY = Retry(max_attempts=3, initial_backoff=0.1, multiplier=2.0, jitter=0.0)
NOW = 1024.0  # a power of two: NOW + left - NOW == left, exactly

# -- kinds of call ----------------------------------------------------------------------
READ = CallKind(repeatable=True)
WRITE = CallKind(repeatable=False)
AUTH_READ = CallKind(repeatable=True, authenticated=True)
AUTH_WRITE = CallKind(repeatable=False, authenticated=True)
PINNED_READ = CallKind(repeatable=True, pinned=True)
PINNED_AUTH = CallKind(repeatable=True, authenticated=True, pinned=True)

# -- failures, as the gRPC driver classifies them ------------------------------------------
REFUSED = Failure("UNAVAILABLE", "failed to connect to all addresses", not_sent=True)
BROKEN = Failure("UNAVAILABLE", "Socket closed")  # sent, then the connection broke
NO_LEADER = Failure("UNAVAILABLE", "etcdserver: no leader")
DEADLINE = Failure("DEADLINE_EXCEEDED", "Deadline Exceeded")
COMPACTED = Failure("OUT_OF_RANGE", "etcdserver: mvcc: required revision has been compacted")
DENIED = Failure("PERMISSION_DENIED", "etcdserver: permission denied")
TOKEN = Failure("UNAUTHENTICATED", "etcdserver: invalid auth token", auth_token=True)
TLS = Failure("UNAVAILABLE", "failed to connect to all addresses; Handshake read failed",
              not_sent=True, tls=True)
LOCAL = Failure(None, "left running")  # not a gRPC status: the driver's own timeout
FETCH_DOWN = Failure("UNAVAILABLE", "no endpoint", not_sent=True, token_fetch=True)
FETCH_SLOW = Failure("DEADLINE_EXCEEDED", "timed out", not_sent=True, token_fetch=True)
FETCH_REFUSED = Failure(None, "authentication failed", not_sent=True, token_fetch=True)

# -- histories: the failed attempt is the last one ------------------------------------------
FIRST = History().started("a")
SECOND = FIRST.started("b")
LAST = SECOND.started("c")  # attempts == max_attempts
FIRST_BUDGETED = FIRST._replace(budgeted=True)
LAST_BUDGETED = LAST._replace(budgeted=True)
REFRESHED = FIRST._replace(refreshed=True)

# -- time left (None: no deadline) --------------------------------------------------------
PLENTY = 5.0
GONE = 0.0
TIGHT = 0.1 + MIN_RETRY_WINDOW / 2  # less than the second pause plus the window


def retry(pause: float, history: History, eject: bool = False, avoid_last: bool = True
          ) -> RetryAfter:
    return RetryAfter(pause, history, eject, avoid_last)


def give(reason: Reason, history: History, eject: bool = False) -> Give:
    return Give(reason, history, eject)


def unreachable(history: History, details: str) -> History:
    return history._replace(unreachable=history.unreachable + 1, unreachable_details=details)


ROWS = [
    # id, call, failure, history, seconds left, decision
    # A request that never left the process goes again, a write too; at once the first
    # time, then after a growing pause; the endpoint is ejected (UNAVAILABLE).
    ("refused read", READ, REFUSED, FIRST, PLENTY,
     retry(0.0, unreachable(FIRST, REFUSED.details), eject=True)),
    ("refused write", WRITE, REFUSED, FIRST, PLENTY,
     retry(0.0, unreachable(FIRST, REFUSED.details), eject=True)),
    ("refused write, 2nd", WRITE, REFUSED, SECOND, None,
     retry(0.1, unreachable(SECOND, REFUSED.details), eject=True)),
    ("refused write, last", WRITE, REFUSED, LAST, PLENTY,
     give(Reason.FINAL, unreachable(LAST, REFUSED.details), eject=True)),
    ("refused write, expired", WRITE, REFUSED, FIRST, GONE,
     give(Reason.FINAL, unreachable(FIRST, REFUSED.details), eject=True)),
    ("refused read, no time for the pause", READ, REFUSED, SECOND, TIGHT,
     give(Reason.FINAL, unreachable(SECOND, REFUSED.details), eject=True)),
    # UNAVAILABLE after it was sent: a read goes elsewhere, a write never.
    ("broken read", READ, BROKEN, FIRST, PLENTY, retry(0.0, FIRST, eject=True)),
    ("broken write", WRITE, BROKEN, FIRST, PLENTY, give(Reason.FINAL, FIRST, eject=True)),
    ("no leader read", READ, NO_LEADER, SECOND, None, retry(0.1, SECOND, eject=True)),
    ("no leader write", WRITE, NO_LEADER, FIRST, None,
     give(Reason.FINAL, FIRST, eject=True)),
    ("no leader read, last", READ, NO_LEADER, LAST, None,
     give(Reason.FINAL, LAST, eject=True)),
    ("no leader read, expired", READ, NO_LEADER, FIRST, GONE,
     give(Reason.FINAL, FIRST, eject=True)),
    ("no leader read, tight", READ, NO_LEADER, SECOND, TIGHT,
     give(Reason.FINAL, SECOND, eject=True)),
    ("no leader pinned read", PINNED_READ, NO_LEADER, FIRST, PLENTY,
     retry(0.0, FIRST, eject=True, avoid_last=False)),
    # A deadline: only an attempt cut short by its own budget is repeated, only a read,
    # and that endpoint is ejected (hung); the call's own deadline ends the call.
    ("budget ran out, read", READ, DEADLINE, FIRST_BUDGETED, PLENTY,
     retry(0.0, FIRST_BUDGETED, eject=True)),
    ("budget ran out, read, no deadline", READ, DEADLINE, FIRST_BUDGETED, None,
     retry(0.0, FIRST_BUDGETED, eject=True)),
    ("budget ran out, write", WRITE, DEADLINE, FIRST_BUDGETED, PLENTY,
     give(Reason.FINAL, FIRST_BUDGETED, eject=True)),
    ("budget ran out, last", READ, DEADLINE, LAST_BUDGETED, PLENTY,
     give(Reason.FINAL, LAST_BUDGETED, eject=True)),
    ("call deadline, read", READ, DEADLINE, FIRST, GONE, give(Reason.FINAL, FIRST)),
    ("budgeted, but the call deadline too", READ, DEADLINE, FIRST_BUDGETED, GONE,
     give(Reason.FINAL, FIRST_BUDGETED)),
    ("unbudgeted deadline, time left", READ, DEADLINE, FIRST, PLENTY,
     give(Reason.FINAL, FIRST)),
    # Typed etcd errors are the answer.
    ("compacted read", READ, COMPACTED, FIRST, PLENTY, give(Reason.FINAL, FIRST)),
    ("denied write", WRITE, DENIED, FIRST, PLENTY, give(Reason.FINAL, FIRST)),
    ("local error", READ, LOCAL, FIRST, PLENTY, give(Reason.FINAL, FIRST)),
    # A refused token: refreshed once, the repeat not counted; even for a write.
    ("token, read", AUTH_READ, TOKEN, FIRST, PLENTY,
     Refresh(FIRST._replace(attempts=0, refreshed=True))),
    ("token, write", AUTH_WRITE, TOKEN, SECOND, GONE,
     Refresh(SECOND._replace(attempts=1, refreshed=True))),
    ("token, pinned", PINNED_AUTH, TOKEN, FIRST, None,
     Refresh(FIRST._replace(attempts=0, refreshed=True), avoid_last=False)),
    ("token, refreshed already", AUTH_READ, TOKEN, REFRESHED, PLENTY,
     give(Reason.FINAL, REFRESHED)),
    ("token, no credentials", READ, TOKEN, FIRST, PLENTY, give(Reason.FINAL, FIRST)),
    # A failed TLS handshake is a configuration error: raised at once, endpoint ejected.
    ("tls", READ, TLS, FIRST, PLENTY,
     give(Reason.TLS, unreachable(FIRST, TLS.details), eject=True)),
    ("tls write", WRITE, TLS, FIRST, None,
     give(Reason.TLS, unreachable(FIRST, TLS.details), eject=True)),
    # The token for the attempt's endpoint could not be fetched: the call was not
    # sent; an unreachable endpoint is ejected and another tried, the pause cut to the
    # time left; anything else (or a pinned call) raises the fetch's own error.
    ("fetch, down", WRITE, FETCH_DOWN, FIRST, PLENTY, retry(0.0, FIRST, eject=True)),
    ("fetch, slow", READ, FETCH_SLOW, SECOND, None, retry(0.1, SECOND, eject=True)),
    ("fetch, slow, tight", READ, FETCH_SLOW, SECOND, 0.0625,
     retry(0.0625, SECOND, eject=True)),
    ("fetch, refused", WRITE, FETCH_REFUSED, FIRST, PLENTY, give(Reason.TOKEN_FETCH, FIRST)),
    ("fetch, pinned", PINNED_READ, FETCH_DOWN, FIRST, PLENTY,
     give(Reason.TOKEN_FETCH, FIRST)),
    ("fetch, last", READ, FETCH_DOWN, LAST, PLENTY, give(Reason.TOKEN_FETCH, LAST)),
    ("fetch, expired", READ, FETCH_DOWN, FIRST, GONE, give(Reason.TOKEN_FETCH, FIRST)),
]


def _deadline(left: Optional[float]) -> Deadline:
    return NEVER if left is None else Deadline(NOW + left)


@pytest.mark.parametrize(("call", "failure", "history", "left", "expected"),
                         [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_rule(call: CallKind, failure: Failure, history: History, left: Optional[float],
              expected: Decision) -> None:
    decision = decide(call, failure, history, _deadline(left), POLICY, NOW)
    assert type(decision) is type(expected)
    assert decision == expected


def test_every_call_kind_and_failure_has_a_row() -> None:
    kinds = {row[1].repeatable for row in ROWS}
    failures = {row[2] for row in ROWS}
    assert kinds == {True, False}
    assert {REFUSED, BROKEN, NO_LEADER, DEADLINE, COMPACTED, TOKEN, TLS, LOCAL,
            FETCH_DOWN, FETCH_SLOW, FETCH_REFUSED} <= failures


def test_the_decision_is_pure() -> None:
    for _, call, failure, history, left, expected in ROWS:
        for _ in range(2):
            assert decide(call, failure, history, _deadline(left), POLICY, NOW) == expected


def test_history_records_attempts_and_endpoints_once() -> None:
    history = History()
    assert (history.attempts, history.endpoints_tried) == (0, ())
    for name in ("a", "b", "a", "c"):
        history = history.started(name)
    assert history.attempts == 4
    assert history.endpoints_tried == ("a", "b", "c")
    assert history.started("b").budgeted is False
    assert History().started("a", budgeted=True).budgeted is True


def test_disabled_policy_never_retries() -> None:
    for failure in (REFUSED, BROKEN, NO_LEADER):
        decision = decide(READ, failure, FIRST, NEVER, Retry.disabled(), NOW)
        assert isinstance(decision, Give)


def test_backoff_grows_with_the_attempts() -> None:
    policy = Retry(max_attempts=10, initial_backoff=0.1, multiplier=2.0, max_backoff=0.3,
                   jitter=0.0)
    history = History()
    pauses = []
    for name in "abcdef":
        history = history.started(name)
        decision = decide(READ, NO_LEADER, history, NEVER, policy, NOW)
        assert isinstance(decision, RetryAfter)
        pauses.append(decision.pause)
        history = decision.history
    assert pauses == [0.0, 0.1, 0.2, 0.3, 0.3, 0.3]


@pytest.mark.parametrize(("failure", "repeatable", "timed_out", "expected"), [
    (REFUSED, False, False, True),
    (REFUSED, True, False, True),
    (BROKEN, False, False, False),
    (BROKEN, True, False, True),
    (DEADLINE, True, True, True),
    (DEADLINE, True, False, False),
    (DEADLINE, False, True, False),
    (COMPACTED, True, False, False),
])
def test_retryable(failure: Failure, repeatable: bool, timed_out: bool,
                   expected: bool) -> None:
    assert retryable(failure, repeatable=repeatable, attempt_timed_out=timed_out) is expected


# -- the gRPC driver's classification ---------------------------------------------------------


@pytest.mark.parametrize(("code", "details", "secure", "expected"), [
    (grpc.StatusCode.UNAVAILABLE, REFUSED_DETAILS, False,
     Failure("UNAVAILABLE", REFUSED_DETAILS, not_sent=True)),
    (grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader", False,
     Failure("UNAVAILABLE", "etcdserver: no leader")),
    (grpc.StatusCode.UNAVAILABLE, HANDSHAKE_DETAILS, True,
     Failure("UNAVAILABLE", HANDSHAKE_DETAILS, not_sent=True, tls=True)),
    (grpc.StatusCode.UNAVAILABLE, HANDSHAKE_DETAILS, False,
     Failure("UNAVAILABLE", HANDSHAKE_DETAILS, not_sent=True)),
    (grpc.StatusCode.UNKNOWN, "context deadline exceeded", False,
     Failure("DEADLINE_EXCEEDED", "context deadline exceeded")),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", False,
     Failure("DEADLINE_EXCEEDED", "Deadline Exceeded")),
    (grpc.StatusCode.UNAUTHENTICATED, "etcdserver: invalid auth token", False,
     Failure("UNAUTHENTICATED", "etcdserver: invalid auth token", auth_token=True)),
    (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: revision of auth store is old",
     False, Failure("FAILED_PRECONDITION", "etcdserver: revision of auth store is old",
                    auth_token=True)),
    (grpc.StatusCode.OUT_OF_RANGE, COMPACTED.details, False,
     Failure("OUT_OF_RANGE", COMPACTED.details)),
    # etcd 3.4 passes its auth store's error through on a snapshot stream.
    (grpc.StatusCode.UNKNOWN, "auth: invalid auth token", False,
     Failure("UNKNOWN", "auth: invalid auth token", auth_token=True)),
])
def test_classify(code: grpc.StatusCode, details: str, secure: bool,
                  expected: Failure) -> None:
    assert classify(RpcError(code, details), secure=secure) == expected


def test_an_auth_store_error_is_typed_as_etcd_s_own() -> None:
    error = translate(RpcError(grpc.StatusCode.UNKNOWN, "auth: invalid auth token"))
    assert isinstance(error, exceptions.InvalidAuthTokenError)


def test_classify_token_fetch() -> None:
    assert classify_token_fetch(exceptions.NoServerAvailableError("x")).code == "UNAVAILABLE"
    assert classify_token_fetch(
        exceptions.ConnectionTimeoutError("x")).code == "DEADLINE_EXCEEDED"
    refused = classify_token_fetch(exceptions.AuthenticationFailedError("x"))
    assert refused.code is None and refused.token_fetch and refused.not_sent


def test_public_is_retryable_follows_the_rules() -> None:
    refused = RpcError(grpc.StatusCode.UNAVAILABLE, REFUSED_DETAILS)
    broken = RpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed")
    assert Retry().is_retryable(refused, repeatable=False)
    assert not Retry().is_retryable(broken, repeatable=False)
    assert Retry().is_retryable(broken, repeatable=True)


# -- what the raised error carries ---------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_errors_carry_attempts_and_endpoints_tried() -> None:
    endpoints = [f"127.0.0.1:{_closed_port()}", f"127.0.0.1:{_closed_port()}"]
    retry_policy = Retry(max_attempts=3, initial_backoff=0.01, jitter=0.0)
    with etcd3.client(endpoints=endpoints, timeout=2, retry=retry_policy) as client:
        for call in (lambda: client.get("/k"), lambda: client.put("/k", "v")):
            with pytest.raises(exceptions.NoServerAvailableError) as info:
                call()
            error = info.value
            assert error.attempts == 3
            assert sorted(error.endpoints_tried) == sorted(endpoints)
            assert (f"; 3 attempt(s), endpoints tried: {', '.join(error.endpoints_tried)}"
                    in str(error))


def test_future_path_errors_carry_them_too() -> None:
    from etcd3._grpc import rpc as _rpc

    endpoints = [f"127.0.0.1:{_closed_port()}", f"127.0.0.1:{_closed_port()}"]
    retry_policy = Retry(max_attempts=2, initial_backoff=0.01, jitter=0.0)
    with etcd3.client(endpoints=endpoints, timeout=2, retry=retry_policy) as client:
        future = client._transport.call_future(_rpc.PUT, b"", context="key b'k'")
        error = future.exception(timeout=10)
        assert isinstance(error, exceptions.NoServerAvailableError)
        assert error.attempts == 2
        assert sorted(error.endpoints_tried) == sorted(endpoints)
        assert "; 2 attempt(s), endpoints tried: " in str(error)


def test_errors_raised_elsewhere_have_defaults() -> None:
    error = exceptions.ConnectionFailedError("x")
    assert error.attempts == 0 and error.endpoints_tried == ()
    assert exceptions.RevisionCompactedError(5).attempts == 0
