"""The error that ends a unary call (etcd3._grpc.call_errors), without a server."""

from __future__ import annotations

import grpc
import pytest
from grpc_errors import REFUSED_DETAILS, RpcError

from etcd3 import exceptions
from etcd3._core.retry_rules import History
from etcd3._grpc import rpc as _rpc
from etcd3._grpc.call_errors import final_error

UNCERTAIN = "may or may not have been applied"


def _history(*endpoints: str, unreachable: int = 0) -> History:
    history = History()
    for name in endpoints:
        history = history.started(name)
    return history._replace(unreachable=unreachable,
                            unreachable_details=REFUSED_DETAILS if unreachable else "")


def _final(error: BaseException, history: History, method: _rpc.Method = _rpc.RANGE,
           endpoints: int = 2, credentials: bool = False) -> exceptions.Etcd3Exception:
    return final_error(error, history, method=method, context="key b'k'",
                       endpoint=history.endpoints_tried[-1], secure=False,
                       endpoints=endpoints, credentials=credentials)


@pytest.mark.parametrize(("method", "uncertain"), [(_rpc.PUT, True), (_rpc.RANGE, False)])
def test_a_deadline_says_whether_a_write_may_have_been_applied(
        method: _rpc.Method, uncertain: bool) -> None:
    error = RpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    final = _final(error, _history("a:1"), method)
    assert isinstance(final, exceptions.ConnectionTimeoutError)
    assert (UNCERTAIN in str(final)) is uncertain
    assert str(final).endswith("; 1 attempt(s), endpoints tried: a:1")
    assert (final.attempts, final.endpoints_tried) == (1, ("a:1",))
    assert final.__cause__ is error and final.code() is grpc.StatusCode.DEADLINE_EXCEEDED


def test_every_endpoint_refused() -> None:
    error = RpcError(grpc.StatusCode.UNAVAILABLE, REFUSED_DETAILS)
    final = _final(error, _history("a:1", "b:2", "a:1", unreachable=3), _rpc.PUT)
    assert isinstance(final, exceptions.NoServerAvailableError)
    text = str(final)
    assert text.startswith("no etcd endpoint could be reached for Put [key b'k']: "
                           "Failed to connect to remote host: Connection refused"), text
    assert UNCERTAIN not in text
    assert text.endswith("; 3 attempt(s), endpoints tried: a:1, b:2")
    assert final.endpoints_tried == ("a:1", "b:2")


def test_down_then_the_deadline() -> None:
    error = RpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    final = _final(error, _history("a:1", "b:2", unreachable=1), endpoints=3)
    assert type(final) is exceptions.ConnectionFailedError
    assert "within the deadline: Failed to connect to remote host: Connection refused" \
        in str(final)


def test_typed_errors_keep_their_words_and_get_the_history() -> None:
    error = RpcError(grpc.StatusCode.OUT_OF_RANGE,
                      "etcdserver: mvcc: required revision has been compacted")
    final = _final(error, _history("a:1"))
    assert isinstance(final, exceptions.RevisionCompactedError)
    assert "attempt(s)" not in str(final)
    assert final.attempts == 1 and final.endpoints_tried == ("a:1",)


def test_no_credentials_hint() -> None:
    error = RpcError(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: user name is empty")
    hinted = _final(error, _history("a:1"))
    assert "pass user= and password=" in str(hinted)
    assert "pass user=" not in str(_final(error, _history("a:1"), credentials=True))


def test_the_drivers_own_errors() -> None:
    # A connection or timeout error is worded like gRPC's; any other is kept as it is.
    own = exceptions.ConnectionTimeoutError("left running")
    final = _final(own, _history("a:1", "b:2"), _rpc.TXN)
    assert type(final) is exceptions.ConnectionTimeoutError
    assert str(final) == ("Txn [key b'k'] failed on b:2: left running; the request was "
                          "sent and may or may not have been applied (writes are not "
                          "retried once sent: check before repeating it); 2 attempt(s), "
                          "endpoints tried: a:1, b:2")
    closed = exceptions.ClientClosedError("closed")
    assert _final(closed, _history("a:1")) is closed
    assert closed.attempts == 1
