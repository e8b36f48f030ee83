"""A namespaced view through etcd's gRPC proxy started with ``--namespace``: the two
prefixes compose as Go's ``namespace`` package composes them (the proxy wraps its
own client in it), for reads, writes, transactions, watches, leases and locks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Iterator

import pytest
from _concurrency_support import etcdctl, keys, wait_for
from _namespace_support import etcdctl_pairs

import etcd3
import etcd3.aio
from etcd3.events import DeleteEvent, PutEvent
from etcd3.testing import EtcdProxy, EtcdServer
from etcd3.testing.fixtures import threaded_client


@pytest.fixture(scope="module")
def proxy(etcd_server: EtcdServer) -> Iterator[EtcdProxy]:
    """One ``etcd grpc-proxy start --namespace=tenant/`` for the module."""
    with EtcdProxy([etcd_server.endpoint], namespace="tenant/") as started:
        yield started


@pytest.fixture
def direct(etcd_server: EtcdServer) -> Iterator[etcd3.Etcd3Client]:
    """A client of the server itself (no proxy), with keys next to both prefixes."""
    made = threaded_client(etcd_server)
    client = next(made)
    try:
        for key in ("tenant/other", "app/k", "tenant/app"):
            client.put(key, "outside")
        yield client
        assert {kv.key for kv in client.get_all_response().kvs
                if not kv.key.startswith(b"tenant/app/")} == {
            b"tenant/other", b"app/k", b"tenant/app"}
    finally:
        made.close()


@pytest.fixture
def view(proxy: EtcdProxy, direct: etcd3.Etcd3Client) -> Iterator[Any]:
    """The view ``app/`` of a client connected to the proxy."""
    with etcd3.client(endpoints=[proxy.endpoint], timeout=10) as client, \
            client.namespace("app/") as app:
        yield app


def test_keys_are_under_both_prefixes(etcd_server: EtcdServer,
                                      direct: etcd3.Etcd3Client, view: Any) -> None:
    view.put("k", "1")
    view.put("dir/x", "2")
    assert etcdctl_pairs(etcd_server, "tenant/app/") == [
        ("tenant/app/dir/x", "2"), ("tenant/app/k", "1")]
    direct.put("tenant/app/from-direct", "3")
    assert [(m.key, v) for v, m in view.get_all()] == [
        (b"dir/x", b"2"), (b"from-direct", b"3"), (b"k", b"1")]
    succeeded, (put, got) = view.transaction(
        compare=[view.transactions.value("k") == "1"],
        success=[view.transactions.put("k", "4", prev_kv=True),
                 view.transactions.get("d", "\0")], failure=[])
    assert succeeded and put.response_put.prev_kv.key == b"k"
    assert [m.key for _, m in got] == [b"dir/x", b"from-direct", b"k"]
    assert view.delete_prefix("").deleted == 3
    assert etcdctl_pairs(etcd_server, "tenant/app/") == []


def test_watch_events_and_lease_keys_lose_both_prefixes(
        direct: etcd3.Etcd3Client, view: Any) -> None:
    events, cancel = view.watch_prefix("", prev_kv=True)
    direct.put("tenant/other", "not seen")
    direct.put("tenant/app/w", "1")
    direct.delete("tenant/app/w")
    timer = threading.Timer(10, cancel)
    timer.start()
    try:
        seen = [next(events), next(events)]
    finally:
        timer.cancel()
        cancel()
    assert [(type(e), e.key, e.prev_value) for e in seen] == [
        (PutEvent, b"w", None), (DeleteEvent, b"w", b"1")]
    direct.put("tenant/other", "outside")
    lease = view.lease(30)
    view.put("leased", "x", lease=lease)
    direct.put("app/k", "outside", lease=lease)
    assert lease.keys == [b"leased"]
    lease.revoke()
    direct.put("app/k", "outside")


def test_a_lock_through_the_view_and_the_proxy(etcd_server: EtcdServer, view: Any) -> None:
    lock = view.lock("job", ttl=5)
    assert lock.acquire(timeout=10)
    assert [key for key, _ in etcdctl_pairs(etcd_server, "tenant/app//locks/job/")] == [
        "tenant/app/" + lock.owner_key.decode()]
    proc = etcdctl(etcd_server, "lock", "tenant/app//locks/job", "echo", "got-it")
    try:
        wait_for(lambda: len(keys(view, "/locks/job/")) == 2)
        assert proc.poll() is None  # queued behind the view's holder
        assert lock.release()
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0 and "got-it" in out, err
    finally:
        proc.kill()
        proc.wait()


def test_an_asyncio_view_through_the_proxy(proxy: EtcdProxy, direct: etcd3.Etcd3Client
                                           ) -> None:
    async def body() -> None:
        async with etcd3.aio.client(endpoints=[proxy.endpoint], timeout=10) as client:
            view = client.namespace("app/")
            events, cancel = await view.watch("k")
            await view.put("k", "v")
            event = await asyncio.wait_for(events.__anext__(), 10)
            await cancel()
            assert (event.key, event.value) == (b"k", b"v")
            assert [m.key async for _, m in view.get_prefix("")] == [b"k"]

    asyncio.run(body())
    assert direct.get("tenant/app/k")[0] == b"v"
