"""Namespaced views (``client.namespace(prefix)``) against a real etcd.

1. The plain client's KV, transaction, watch, lock, lease, election and STM test
   bodies run again through a view (their ``etcd_client`` is a view here), with keys
   planted around the namespace: a body that expects exact contents (``get_all``,
   ``get_prefix``, ``delete_prefix``...) fails if the view sees one of them, and every
   test ends by checking they are untouched and nothing was written outside.
2. etcdctl interop: the keys a view writes are exactly ``prefix + key``, as Go's
   ``namespace.NewKV`` writes them, and what etcdctl writes under the prefix is seen
   without it (reads, watch events, locks).
3. What only a view has: isolation of its ranges and lease keys, bulk calls, its
   lifetime next to its client's.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator, List, Tuple

import pytest
from _concurrency_support import etcdctl, keys, wait_for
from _namespace_support import (
    NOT_THROUGH_A_VIEW,
    PREFIX,
    etcdctl_pairs,
    planted,
    reused_bodies,
)
from _watch_support import Collector
from test_kv import sorted_keys  # noqa: F401 - a fixture of reused bodies
from test_transactions import txn_client  # noqa: F401 - a fixture of reused bodies
from test_watch import take

import etcd3
from etcd3 import exceptions
from etcd3.events import DeleteEvent, PutEvent
from etcd3.testing import EtcdServer


@pytest.fixture
def plain(etcd_server: EtcdServer) -> Iterator[etcd3.Etcd3Client]:
    """A client with keys planted around ``ns/``, checked after the test."""
    yield from planted(etcd_server)


@pytest.fixture
def etcd_client(plain: etcd3.Etcd3Client) -> Iterator[Any]:
    """What the reused test bodies get: a view of ``plain`` in ``ns/``."""
    with plain.namespace(PREFIX) as view:
        yield view


# -- 1. the plain client's test bodies, through a view ----------------------------------

globals().update(reused_bodies("threaded", NOT_THROUGH_A_VIEW))


def test_the_bodies_are_reused() -> None:
    reused = reused_bodies("threaded", NOT_THROUGH_A_VIEW)
    assert len(reused) > 60 and "test_kv__prefix_and_range_and_all" in reused


# -- 2. etcdctl sees Go's layout -------------------------------------------------------

def test_keys_are_written_and_read_as_gos_namespace_kv(etcd_server: EtcdServer,
                                                       plain: etcd3.Etcd3Client,
                                                       etcd_client: Any) -> None:
    view = etcd_client
    view.put("a", "1")
    view.put(b"dir/b", "2")
    view.transaction(compare=[view.transactions.version("t") == 0],
                     success=[view.transactions.put("t", "3")], failure=[])
    assert etcdctl_pairs(etcd_server, "ns/") == [
        ("ns/", "the prefix itself"), ("ns/a", "1"), ("ns/dir/b", "2"), ("ns/t", "3")]

    etcd_server.etcdctl("put", "ns/from-etcdctl", "4")
    value, meta = view.get("from-etcdctl")
    assert (value, meta.key) == (b"4", b"from-etcdctl")
    assert [(m.key, v) for v, m in view.get_all()] == [
        (b"a", b"1"), (b"dir/b", b"2"), (b"from-etcdctl", b"4"), (b"t", b"3")]
    assert [m.key for _, m in view.get_prefix("d")] == [b"dir/b"]
    assert [m.key for _, m in view.get_range("b", "\0")] == [b"dir/b", b"from-etcdctl",
                                                             b"t"]


def test_watch_events_come_without_the_prefix(etcd_server: EtcdServer,
                                              plain: etcd3.Etcd3Client,
                                              etcd_client: Any) -> None:
    view = etcd_client
    events, cancel = view.watch_prefix("", prev_kv=True)
    collector = Collector()
    view.add_watch_callback("w", collector)
    # The same keys watched by the client itself: one server watch may serve both,
    # each sees its own keys.
    absolute, cancel_absolute = plain.watch_prefix("ns/")
    etcd_server.etcdctl("put", "w", "outside")
    etcd_server.etcdctl("put", "ns/w", "1")
    etcd_server.etcdctl("put", "ns/w", "2")
    etcd_server.etcdctl("del", "ns/w")
    seen = take(events, cancel, 3)
    assert [(type(e), e.key, e.value, e.prev_value) for e in seen] == [
        (PutEvent, b"w", b"1", None), (PutEvent, b"w", b"2", b"1"),
        (DeleteEvent, b"w", b"", b"2")]
    assert seen[1].prev_kv.key == b"w"
    assert [e.key for e in take(absolute, cancel_absolute, 3)] == [b"ns/w"] * 3
    collector.wait_for(lambda c: len(c.events) == 3)
    assert [(e.key, e.value) for e in collector.events] == [
        (b"w", b"1"), (b"w", b"2"), (b"w", b"")]
    timer = threading.Timer(0.1, etcd_server.etcdctl, ("put", "ns/once", "x"))
    timer.start()
    event = view.watch_once("once", timeout=10)
    timer.join()
    assert (event.key, event.value) == (b"once", b"x")
    etcd_server.etcdctl("del", "w")


def test_a_lock_through_a_view_is_etcdctls_lock_under_the_prefix(
        etcd_server: EtcdServer, etcd_client: Any) -> None:
    view = etcd_client
    lock = view.lock("job", ttl=5)
    assert lock.acquire()
    assert lock.owner_key == b"/locks/job/%x" % lock.lease.id
    assert [key for key, _ in etcdctl_pairs(etcd_server, "ns//locks/")] == [
        "ns/" + lock.owner_key.decode()]
    proc = etcdctl(etcd_server, "lock", "ns//locks/job", "echo", "etcdctl-got-it")
    try:
        wait_for(lambda: len(keys(view, "/locks/job/")) == 2)  # queued behind us
        assert proc.poll() is None
        assert lock.release()
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "etcdctl-got-it" in out
    finally:
        proc.kill()
        proc.wait()


def test_an_election_through_a_view_is_under_the_prefix(etcd_server: EtcdServer,
                                                        etcd_client: Any) -> None:
    election = etcd_client.election("leader", ttl=5)
    assert election.campaign("me")
    assert etcdctl_pairs(etcd_server, "ns/leader/") == [
        ("ns/" + election.key.decode(), "me")]
    value, meta = election.leader()
    assert (value, meta.key) == (b"me", election.key)
    assert election.resign()


# -- 3. what only a view has ------------------------------------------------------------

def test_ranges_deletes_and_lease_keys_stay_inside(plain: etcd3.Etcd3Client,
                                                   etcd_client: Any) -> None:
    view = etcd_client
    lease = view.lease(30)
    view.put("k", "v", lease=lease)
    plain.put("k", "outside", lease=lease)
    assert lease.keys == [b"k"]
    assert sorted(plain.get_lease_info(lease.id).keys) == [b"k", b"ns/k"]
    assert [m.key for _, m in view.get_range("\0", "\xff\xff")] == [b"k"]
    assert view.get_all_response(count_only=True).count == 1
    # A compare on a key of the view is not one on the same name outside it.
    assert view.transaction(compare=[view.transactions.value("k") == "outside"],
                            success=[], failure=[])[0] is False
    deleted = view.delete_prefix("", prev_kv=True)
    assert deleted.deleted == 1 and [kv.key for kv in deleted.prev_kvs] == [b"k"]
    assert plain.get("k")[0] == b"outside" and plain.get("ns/")[0] is not None
    assert list(view.get_all()) == []
    lease.revoke()
    assert plain.get("k") == (None, None)  # the lease took it


def test_put_and_delete_return_keys_without_the_prefix(etcd_client: Any) -> None:
    view = etcd_client
    view.put("p", "1")
    assert view.put("p", "2", prev_kv=True).prev_kv.key == b"p"
    response = view.delete("p", prev_kv=True, return_response=True)
    assert [kv.key for kv in response.prev_kvs] == [b"p"]
    view.put("r1", "1")
    view.put("r2", "2")
    assert [kv.key for kv in view.delete_range("r", "r2", prev_kv=True).prev_kvs] == [
        b"r1"]
    succeeded, responses = view.transaction(
        compare=[], success=[view.transactions.get("r2"),
                             view.transactions.put("r2", "3", prev_kv=True)])
    assert succeeded and responses[0][0][1].key == b"r2"
    assert responses[1].response_put.prev_kv.key == b"r2"


def test_bulk_calls_in_a_view(plain: etcd3.Etcd3Client, etcd_client: Any) -> None:
    view = etcd_client
    view.put("b0", "old")
    seen: List[Tuple[bytes, Any, Any]] = []
    written = view.put_many({f"b{i}": str(i) for i in range(5)},
                            prev_kv=lambda k, v, m: seen.append((k, v, m and m.key)),
                            ops_per_txn=2)
    assert written == 5
    assert seen == [(b"b0", b"old", b"b0")] + [(b"b%d" % i, None, None)
                                               for i in range(1, 5)]
    pairs = view.get_many(["b1", "missing", "b4"])
    assert [(v, m and m.key) for v, m in pairs] == [(b"1", b"b1"), (None, None),
                                                    (b"4", b"b4")]
    assert [m.key for _, m in view.iter_prefix("b", page_size=2)] == [
        b"b%d" % i for i in range(5)]
    assert [m.key for _, m in view.get_prefix("b", page_size=3)] == [
        b"b%d" % i for i in range(5)]
    assert [m.key for _, m in view.iter_range("b1", "b3", page_size=1)] == [b"b1", b"b2"]
    with pytest.raises(exceptions.BulkWriteError) as raised:
        view.put_many([("big", "x" * 200)], max_txn_bytes=100)
    assert raised.value.failed_keys == [b"big"]
    assert view.delete_many(["b0", "b1", "missing"]) == 2
    assert plain.get("ns/b2")[0] == b"2" and plain.get("ns/b0") == (None, None)


def test_closing_a_view_leaves_its_client_open(plain: etcd3.Etcd3Client) -> None:
    view = plain.namespace(b"ns/")
    assert view.prefix == b"ns/" and view.client is plain
    events, _ = view.watch_prefix("")
    lease = view.lease(30, keep_alive=True)
    assert lease.kept_alive
    view.close()
    assert list(events) == []  # the iterator ended
    assert view.closed and not plain.closed and not plain.lease_keepalive_active(lease.id)
    with pytest.raises(exceptions.ClientClosedError, match="namespace view .* closed"):
        view.get("k")
    plain.put("still", "open")
    plain.revoke_lease(lease.id)
    plain.delete("still")


def test_closing_the_client_closes_its_views(etcd_server: EtcdServer) -> None:
    client = etcd3.client(host=etcd_server.host, port=etcd_server.port)
    view = client.namespace("ns/")
    inner = view.namespace("sub/")
    assert inner.prefix == b"ns/sub/"
    inner.put("k", "v")
    assert view.get("sub/k")[0] == b"v" and client.get("ns/sub/k")[0] == b"v"
    events, _ = view.watch("k")
    client.close()
    assert list(events) == []
    assert view.closed and inner.closed
    with pytest.raises(exceptions.ClientClosedError,
                       match="client under namespace b'ns/' has been closed"):
        view.put("k", "v")
    view.close()  # harmless


def test_bad_prefixes_fail_fast(plain: etcd3.Etcd3Client) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        plain.namespace("")
    with pytest.raises(TypeError, match="must be str or bytes"):
        plain.namespace(None)  # type: ignore[arg-type]
    view = plain.namespace("ns/")
    with pytest.raises(ValueError, match="key must not be empty"):
        view.get("")
    with pytest.raises(AttributeError, match="raw gRPC stubs"):
        view.kvstub  # noqa: B018
    assert view.status().version and [m.name for m in view.members]
