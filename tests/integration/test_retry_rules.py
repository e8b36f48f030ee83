"""Retry classification, checked on real gRPC errors from real etcd servers."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest

import etcd3
from etcd3 import exceptions
from etcd3._grpc import errors as _errors
from etcd3._grpc import rpc as _rpc
from etcd3.etcdrpc import rpc_pb2 as pb
from etcd3.retry import Retry
from etcd3.testing import EtcdServer


def _raw(endpoint: str, method: Any, request: Any, timeout: float = 3.0) -> grpc.RpcError:
    """The gRPC error a bare channel gets for ``request`` (the test fails on success)."""
    channel = grpc.insecure_channel(endpoint)
    try:
        fn = channel.unary_unary(method.path, request_serializer=method.serializer,
                                 response_deserializer=method.deserializer)
        with pytest.raises(grpc.RpcError) as info:
            fn(request, timeout=timeout)
        return info.value
    finally:
        channel.close()


@pytest.fixture(scope="module")
def server():
    with EtcdServer() as server:
        yield server


def test_connection_refused_is_not_sent_and_retryable_for_writes(server) -> None:
    server.kill()
    try:
        error = _raw(server.endpoint, _rpc.PUT, pb.PutRequest(key=b"a"))
    finally:
        server.start()
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert _errors.is_not_sent(error)
    assert Retry().is_retryable(error, repeatable=False)
    assert Retry().is_retryable(error, repeatable=True)


def _write_cut_in_flight(server: EtcdServer) -> Any:
    """The error of a put sent to a frozen member that is then killed (None if the
    put somehow completed, e.g. the freeze came too late on a loaded machine)."""
    channel = grpc.insecure_channel(server.endpoint, options=[("grpc.enable_retries", 0)])
    try:
        put = channel.unary_unary(_rpc.PUT.path, request_serializer=_rpc.PUT.serializer,
                                  response_deserializer=_rpc.PUT.deserializer)
        put(pb.PutRequest(key=b"warm"), timeout=5)
        server.pause()
        future = put.future(pb.PutRequest(key=b"b"), timeout=10)
        time.sleep(0.2)
        server.kill()
        return future.exception(timeout=10)
    finally:
        channel.close()
        server.start()


def test_broken_connection_in_flight_is_not_retried_for_writes(server) -> None:
    error = None
    for _ in range(3):
        error = _write_cut_in_flight(server)
        if error is not None:
            break
    assert error is not None, "the put survived its server being killed three times"
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert not _errors.is_not_sent(error)
    assert not Retry().is_retryable(error, repeatable=False)
    assert Retry().is_retryable(error, repeatable=True)
    assert _errors.is_endpoint_failure(error)


def test_frozen_member_deadline(server) -> None:
    server.pause()
    try:
        error = _raw(server.endpoint, _rpc.RANGE, pb.RangeRequest(key=b"a"), timeout=0.5)
    finally:
        server.resume()
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert not _errors.is_not_sent(error)
    # Only an attempt cut short by Retry.attempt_timeout is repeated, and only reads.
    assert Retry().is_retryable(error, repeatable=True, attempt_timed_out=True)
    assert not Retry().is_retryable(error, repeatable=True)
    assert not Retry().is_retryable(error, repeatable=False, attempt_timed_out=True)
    assert isinstance(_errors.translate(error), exceptions.ConnectionTimeoutError)


def test_typed_etcd_errors_are_never_retried(server) -> None:
    error = _raw(server.endpoint, _rpc.RANGE, pb.RangeRequest(key=b"a", revision=10**9))
    assert not Retry().is_retryable(error, repeatable=True)
    assert isinstance(_errors.translate(error), exceptions.FutureRevisionError)


def test_write_to_frozen_member_says_it_may_have_been_applied(server) -> None:
    with etcd3.client(endpoints=[server.endpoint], timeout=0.5) as client:
        client.put("/frozen", "1")
        server.pause()
        try:
            with pytest.raises(exceptions.ConnectionTimeoutError,
                               match="may or may not have been applied"):
                client.put("/frozen", "2")
            with pytest.raises(exceptions.ConnectionTimeoutError) as info:
                client.get("/frozen")
            assert "may or may not" not in str(info.value)
        finally:
            server.resume()
        assert client.get("/frozen", timeout=5)[0] in (b"1", b"2")


def test_per_call_timeout_overrides_client_timeout(server) -> None:
    with etcd3.client(endpoints=[server.endpoint], timeout=30) as client:
        client.get("/t")  # connected: the next call is sent, then hangs
        server.pause()
        try:
            started = time.monotonic()
            with pytest.raises(exceptions.ConnectionTimeoutError):
                client.get("/t", timeout=0.3)
            assert time.monotonic() - started < 2
        finally:
            server.resume()


def test_no_quorum_write_is_uncertain_and_not_retried() -> None:
    from etcd3.testing import EtcdCluster

    with EtcdCluster(size=3) as cluster:
        first, *others = cluster.members
        with etcd3.client(endpoints=[first.endpoint], timeout=10,
                          retry=Retry(max_attempts=3)) as client:
            client.put("/nq", "1")
            for member in others:
                member.kill()
            with pytest.raises((exceptions.ConnectionFailedError,
                                exceptions.ConnectionTimeoutError)) as info:
                client.put("/nq", "2", timeout=10)
            cause = info.value.__cause__
            assert cause.code() in (grpc.StatusCode.UNAVAILABLE,
                                    grpc.StatusCode.DEADLINE_EXCEEDED)
            assert "may or may not have been applied" in str(info.value)
            assert "1 attempt(s)" in str(info.value)  # never repeated


def test_retry_backoff_is_bounded_and_jittered() -> None:
    retry = Retry(initial_backoff=0.1, max_backoff=0.4, jitter=0.5)
    assert retry.backoff(1) == 0.0
    for n in range(2, 12):
        wait = retry.backoff(n)
        assert 0 <= wait <= 0.4
    assert Retry.disabled().max_attempts == 1
    with pytest.raises(ValueError):
        Retry(max_attempts=0)
    with pytest.raises(ValueError):
        Retry(jitter=2)


def test_attempt_budget_splits_the_deadline_while_another_endpoint_is_left() -> None:
    retry = Retry()  # attempt_fraction 0.5, min_attempt_timeout 0.5, attempt_timeout 10
    assert retry.attempt_budget(5.0, more_endpoints=True) == 2.5
    assert retry.attempt_budget(2.5, more_endpoints=True) == 1.25
    assert retry.attempt_budget(5.0, more_endpoints=False) == 5.0  # the last one: all
    assert retry.attempt_budget(0.6, more_endpoints=True) == 0.5  # min_attempt_timeout
    assert retry.attempt_budget(0.4, more_endpoints=True) == 0.4  # too short to split
    assert retry.attempt_budget(1.2, more_endpoints=True) == 0.6
    assert retry.attempt_budget(60.0, more_endpoints=True) == 10.0  # attempt_timeout
    assert retry.attempt_budget(None, more_endpoints=True) == 10.0
    assert Retry(attempt_timeout=None).attempt_budget(None, more_endpoints=True) is None
    assert Retry.disabled().attempt_budget(5.0, more_endpoints=True) == 5.0
    assert Retry(attempt_fraction=1.0).attempt_budget(5.0, more_endpoints=True) == 5.0
    for bad in ({"attempt_fraction": 0}, {"attempt_fraction": 1.5},
                {"min_attempt_timeout": -1}):
        with pytest.raises(ValueError):
            Retry(**bad)  # type: ignore[arg-type]
