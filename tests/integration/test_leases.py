"""Leases: unary calls, the single keepalive stream, expiry reports, failover."""

from __future__ import annotations

import threading
import time
from typing import Any, List

import pytest
from _concurrency_support import wait_for

import etcd3
from etcd3 import exceptions
from etcd3.leases import Lease
from etcd3.testing import EtcdCluster, EtcdServer

pytestmark = pytest.mark.drivers("threaded", "aio")


def _keepalive_threads() -> List[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("etcd3-lease")]


@pytest.mark.drivers("threaded")  # asserts the threaded Lease class
def test_grant_inspect_refresh_revoke(etcd_client: Any) -> None:
    lease = etcd_client.lease(10)
    assert isinstance(lease, Lease) and lease.ttl == 10
    etcd_client.put("/leased", "v", lease=lease)
    assert lease.granted_ttl == 10
    assert 0 < lease.remaining_ttl <= 10
    assert lease.keys == [b"/leased"]
    assert lease.refresh()[0].TTL == 10
    assert lease.id in [item.id for item in etcd_client.leases()]
    assert not lease.expired and not lease.kept_alive
    assert lease.revoke() is True
    assert lease.expired
    assert etcd_client.get("/leased") == (None, None)
    assert lease.remaining_ttl == -1
    with pytest.raises(exceptions.LeaseNotFoundError):
        lease.refresh()
    with pytest.raises(exceptions.LeaseNotFoundError):
        lease.revoke()


@pytest.mark.parametrize("ttl, error", [(0, ValueError), (-5, ValueError),
                                        (1.5, TypeError), (True, TypeError)])
def test_bad_ttl(etcd_client: Any, ttl: Any, error: type) -> None:
    with pytest.raises(error):
        etcd_client.lease(ttl)


def test_context_manager_revokes(etcd_client: Any) -> None:
    with etcd_client.lease(10, keep_alive=True) as lease:
        etcd_client.put("/ctx", "v", lease=lease)
        assert lease.kept_alive
    assert not lease.kept_alive
    assert etcd_client.get("/ctx") == (None, None)


@pytest.mark.drivers("threaded")  # counts the threaded keepalive threads
def test_keepalive_outlives_the_ttl_on_one_stream(etcd_client: Any) -> None:
    leases = [etcd_client.lease(1, keep_alive=True) for _ in range(3)]
    etcd_client.put("/kept", "v", lease=leases[0])
    time.sleep(2.5)
    assert etcd_client.get("/kept")[0] == b"v"
    assert all(lease.remaining_ttl >= 0 and not lease.expired for lease in leases)
    # one scheduler and one stream reader serve every lease of the client
    assert sorted(_keepalive_threads()) == ["etcd3-lease-keepalive",
                                            "etcd3-lease-keepalive-reader"]
    for lease in leases:
        lease.revoke()


def test_stop_keep_alive_lets_it_expire(etcd_client: Any) -> None:
    lease = etcd_client.lease(1)
    assert lease.keep_alive() is lease and lease.kept_alive
    assert lease.stop_keep_alive() is True
    assert lease.stop_keep_alive() is False
    wait_for(lambda: lease.remaining_ttl == -1, timeout=5)
    assert not lease.expired  # we stopped it ourselves: nothing to report


def test_lease_gone_on_the_server_is_reported(etcd_client: Any,
                                              etcd_server: EtcdServer) -> None:
    reported: List[Lease] = []
    lease = etcd_client.lease(3, keep_alive=True, on_expired=reported.append)
    other = etcd3.client(host=etcd_server.host, port=etcd_server.port)
    try:
        other.revoke_lease(lease.id)
    finally:
        other.close()
    wait_for(lambda: lease.expired, timeout=5)
    assert reported == [lease]
    assert not lease.kept_alive


def test_no_reply_for_a_whole_ttl_is_reported(etcd_client: Any,
                                              etcd_server: EtcdServer) -> None:
    reported = threading.Event()
    lease = etcd_client.lease(2, keep_alive=True, on_expired=lambda _: reported.set())
    time.sleep(0.3)
    etcd_server.pause()
    try:
        assert reported.wait(5)
        assert lease.expired and not lease.kept_alive
    finally:
        etcd_server.resume()


def test_close_stops_the_keepalive_threads(etcd_server: EtcdServer) -> None:
    client = etcd3.client(host=etcd_server.host, port=etcd_server.port)
    lease = client.lease(5, keep_alive=True)
    wait_for(lambda: len(_keepalive_threads()) == 2)
    client.close()
    assert _keepalive_threads() == []
    with pytest.raises(exceptions.ClientClosedError):
        lease.keep_alive()


def test_keepalive_survives_killing_its_member() -> None:
    with EtcdCluster(3) as cluster:
        client = etcd3.client(endpoints=cluster.endpoints, timeout=10)
        try:
            reported: List[Lease] = []
            lease = client.lease(3, keep_alive=True, on_expired=reported.append)
            client.put("/survivor", "v", lease=lease)
            wait_for(lambda: client._keepalive._stream is not None)
            stream_endpoint = client._keepalive._stream.state.name
            member = next(m for m in cluster.members if m.endpoint == stream_endpoint)
            leader = cluster.leader()
            if leader is not member:  # the hardest case: the stream's member leads
                member_id = int(member.status()["header"]["member_id"])
                leader.etcdctl("move-leader", f"{member_id:x}")
                wait_for(lambda: cluster.leader() is member)
            member.kill()
            time.sleep(7)  # more than twice the TTL
            assert reported == [] and not lease.expired
            assert client._keepalive._stream.state.name != stream_endpoint
            assert lease.remaining_ttl > 0
            assert client.get("/survivor")[0] == b"v"
            lease.revoke()
        finally:
            client.close()


def test_keepalive_survives_a_restart_with_auth_enabled() -> None:
    with EtcdServer() as server:
        server.etcdctl("user", "add", "root:secret")
        server.etcdctl("auth", "enable")
        client = etcd3.client(host=server.host, port=server.port, user="root",
                              password="secret", timeout=10)
        try:
            reported: List[Lease] = []
            lease = client.lease(3, keep_alive=True, on_expired=reported.append)
            wait_for(lambda: client._keepalive._stream is not None)
            server.restart()  # the only member: the stream must come back to it
            time.sleep(6.5)  # more than twice the TTL
            assert reported == [] and not lease.expired
            assert lease.remaining_ttl > 0
            lease.revoke()
        finally:
            client.close()
