"""``client.stats()``: each counter moves for its real cause, against real etcd.

A killed member gives retries and an ejection (then a re-admission once it is back);
a 2-second token TTL gives token refreshes; a slow watch consumer gives lag and
queue depth; a restarted server gives watch resumes and keepalive failures; a lease
revoked elsewhere is lost; put_many reports its progress; concurrent reads and
writes go out in batches. Each test runs with the threaded and the asyncio client.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict

import pytest
from auth_support import enable_root_auth

import etcd3
from etcd3.retry import Retry
from etcd3.testing import EtcdCluster, EtcdServer

pytestmark = pytest.mark.drivers("threaded", "aio")

#: Bound of every wait-until loop (seconds): a stuck counter fails, never hangs.
BOUND = 20.0


def _until(condition: Callable[[], bool], what: str, step: Callable[[], Any] = lambda: None,
           bound: float = BOUND) -> None:
    """Run ``step`` until ``condition()`` holds (at most ``bound`` s, 2000 rounds)."""
    give_up = time.monotonic() + bound
    for _ in range(2000):
        if condition():
            return
        assert time.monotonic() < give_up, f"never saw {what}"
        step()
        time.sleep(0.01)
    raise AssertionError(f"never saw {what}")


def test_a_client_without_metrics_records_nothing(etcd_server: EtcdServer,
                                                  connect: Any) -> None:
    client = connect(host=etcd_server.host, port=etcd_server.port)
    client.put("/stats/off", "v")
    stats = client.stats()
    assert stats["enabled"] is False
    assert stats["calls"] == {} and stats["retries"] == {}


def test_calls_are_counted_by_method_with_their_errors(etcd_server: EtcdServer,
                                                       connect: Any) -> None:
    client = connect(host=etcd_server.host, port=etcd_server.port, metrics=True)
    for i in range(5):
        client.put(f"/stats/calls/{i}", "v")
    assert client.get("/stats/calls/3")[0] == b"v"
    with pytest.raises(etcd3.exceptions.Etcd3Exception):
        client.put("/stats/calls/bad", "v", lease=0x7FFF_FFFF)  # no such lease
    stats = client.stats()
    assert stats["enabled"] is True
    puts = stats["calls"]["etcdserverpb.KV/Put"]
    assert puts["count"] == 6 and puts["errors"] == 1
    assert 0 < puts["seconds_max"] <= puts["seconds_sum"]
    assert sum(puts["buckets"].values()) == 6
    assert stats["calls"]["etcdserverpb.KV/Range"]["count"] == 1
    assert stats["errors"] == {"NOT_FOUND": 1}
    assert stats["retries"] == {}


def test_a_killed_member_gives_retries_an_ejection_and_a_readmission(
        etcd_cluster: EtcdCluster, connect: Any) -> None:
    client = connect(endpoints=etcd_cluster.endpoints, timeout=10,
                     retry=Retry(attempt_timeout=1.0), metrics=True)
    leader = etcd_cluster.leader()
    victim = next(m for m in etcd_cluster.members if m is not leader)
    name = victim.endpoint
    victim.kill()
    try:
        _until(lambda: client.stats()["endpoints"]["ejections"].get(name),
               f"an ejection of {name}", lambda: client.get("/stats/failover"))
        stats = client.stats()
        assert stats["retries"].get("UNAVAILABLE", 0) >= 1
        assert stats["calls"]["etcdserverpb.KV/Range"]["errors"] == 0
    finally:
        victim.start()
        etcd_cluster.wait_healthy()
    _until(lambda: client.stats()["endpoints"]["readmissions"].get(name),
           f"{name} re-admitted", lambda: client.get("/stats/failover"))


@pytest.fixture
def short_token_server() -> Any:
    with EtcdServer(name="etcd-stats-token",
                    extra_args=["--auth-token=simple", "--auth-token-ttl=2"]) as server:
        enable_root_auth(server)
        yield server


def test_a_two_second_token_ttl_gives_token_refreshes(short_token_server: EtcdServer,
                                                      connect: Any) -> None:
    from auth_support import ROOT_PASSWORD

    client = connect(host=short_token_server.host, port=short_token_server.port,
                     user="root", password=ROOT_PASSWORD, metrics=True)
    client.put("/stats/token", "v")
    assert client.stats()["token_refreshes"] == {}
    # Simple tokens expire after 2 s without use.
    _until(lambda: client.stats()["token_refreshes"], "a token refresh",
           lambda: (time.sleep(3), client.get("/stats/token")), bound=15)
    stats = client.stats()
    assert sum(stats["token_refreshes"].values()) >= 1
    assert stats["retries"].get("AUTH_TOKEN", 0) >= 1
    assert stats["errors"] == {}


def test_a_slow_watch_consumer_shows_lag_and_queue_depth(etcd_server: EtcdServer,
                                                         connect: Any) -> None:
    client = connect(host=etcd_server.host, port=etcd_server.port, metrics=True)
    events, cancel = client.watch_prefix("/stats/watch/", max_queue=100)
    try:
        client.put("/stats/watch/first", "v")
        next(iter(events))  # the consumer took one response, then stalls
        for i in range(20):
            client.put(f"/stats/watch/{i}", "v")
        _until(lambda: client.stats()["watch"]["queue_depth_max"] >= 20,
               "20 responses waiting")
        watch = client.stats()["watch"]
        assert watch["watchers"] == 1
        assert watch["lag_max"] == 20  # one revision per put
        assert watch["queue_fill_max"] == pytest.approx(0.2)
        for taken, _ in enumerate(events, 1):
            if taken == 20:
                break
        watch = client.stats()["watch"]
        assert watch["lag_max"] == 0 and watch["queue_depth_max"] == 0
    finally:
        cancel()


def test_a_restarted_server_gives_watch_resumes_and_keepalive_failures(
        etcd_server: EtcdServer, connect: Any) -> None:
    client = connect(host=etcd_server.host, port=etcd_server.port, timeout=15,
                     metrics=True)
    seen = threading.Event()
    client.add_watch_prefix_callback(
        "/stats/resume/", lambda response: seen.set() if getattr(
            response, "events", None) else None)
    lease = client.lease(6, keep_alive=True)
    etcd_server.restart()
    client.put("/stats/resume/after", "v")
    assert seen.wait(BOUND)
    _until(lambda: client.stats()["watch"]["resumes"] >= 1
           and client.stats()["keepalive"]["failures"] >= 1, "a resume and a failure")
    lease.revoke()


def test_a_lease_revoked_elsewhere_is_counted_lost(etcd_server: EtcdServer,
                                                   connect: Any) -> None:
    client = connect(host=etcd_server.host, port=etcd_server.port, metrics=True)
    lease = client.lease(3, keep_alive=True)
    with etcd3.client(host=etcd_server.host, port=etcd_server.port) as other:
        other.revoke_lease(lease.id)
    _until(lambda: client.stats()["keepalive"]["leases_lost"] == 1, "the lease lost")
    assert client.stats()["keepalive"]["failures"] == 0


def test_put_many_and_delete_many_report_their_progress(etcd_server: EtcdServer,
                                                        connect: Any) -> None:
    client = connect(host=etcd_server.host, port=etcd_server.port, metrics=True)
    done = []
    items = {f"/stats/bulk/{i:04}": b"v" for i in range(500)}
    assert client.put_many(items, ops_per_txn=100, progress=done.append) == 500
    assert client.stats()["bulk"] == {"put_many": 500}
    assert done[-1] == 500  # the user's own progress callback still runs
    client.delete_many(list(items), ops_per_txn=128)
    assert client.stats()["bulk"] == {"put_many": 500, "delete_many": 500}


def _burst(client: Any, threads: int, work: Callable[[Any, int], Any]) -> None:
    start = threading.Barrier(threads)

    def run(n: int) -> None:
        start.wait(BOUND)
        for i in range(10):
            work(client, n * 100 + i)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(BOUND * 2)
    assert not any(worker.is_alive() for worker in workers)


def test_concurrent_reads_and_writes_report_their_batch_sizes(
        etcd_server: EtcdServer, connect: Any) -> None:
    client = connect(host=etcd_server.host, port=etcd_server.port, metrics=True,
                     read_batch_in_flight=1, write_batch_in_flight=1)
    client.get("/stats/batch/warm")

    def batches() -> Dict[str, Dict[str, int]]:
        return client.stats()["batches"]  # type: ignore[no-any-return]

    _until(lambda: batches()["write"]["max"] > 1, "a write batch",
           lambda: _burst(client, 8, lambda c, i: c.put(f"/stats/batch/{i}", "v")))
    assert batches()["write"]["items"] >= batches()["write"]["batches"] >= 1
    reads = lambda: _burst(client, 8, lambda c, i: c.get(f"/stats/batch/{i}"))  # noqa: E731
    writes = client.stats()["calls"]["etcdserverpb.KV/Txn"]["count"]
    _until(lambda: batches()["read"]["max"] > 1, "a read batch", reads)
    assert batches()["read"]["items"] >= batches()["read"]["batches"] >= 1
    # A batch of several reads is one Txn call, counted as one.
    read_txns = client.stats()["calls"]["etcdserverpb.KV/Txn"]["count"] - writes
    assert 1 <= read_txns <= batches()["read"]["batches"]
