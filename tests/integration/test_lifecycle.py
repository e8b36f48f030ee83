"""Client lifecycle: close() releases everything, a closed client says so, and a
forked child can keep using a client created before the fork."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from _concurrency_support import settle

import etcd3
from etcd3 import exceptions
from etcd3._grpc import rpc as _rpc
from etcd3.etcdrpc import rpc_pb2 as pb


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_create_use_close_cycles_leak_nothing(etcd_server) -> None:
    def cycle(i: int) -> None:
        client = etcd3.client(endpoints=[etcd_server.endpoint], timeout=5)
        client.put("/cycle", str(i))
        assert client.get("/cycle")[0] == str(i).encode()
        client._transport.call_future(_rpc.RANGE, pb.RangeRequest(key=b"/cycle")).result()
        client.close()

    for i in range(5):  # warm up gRPC's own process-wide threads and fds
        cycle(i)
    settle(lambda: False, 0.2)
    threads, fds = threading.active_count(), _fds()
    for i in range(200):
        cycle(i)
    assert settle(lambda: threading.active_count() <= threads), threading.enumerate()
    assert settle(lambda: _fds() <= fds + 2), (fds, _fds())


def test_closed_client_raises_client_closed(etcd_server) -> None:
    client = etcd3.client(endpoints=[etcd_server.endpoint], timeout=5)
    client.put("/closed", "1")
    client.close()
    client.close()  # idempotent
    assert client.closed
    with pytest.raises(exceptions.ClientClosedError):
        client.get("/closed")
    with pytest.raises(exceptions.ClientClosedError):
        client.put("/closed", "2")
    future = client._transport.call_future(_rpc.RANGE, pb.RangeRequest(key=b"/closed"))
    with pytest.raises(exceptions.ClientClosedError):
        future.result(timeout=5)


def test_close_fails_calls_in_flight(etcd_server) -> None:
    client = etcd3.client(endpoints=[etcd_server.endpoint])
    client.put("/inflight", "1")
    etcd_server.pause()
    try:
        future = client._transport.call_future(
            _rpc.RANGE, pb.RangeRequest(key=b"/inflight"))
        time.sleep(0.2)
        assert not future.done(), "a paused server cannot answer"
        client.close()
        with pytest.raises(exceptions.ClientClosedError):
            future.result(timeout=5)
    finally:
        etcd_server.resume()


def test_call_future_matches_call(etcd_server) -> None:
    with etcd3.client(endpoints=[etcd_server.endpoint], timeout=5) as client:
        futures = [client._transport.call_future(
            _rpc.PUT, pb.PutRequest(key=b"/fut/%d" % i, value=b"v")) for i in range(20)]
        assert len({f.result(timeout=5).header.revision for f in futures}) == 20
        response = client._transport.call_future(
            _rpc.RANGE, pb.RangeRequest(key=b"/fut/", range_end=b"/fut0")).result()
        assert response.count == 20
        bad = client._transport.call_future(
            _rpc.RANGE, pb.RangeRequest(key=b"/fut/", revision=10**9))
        with pytest.raises(exceptions.FutureRevisionError):
            bad.result(timeout=5)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Python >= 3.12 warns about any fork of a threaded process; surviving one is the point.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_child_uses_inherited_client(etcd_server) -> None:
    client = etcd3.client(endpoints=[etcd_server.endpoint], timeout=5)
    try:
        client.put("/fork", "parent")
        assert client.get("/fork")[0] == b"parent"
        # As if other threads were mid-read at the fork: the batcher's lock held and
        # its slots taken, by threads the child won't have.
        batcher = client._read_batcher
        held = [batcher._lock, client._transport.pool._lock,
                client._transport._retry_lock]
        for lock in held:
            lock.acquire()
        batcher._in_flight = batcher.max_in_flight
        pid = os.fork()
        if pid != 0:
            batcher._in_flight = 0
            for lock in held:
                lock.release()
        if pid == 0:  # child: must not hang, must work
            status = 1
            try:
                signal.alarm(20)
                client.put("/fork", "child")
                if client.get("/fork")[0] == b"child":
                    status = 0
                client.close()
            finally:
                os._exit(status)
        deadline = time.monotonic() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("forked child hung using the inherited client")
            time.sleep(0.05)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        assert client.get("/fork")[0] == b"child"  # the parent's client still works
    finally:
        client.close()
