"""Concurrent reads share read-only transactions without changing any result."""

from __future__ import annotations

import threading
import time
from typing import Any, List, Tuple

import pytest

import etcd3
from etcd3 import exceptions
from etcd3._grpc import rpc as _rpc
from etcd3._sync.read_batch import ReadBatcher
from etcd3.testing import EtcdServer


def _run(threads: int, target) -> List[BaseException]:
    errors: List[BaseException] = []

    def wrapped(n: int) -> None:
        try:
            target(n)
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    workers = [threading.Thread(target=wrapped, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return errors


def _count_batches(batcher: ReadBatcher) -> List[int]:
    """The size of every batch ``batcher`` sends from now on."""
    batches: List[int] = []
    send = batcher._send

    def counting_send(batch) -> None:
        batches.append(len(batch.reads))
        send(batch)

    batcher._send = counting_send  # type: ignore[method-assign]
    return batches


def test_reads_are_batched_and_each_thread_reads_its_own_writes(etcd_server) -> None:
    with etcd3.client(endpoints=[etcd_server.endpoint], read_batch_in_flight=1) as client:
        batches = _count_batches(client._read_batcher)

        def worker(n: int) -> None:
            key = f"/batch/{n}/k"
            for i in range(60):
                client.put(key, str(i))
                value, meta = client.get(key)
                assert value == str(i).encode(), (key, value, i)
                assert meta.key == key.encode()
                assert meta.response_header.revision >= meta.mod_revision
                assert client.get(f"/batch/missing/{n}") == (None, None)
                assert [v for v, _ in client.get_prefix(f"/batch/{n}/")] == [str(i).encode()]

        assert _run(16, worker) == []
    assert max(batches) > 1, "16 reading threads never shared a transaction"


def test_a_failing_read_in_a_batch_fails_alone(etcd_server) -> None:
    with etcd3.client(endpoints=[etcd_server.endpoint], read_batch_in_flight=1) as client:
        first = client.put("/batchc/k", "1").header.revision
        latest = client.put("/batchc/k", "2").header.revision
        client.compact(latest)
        results: List[str] = []

        def worker(n: int) -> None:
            for _ in range(30):
                if n % 4 == 0:
                    with pytest.raises(exceptions.RevisionCompactedError):
                        client.get("/batchc/k", revision=first)
                else:
                    assert client.get("/batchc/k")[0] == b"2"
            results.append("ok")

        assert _run(12, worker) == []
        assert len(results) == 12


def test_lone_reader_is_not_delayed_by_batching(etcd_client: etcd3.Etcd3Client) -> None:
    etcd_client.put("/lone", "v")
    assert etcd_client.get("/lone")[0] == b"v"
    assert etcd_client._read_batcher._pending == []
    assert etcd_client._read_batcher._in_flight == 0


def test_batcher_rejects_bad_limits(etcd_client: etcd3.Etcd3Client) -> None:
    with pytest.raises(ValueError):
        ReadBatcher(etcd_client._transport, _rpc.RANGE, _rpc.TXN, max_in_flight=0)


def test_gathering_fills_batches_and_pauses_when_readers_do_not_return(
        etcd_server) -> None:
    with etcd3.client(endpoints=[etcd_server.endpoint], read_batch_in_flight=1) as client:
        batcher = client._read_batcher
        batches = _count_batches(batcher)
        client.put("/gather/k", "v")
        stop = threading.Event()

        def steady_reader(n: int) -> None:
            for _ in range(150):
                assert client.get("/gather/k")[0] == b"v"

        batcher.gather = 0.05  # generous, so that a loaded machine can't time it out
        assert _run(8, steady_reader) == []
        # With gathering, the 8 readers ride together instead of in two halves.
        assert sorted(batches)[len(batches) // 2] >= 6, batches

        batcher.gather = 0.001
        batcher._gather_misses = 0

        def slow_reader(n: int) -> None:  # never back within the gathering time
            while not stop.is_set():
                assert client.get("/gather/k")[0] == b"v"
                stop.wait(0.02)

        workers = [threading.Thread(target=slow_reader, args=(n,)) for n in range(8)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 20
        while (batcher._gather_misses < batcher.GATHER_MISSES_TO_PAUSE
               and time.monotonic() < deadline):
            time.sleep(0.05)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        assert batcher._gather_misses >= batcher.GATHER_MISSES_TO_PAUSE
        assert batcher._pending == [] and batcher._gathering is None


def _record_batch_calls(client: etcd3.Etcd3Client) -> List[Tuple[Any, Any]]:
    """(gRPC call, NoDeadline or None) of every batch of reads sent from now on."""
    transport = client._transport
    start_once = transport.start_once
    sent: List[Tuple[Any, Any]] = []

    def recording(method, request, *, timeout, read_only_txn=False):
        call, no_deadline = start_once(method, request, timeout=timeout,
                                       read_only_txn=read_only_txn)
        if read_only_txn:
            sent.append((call, no_deadline))
        return call, no_deadline

    transport.start_once = recording  # type: ignore[method-assign]
    return sent


def test_batches_to_affected_servers_carry_no_deadline(etcd_server) -> None:
    """etcd 3.5.0-3.5.4 crash when a read-only Txn's context ends while it is applied
    (etcd #14110): batches sent there carry no gRPC deadline (and are never
    cancelled); other versions get the attempt's deadline on the wire."""
    affected = (3, 5, 0) <= etcd_server.version_info < (3, 5, 5)
    with etcd3.client(endpoints=[etcd_server.endpoint], read_batch_in_flight=1,
                      timeout=30) as client:
        client.put("/safe/k", "v")
        deadline = time.monotonic() + 10
        state = client._transport.pool.states[0]
        while state.version is None and time.monotonic() < deadline:
            client._transport.read_txn_safe(state)  # learns the version, as a batch does
            time.sleep(0.02)
        assert state.version == etcd_server.version_info
        sent = _record_batch_calls(client)

        def worker(n: int) -> None:
            for _ in range(40):
                assert client.get("/safe/k")[0] == b"v"

        assert _run(8, worker) == []
    assert sent, "8 reading threads never shared a transaction"
    for call, no_deadline in sent:
        if affected:
            assert no_deadline is not None and no_deadline.wait is not None
            assert call.time_remaining() is None  # no deadline on the wire
        else:
            assert no_deadline is None
            assert call.time_remaining() is not None


def test_a_batch_on_a_frozen_affected_member_is_abandoned_not_cancelled() -> None:
    """A batch sent without a deadline (etcd 3.5.0-3.5.4) whose member stops
    answering: its readers give up at their deadline, the call is left running (not
    cancelled), the next reads are not stuck behind it, and the member, once
    resumed, answers it and goes on serving."""
    with EtcdServer(name="rb-frozen") as server, etcd3.client(
            endpoints=[server.endpoint], read_batch_in_flight=1,
            grpc_options=[("grpc.keepalive_time_ms", 600_000),
                          ("grpc.http2.ping_timeout_ms", 600_000)]) as client:
        client.put("/frozen/k", "v")
        for _ in range(8):  # every channel connected
            client.get("/frozen/k")
        for state in client._transport.pool.states:  # batch as against etcd 3.5.1
            state.version = (3, 5, 1)
            state.version_pending = float("inf")
        sent = _record_batch_calls(client)
        batcher = client._read_batcher
        batcher._policy.max_wait = 10.0  # queued readers wait for the slot below
        server.pause()
        try:
            errors: List[BaseException] = []

            def reader(n: int) -> None:
                try:
                    client.get("/frozen/k", timeout=1.5)
                except BaseException as error:
                    errors.append(error)

            assert batcher._policy.try_send()  # a slow call holds the only slot...
            readers = [threading.Thread(target=reader, args=(n,)) for n in range(6)]
            for thread in readers:
                thread.start()
            for _ in range(2000):
                if len(batcher._pending) == 6:
                    break
                time.sleep(0.001)
            batcher._release()  # ... and hands it to the six readers as one batch
            for thread in readers:
                thread.join(20)
            assert len(errors) == 6, errors
            assert all(isinstance(e, exceptions.ConnectionTimeoutError) for e in errors)
            assert len(sent) == 1
            call, no_deadline = sent[0]
            assert no_deadline is not None and not call.done()  # left running
            assert call in client._transport._left_running
            assert batcher._in_flight == 0  # its slot was passed on
        finally:
            server.resume()
        call.result(timeout=20)  # the member answers it after all
        assert server.running and client.get("/frozen/k")[0] == b"v"
        assert call not in client._transport._left_running
