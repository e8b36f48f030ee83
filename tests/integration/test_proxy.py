"""The client through etcd's gRPC proxy (``etcd grpc-proxy start``): every feature
a deployment uses, the proxy restarted, frozen and lost, and failover between two
proxies in front of a 3-member cluster. The proxy numbers watches itself and ignores
progress requests; these tests are where that shows."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Iterator, List

import pytest

import etcd3
import etcd3.aio
from etcd3 import exceptions
from etcd3.events import PutEvent
from etcd3.retry import Retry
from etcd3.testing import EtcdCluster, EtcdProxy, EtcdServer


@pytest.fixture
def proxy(etcd_proxy: EtcdProxy) -> EtcdProxy:
    """The session's proxy (``etcd3.testing``'s fixture), up again if a test left it
    down."""
    if not etcd_proxy.running:
        etcd_proxy.start()
    return etcd_proxy


@pytest.fixture
def client(proxy: EtcdProxy) -> Iterator[etcd3.Etcd3Client]:
    with etcd3.client(endpoints=[proxy.endpoint], timeout=10) as client:
        client.delete_prefix("/px/")
        yield client


def _quick_watchdog(client: Any) -> None:
    """Probe a silent watch stream after 0.3 s and give up on it 1 s later (instead
    of 3 s and 3 s), so a test sees the liveness check through the proxy at work."""
    probe = client._watch_engine()._probe
    probe.silence, probe.timeout = 0.3, 1.0


def _next(events: Iterator[Any], timeout: float = 10.0) -> Any:
    """The next event of ``events`` (what it raised, raised here), within ``timeout``."""
    box: List[Any] = []
    failed: List[BaseException] = []

    def read() -> None:
        try:
            box.append(next(events))
        except BaseException as error:
            failed.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if failed:
        raise failed[0]
    assert box, f"no event within {timeout} s"
    return box[0]


def test_kv_transactions_and_ranges(client: etcd3.Etcd3Client, etcd_server: EtcdServer) -> None:
    for n in range(5):
        client.put(f"/px/kv/{n}", f"v{n}")
    assert client.get("/px/kv/3")[0] == b"v3"
    assert [v for v, _ in client.get_prefix("/px/kv/")] == [b"v0", b"v1", b"v2", b"v3", b"v4"]
    ok, _ = client.transaction(
        compare=[client.transactions.value("/px/kv/0") == b"v0"],
        success=[client.transactions.put("/px/kv/0", "swapped")], failure=[])
    assert ok
    assert client.delete("/px/kv/4")
    # What went through the proxy is in etcd itself.
    out = etcd_server.etcdctl("get", "--prefix", "/px/kv/").stdout.split()
    assert out == ["/px/kv/0", "swapped", "/px/kv/1", "v1", "/px/kv/2", "v2",
                   "/px/kv/3", "v3"]


def test_watch_gets_events_and_its_stream_stays_up_while_idle(
        client: etcd3.Etcd3Client) -> None:
    events, cancel = client.watch_prefix("/px/w/")
    engine = client._watch_engine()
    _quick_watchdog(client)
    stream = engine._call
    client.put("/px/w/a", "1")
    event = _next(events)
    assert isinstance(event, PutEvent) and event.key == b"/px/w/a"
    # Several probe periods of silence: the proxy answers probes, the stream stays.
    time.sleep(3.0)
    assert engine._call is stream, "the watch stream through the proxy was reopened"
    client.put("/px/w/b", "2")
    assert _next(events).key == b"/px/w/b"
    cancel()


def test_many_watches_on_one_stream_each_get_their_own_events(
        client: etcd3.Etcd3Client) -> None:
    got: dict = {n: [] for n in range(6)}
    ids = [client.add_watch_callback(f"/px/many/{n}", got[n].append) for n in range(6)]
    client.cancel_watch(ids[2])
    for n in range(6):
        client.put(f"/px/many/{n}", f"v{n}")
    deadline = time.monotonic() + 10
    while any(not got[n] for n in (0, 1, 3, 4, 5)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for n in (0, 1, 3, 4, 5):
        keys = [e.key for r in got[n] for e in r.events]
        assert keys == [f"/px/many/{n}".encode()], (n, got[n])
    assert got[2] == []


def test_progress_requests_are_refused_with_a_clear_error(client: etcd3.Etcd3Client) -> None:
    events, cancel = client.watch("/px/progress")
    client.put("/px/progress", "x")
    _next(events)
    with pytest.raises(exceptions.UnsupportedByProxyError, match="gRPC proxy"):
        client.request_progress()
    cancel()


def test_compacted_start_revision_fails_the_watch(client: etcd3.Etcd3Client) -> None:
    first = client.put("/px/c", "1").header.revision
    latest = client.put("/px/c", "2").header.revision
    client.compact(latest)
    with pytest.raises(exceptions.RevisionCompactedError):
        events, cancel = client.watch("/px/c", start_revision=first)
        _next(events)


def test_watch_resumes_without_loss_when_the_proxy_restarts(
        client: etcd3.Etcd3Client, proxy: EtcdProxy, etcd_server: EtcdServer) -> None:
    events, cancel = client.watch_prefix("/px/r/")
    client.put("/px/r/0", "0")
    assert _next(events).key == b"/px/r/0"
    proxy.kill()
    for n in range(1, 4):  # written while the proxy is down, straight to etcd
        etcd_server.etcdctl("put", f"/px/r/{n}", str(n))
    proxy.start()
    keys = [_next(events, 20).key for _ in range(3)]
    assert keys == [b"/px/r/1", b"/px/r/2", b"/px/r/3"]
    client.put("/px/r/4", "4")
    assert _next(events).key == b"/px/r/4"
    cancel()


def test_leases_keepalive_locks_and_elections(
        client: etcd3.Etcd3Client, etcd_server: EtcdServer) -> None:
    lease = client.lease(3)
    client.put("/px/leased", "v", lease=lease)
    lease.refresh()
    assert lease.remaining_ttl > 0
    assert client.get("/px/leased")[1].lease_id == lease.id
    with client.lock("px-lock", ttl=5) as lock:
        assert lock.is_acquired()
        held = etcd_server.etcdctl("get", "--prefix", "--keys-only", "/locks/px-lock")
        assert held.stdout.split() == [lock.key]
    election = client.election("px-election", ttl=5)
    election.campaign(b"me")
    leader = election.leader()
    assert leader is not None and leader[0] == b"me"
    election.resign()
    lease.revoke()
    assert client.get("/px/leased") == (None, None)


def test_bulk_put_status_members_and_what_the_proxy_cannot_do(
        client: etcd3.Etcd3Client, proxy: EtcdProxy) -> None:
    client.put_many((f"/px/bulk/{n:03}", b"x" * 10) for n in range(300))
    assert sum(1 for _ in client.get_prefix("/px/bulk/", keys_only=True)) == 300
    assert client.status().version == proxy.version
    # Without --resolver-prefix the proxy lists itself as the only member, so
    # endpoint sync keeps clients on the proxy.
    assert [m.client_urls for m in client.members] == [[proxy.endpoint]]
    with pytest.raises(exceptions.UnsupportedByProxyError, match="gRPC proxy"):
        client.promote_member(0x7B)


def test_asyncio_client_watch_and_kv(proxy: EtcdProxy) -> None:
    async def body() -> None:
        async with etcd3.aio.client(endpoints=[proxy.endpoint], timeout=10) as client:
            watch, cancel = await client.watch_prefix("/px/aio/")
            await client.put("/px/aio/k", "v")
            async for event in watch:
                assert event.key == b"/px/aio/k" and event.value == b"v"
                break
            with pytest.raises(exceptions.UnsupportedByProxyError):
                await client.request_progress()
            await cancel()

    asyncio.run(asyncio.wait_for(body(), 60))


# -- two proxies in front of a 3-member cluster -------------------------------------------


@pytest.fixture(scope="module")
def two_proxies(etcd_cluster: EtcdCluster) -> Iterator[List[EtcdProxy]]:
    members = etcd_cluster.endpoints
    with EtcdProxy(members) as first, EtcdProxy(members) as second:
        yield [first, second]


def test_failover_between_two_proxies(two_proxies: List[EtcdProxy]) -> None:
    first, second = two_proxies
    with etcd3.client(endpoints=[p.endpoint for p in two_proxies], timeout=10,
                      retry=Retry(attempt_timeout=1.0)) as client:
        _quick_watchdog(client)
        events, cancel = client.watch_prefix("/px/fo/")
        client.put("/px/fo/0", "0")
        assert _next(events).key == b"/px/fo/0"
        watched = client._watch_engine().endpoint
        frozen = first if watched == first.endpoint else second
        frozen.pause()  # hangs: its TCP connections stay open, nothing answers
        try:
            for n in range(1, 4):
                client.put(f"/px/fo/{n}", str(n))
            keys = [_next(events, 20).key for _ in range(3)]
            assert keys == [b"/px/fo/1", b"/px/fo/2", b"/px/fo/3"]
            assert client._watch_engine().endpoint != frozen.endpoint
        finally:
            frozen.resume()
        frozen.kill()
        try:
            for n in range(4, 8):
                assert client.put(f"/px/fo/{n}", str(n)).header.revision > 0
            assert client.get("/px/fo/7")[0] == b"7"
        finally:
            frozen.start()
        # The pool's probe (a linearizable read) re-admits a proxy as it does a member.
        state = next(s for s in client._transport.pool.states
                     if s.name == frozen.endpoint)
        deadline = time.monotonic() + 20
        while state.ejected and time.monotonic() < deadline:
            client.get("/px/fo/0")
            time.sleep(0.1)
        assert not state.ejected, "the restarted proxy was never re-admitted"
        cancel()
