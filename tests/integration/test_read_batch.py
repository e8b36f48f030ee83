"""Concurrent reads share read-only transactions without changing any result."""

from __future__ import annotations

import threading
import time
from typing import List

import pytest

import etcd3
from etcd3 import exceptions
from etcd3._grpc import rpc as _rpc
from etcd3._sync.read_batch import ReadBatcher


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
        batches.append(len(batch))
        send(batch)

    batcher._send = counting_send  # type: ignore[method-assign]
    return batches


def _allow_batching(client: etcd3.Etcd3Client) -> None:
    """Let the batcher send read-only Txns even to etcd 3.5.0-3.5.4 (it never does by
    itself: they panic when such a Txn's context ends while it is applied). Safe in
    the tests that use it: their reads have no deadline that could expire, and the
    client is closed only once every read has returned."""
    for state in client._transport.pool.states:
        state.version = (3, 5, 5)
        state.version_pending = float("inf")


def test_reads_are_batched_and_each_thread_reads_its_own_writes(etcd_server) -> None:
    with etcd3.client(endpoints=[etcd_server.endpoint], read_batch_in_flight=1) as client:
        _allow_batching(client)
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
        _allow_batching(client)
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
        _allow_batching(client)
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


def test_batching_only_where_the_server_version_is_safe(etcd_server) -> None:
    """etcd 3.5.0-3.5.4 crash when a read-only Txn's context ends while it is applied
    (etcd #14110): the batcher learns each server's version and sends them only plain
    Ranges; other versions get batches once their version is known."""
    affected = (3, 5, 0) <= etcd_server.version_info < (3, 5, 5)
    with etcd3.client(endpoints=[etcd_server.endpoint], read_batch_in_flight=1) as client:
        client.put("/safe/k", "v")
        deadline = time.monotonic() + 10
        state = client._transport.pool.states[0]
        while state.version is None and time.monotonic() < deadline:
            client.get("/safe/k")  # starts the Status call that learns the version
            time.sleep(0.02)
        assert state.version == etcd_server.version_info
        batches = _count_batches(client._read_batcher)

        def worker(n: int) -> None:
            for _ in range(40):
                assert client.get("/safe/k")[0] == b"v"

        assert _run(8, worker) == []
    if affected:
        assert batches == [], f"etcd {etcd_server.version} was sent read-only Txns"
    else:
        assert batches and max(batches) > 1, batches
