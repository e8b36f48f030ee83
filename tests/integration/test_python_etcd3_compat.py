"""Code written for python-etcd3 runs unchanged: its idioms, names and return shapes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import grpc
import pytest

import etcd3
import etcd3.etcdrpc
import etcd3.events
import etcd3.exceptions
import etcd3.utils
from etcd3.client import Etcd3Client


@pytest.fixture
def etcd(etcd_server):
    client = etcd3.client(host=etcd_server.host, port=etcd_server.port)
    client.delete_prefix("/doot/")
    yield client
    client.close()


def test_module_level_names() -> None:
    for name in ("client", "Etcd3Client", "MultiEndpointEtcd3Client", "Endpoint",
                 "Etcd3Exception", "Transactions", "Lease", "Lock", "Member"):
        assert hasattr(etcd3, name), name
    for name in ("Etcd3Exception", "WatchTimedOut", "InternalServerError",
                 "ConnectionFailedError", "ConnectionTimeoutError",
                 "PreconditionFailedError", "RevisionCompactedError"):
        assert issubclass(getattr(etcd3.exceptions, name), etcd3.exceptions.Etcd3Exception)
    assert etcd3.utils.increment_last_byte(b"a") == b"b"
    assert etcd3.utils.prefix_range_end(b"a\xff") == b"b"
    assert etcd3.etcdrpc.WatchCreateRequest.NOPUT == 0
    assert isinstance(etcd3.client(), Etcd3Client)
    # A bare ``import etcd3`` brings the submodules python-etcd3 code reaches through it.
    code = ("import etcd3; print(etcd3.members.Member.__name__, etcd3.utils.to_bytes('x'),"
            " etcd3.etcdrpc.KVStub.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["Member", "b'x'", "KVStub"]


def test_token_call_credentials_plugin() -> None:
    from etcd3.client import EtcdTokenCallCredentials
    received = []
    EtcdTokenCallCredentials("foo")(None, lambda *args: received.append(args))
    assert received == [((("token", "foo"),), None)]


def test_kv_idioms(etcd) -> None:
    etcd.put("/doot/a_key", "some value")
    value, metadata = etcd.get("/doot/a_key")
    assert value == b"some value"
    assert metadata.key == b"/doot/a_key"
    assert metadata.version == 1 and metadata.lease_id == 0
    assert metadata.response_header.revision >= metadata.mod_revision
    etcd.put("/doot/b_key", "other")
    values = [v for v, _ in etcd.get_prefix("/doot/")]
    assert values == [b"some value", b"other"]
    assert {b"/doot/a_key", b"/doot/b_key"} <= {m.key for _, m in etcd.get_all()}
    assert etcd.delete("/doot/a_key") is True
    assert etcd.get("/doot/a_key") == (None, None)
    response = etcd.delete_prefix("/doot/")
    assert response.deleted == 1


def test_transaction_idioms(etcd) -> None:
    etcd.put("/doot/txn", "dootdoot")
    status, responses = etcd.transaction(
        compare=[etcd.transactions.value("/doot/txn") == "dootdoot",
                 etcd.transactions.version("/doot/txn") > 0],
        success=[etcd.transactions.put("/doot/txn", "success")],
        failure=[etcd.transactions.put("/doot/txn", "failure")])
    assert status is True
    assert etcd.get("/doot/txn")[0] == b"success"
    assert etcd.put_if_not_exists("/doot/new", "v") is True
    assert etcd.replace("/doot/new", "v", "w") is True


def test_lease_idioms(etcd) -> None:
    lease = etcd.lease(10)
    etcd.put("/doot/leased", "v", lease=lease)
    assert 0 < lease.remaining_ttl <= 10
    assert lease.granted_ttl == 10
    assert lease.keys == [b"/doot/leased"]
    responses = list(etcd.refresh_lease(lease.id))
    assert responses[0].TTL == 10
    assert lease.refresh()[0].ID == lease.id
    info = etcd.get_lease_info(lease.id)
    assert info.ID == lease.id and info.grantedTTL == 10
    lease.revoke()
    assert etcd.get("/doot/leased") == (None, None)


def test_lock_idioms(etcd) -> None:
    lock = etcd.lock("thing", ttl=10)
    assert lock.acquire(timeout=None) is True
    assert etcd.get(lock.key)[0] is not None
    assert lock.acquire(timeout=0) is False
    assert lock.acquire(None) is True  # python-etcd3's test_lock_acquire_none
    assert lock.is_acquired() is True
    other = etcd.lock("thing", ttl=10)
    assert other.acquire(timeout=0) is False
    assert lock.release() is True
    assert etcd.get(lock.key) == (None, None)
    with etcd.lock("doot-machine") as held:
        assert held.is_acquired() is True
    assert held.is_acquired() is False


def test_watch_idioms(etcd) -> None:
    events = []
    done = threading.Event()

    def callback(response):
        events.extend(response.events)
        if len(events) >= 2:
            done.set()

    watch_id = etcd.add_watch_callback("/doot/watch", callback)
    etcd.put("/doot/watch", "1")
    etcd.delete("/doot/watch")
    assert done.wait(10)
    etcd.cancel_watch(watch_id)
    assert isinstance(events[0], etcd3.events.PutEvent)
    assert isinstance(events[1], etcd3.events.DeleteEvent)
    assert events[0].key == b"/doot/watch" and events[0].value == b"1"

    events_iterator, cancel = etcd.watch_prefix("/doot/watch/prefix/")

    def writer() -> None:
        time.sleep(0.2)
        for i in range(3):
            etcd.put(f"/doot/watch/prefix/{i}", str(i))

    threading.Thread(target=writer).start()
    seen = []
    for event in events_iterator:
        seen.append(event.value)
        if len(seen) == 3:
            cancel()
    assert seen == [b"0", b"1", b"2"]

    with pytest.raises(etcd3.exceptions.WatchTimedOut):
        etcd.watch_once("/doot/never", timeout=0.3)

    filtered = []
    fid = etcd.add_watch_prefix_callback(
        "/doot/f/", lambda r: filtered.extend(r.events),
        filters=[etcd3.etcdrpc.WatchCreateRequest.NOPUT])
    etcd.put("/doot/f/x", "1")
    etcd.delete("/doot/f/x")
    deadline = time.monotonic() + 10
    while not filtered and time.monotonic() < deadline:
        time.sleep(0.05)
    etcd.cancel_watch(fid)
    assert [type(e) for e in filtered] == [etcd3.events.DeleteEvent]


def test_watch_once_responses(etcd) -> None:
    # python-etcd3's own test_watch_responses, as written there.
    revision = etcd.put("/doot/watch", "0").header.revision
    etcd.put("/doot/watch", "1")
    responses_iterator, cancel = etcd.watch_response("/doot/watch", start_revision=revision)
    response_1 = next(responses_iterator)
    cancel()
    response_2 = etcd.watch_once_response("/doot/watch", start_revision=revision)
    for response in [response_1, response_2]:
        assert response.header.revision > 0
        assert [(e.key, e.value) for e in response.events] == [
            (b"/doot/watch", b"0"), (b"/doot/watch", b"1")]

    success_ops = [etcd.transactions.put("/doot/watch/prefix/0", "0"),
                   etcd.transactions.put("/doot/watch/prefix/1", "1")]
    revision = etcd.transaction([], success_ops, [])[1][0].response_put.header.revision
    responses_iterator, cancel = etcd.watch_prefix_response("/doot/watch/prefix/",
                                                            start_revision=revision)
    response_1 = next(responses_iterator)
    cancel()
    response_2 = etcd.watch_prefix_once_response("/doot/watch/prefix/",
                                                 start_revision=revision)
    for response in [response_1, response_2]:
        assert response.header.revision == revision
        assert [(e.key, e.value) for e in response.events] == [
            (b"/doot/watch/prefix/0", b"0"), (b"/doot/watch/prefix/1", b"1")]
    with pytest.raises(etcd3.exceptions.WatchTimedOut):
        etcd.watch_once_response("/doot/never", timeout=0.3)


def test_raw_grpc_attributes(etcd) -> None:
    etcd.put("/doot/raw", "1")
    assert etcd.uses_secure_channel is False
    assert etcd.call_credentials is None and etcd.metadata is None
    response = etcd.kvstub.Range(etcd3.etcdrpc.RangeRequest(key=b"/doot/raw"), etcd.timeout,
                                 credentials=etcd.call_credentials, metadata=etcd.metadata)
    assert [kv.value for kv in response.kvs] == [b"1"]
    assert etcd.kvstub is etcd.kvstub  # made once per channel
    assert etcd.maintenancestub.Status(etcd3.etcdrpc.StatusRequest()).version
    assert etcd.clusterstub.MemberList(etcd3.etcdrpc.MemberListRequest()).members
    assert etcd.leasestub.LeaseLeases(etcd3.etcdrpc.LeaseLeasesRequest()) is not None
    assert grpc.channel_ready_future(etcd.channel).result(timeout=5) is None
    assert etcd.endpoint_in_use == etcd.endpoints[0]
    with pytest.raises(TypeError, match="Don't use "):
        etcd.get_prefix("a_prefix", range_end="end")


def test_status_members_and_multi_endpoint(etcd, etcd_server) -> None:
    status = etcd.status()
    assert status.version and status.db_size > 0 and status.raft_term >= 1
    assert status.leader is not None and status.leader.id
    members = list(etcd.members)
    assert len(members) == 1 and members[0].client_urls
    client = etcd3.MultiEndpointEtcd3Client(
        endpoints=[etcd3.Endpoint(etcd_server.host, etcd_server.port, secure=False)],
        failover=True)
    try:
        client.put("/doot/multi", "v")
        assert client.get("/doot/multi")[0] == b"v"
    finally:
        client.close()


def test_server_errors_are_also_grpc_errors(etcd) -> None:
    import grpc

    etcd.put("/doot/compact", "x")
    revision = etcd.get("/doot/compact")[1].mod_revision
    etcd.compact(revision)
    # python-etcd3 let this escape as a raw grpc.RpcError; code catching it still works
    with pytest.raises(grpc.RpcError) as info:
        etcd.compact(revision)
    assert isinstance(info.value, etcd3.exceptions.RevisionCompactedError)
    assert info.value.code() is grpc.StatusCode.OUT_OF_RANGE
    assert "compacted" in info.value.details()
    with pytest.raises(grpc.RpcError) as lease_error:
        etcd.revoke_lease(987654321)
    assert lease_error.value.code() is grpc.StatusCode.NOT_FOUND
    assert etcd3.exceptions.WatchTimedOut().code() is None
