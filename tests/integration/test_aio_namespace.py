"""Namespaced views of the asyncio client (``etcd3.aio`` ``client.namespace(prefix)``).

1. The plain client's test bodies again, through an asyncio view behind the test
   bridge (``_aio_bridge``), with the keys planted around the namespace as in
   ``test_namespace.py`` (checked untouched after each test).
2. Focused asyncio tests: the key layout with etcdctl, async iterators and callbacks
   of watches, locks, bulk calls with async iterables, the view's lifetime.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Iterator, List, Tuple

import pytest
from _aio_bridge import AioBridge
from _namespace_support import NOT_THROUGH_A_VIEW, etcdctl_pairs, planted, reused_bodies
from test_kv import sorted_keys  # noqa: F401 - a fixture of reused bodies
from test_transactions import txn_client  # noqa: F401 - a fixture of reused bodies

import etcd3
import etcd3.aio
import etcd3.aio.namespace
from etcd3 import exceptions
from etcd3.events import DeleteEvent, PutEvent
from etcd3.testing import EtcdServer

#: Bodies left out here too, and those that time the keepalive engine (the view
#: hands keepalives to its client untouched; the threaded reuse runs them).
SKIPPED = {**NOT_THROUGH_A_VIEW,
           "test_keepalive_outlives_the_ttl_on_one_stream": "times the keepalive",
           "test_no_reply_for_a_whole_ttl_is_reported": "times the keepalive",
           "test_stop_keep_alive_lets_it_expire": "times the keepalive"}


@pytest.fixture
def plain(etcd_aio_client: Any, etcd_server: EtcdServer) -> Iterator[etcd3.Etcd3Client]:
    """A threaded client with keys planted around ``ns/`` (after ``etcd_aio_client``
    emptied the server), checked after the test."""
    yield from planted(etcd_server)


@pytest.fixture
def etcd_client(etcd_aio_client: Any, plain: etcd3.Etcd3Client) -> Iterator[Any]:
    """What the reused bodies get: a blocking bridge over an asyncio view in
    ``ns/`` (``plain``, made after ``etcd_aio_client`` emptied the server, checks the
    keys around it afterwards)."""
    bridge = AioBridge(etcd_aio_client)
    try:
        view = bridge.namespace("ns/")
        object.__setattr__(view, "aio_view", view._target)
        yield view
    finally:
        bridge.close_bridge()


globals().update(reused_bodies("aio", SKIPPED))


def test_the_bodies_are_reused(etcd_client: Any) -> None:
    assert len(reused_bodies("aio", SKIPPED)) > 50
    assert isinstance(etcd_client.aio_view, etcd3.aio.namespace.NamespacedClient)


# -- focused asyncio tests -----------------------------------------------------------------

async def _first(iterator: AsyncIterator[Any], count: int) -> List[Any]:
    items = []
    async for item in iterator:
        items.append(item)
        if len(items) == count:
            break
    return items


def test_keys_and_events_as_gos_namespace(etcd_server: EtcdServer,
                                          etcd_aio_client: etcd3.aio.Etcd3Client,
                                          plain: etcd3.Etcd3Client) -> None:
    async def body() -> None:
        async with etcd_aio_client.namespace("ns/") as view:
            await view.put("a", "1")
            assert await view.put_if_not_exists("b", "2")
            assert etcdctl_pairs(etcd_server, "ns/") == [
                ("ns/", "the prefix itself"), ("ns/a", "1"), ("ns/b", "2")]
            assert [(m.key, v) async for v, m in view.get_all()] == [
                (b"a", b"1"), (b"b", b"2")]
            assert [m.key async for _, m in view.get_prefix("", page_size=1)] == [
                b"a", b"b"]
            events, cancel = await view.watch_prefix("", prev_kv=True)
            responses, cancel_responses = await view.watch_response("b")
            seen: asyncio.Queue[Any] = asyncio.Queue()

            async def callback(response: Any) -> None:
                await seen.put(response)

            await view.add_watch_callback("a", callback)
            await asyncio.to_thread(etcd_server.etcdctl, "put", "ns/a", "3")
            await asyncio.to_thread(etcd_server.etcdctl, "del", "ns/b")
            put, delete = await asyncio.wait_for(_first(events, 2), 10)
            assert (type(put), put.key, put.value, put.prev_value, put.prev_kv.key) == (
                PutEvent, b"a", b"3", b"1", b"a")
            assert (type(delete), delete.key) == (DeleteEvent, b"b")
            response = (await asyncio.wait_for(_first(responses, 1), 10))[0]
            assert [e.key for e in response.events] == [b"b"]
            assert [e.key for e in (await asyncio.wait_for(seen.get(), 10)).events] == [
                b"a"]
            await cancel()
            await cancel_responses()
            assert [e async for e in events] == []
            assert (await view.delete_prefix("")).deleted == 1
        assert view.closed and not etcd_aio_client.closed

    asyncio.run(body())


def test_a_lock_and_bulk_calls_in_an_asyncio_view(
        etcd_server: EtcdServer, etcd_aio_client: etcd3.aio.Etcd3Client,
        plain: etcd3.Etcd3Client) -> None:
    async def items() -> AsyncIterator[Tuple[str, str]]:
        for i in range(3):
            yield f"k{i}", str(i)

    async def body() -> None:
        view = etcd_aio_client.namespace(b"ns/")
        async with view.lock("job", ttl=5) as lock:
            assert [key for key, _ in etcdctl_pairs(etcd_server, "ns//locks/job/")] == [
                "ns/" + lock.owner_key.decode()]
            assert await lock.lease.keys == [lock.owner_key]
        assert etcdctl_pairs(etcd_server, "ns//locks/") == []

        prev: List[Any] = []
        assert await view.put_many(items(), prev_kv=lambda k, v, m: prev.append(k)) == 3
        assert prev == [b"k0", b"k1", b"k2"]
        pairs = await view.get_many(["k1", "none"])
        assert [(v, m and m.key) for v, m in pairs] == [(b"1", b"k1"), (None, None)]
        assert [m.key async for _, m in view.iter_range("k1", "\0", page_size=1)] == [
            b"k1", b"k2"]
        assert await view.delete_many(["k0", "k1", "k2"]) == 3
        assert await view.stm(lambda stm: stm.put("s", "1")) is None
        assert (await view.get("s"))[0] == b"1" and plain.get("ns/s")[0] == b"1"
        await view.delete("s")

    asyncio.run(body())


def test_the_view_ends_with_its_client(etcd_aio_client: etcd3.aio.Etcd3Client,
                                       plain: etcd3.Etcd3Client) -> None:
    async def body() -> None:
        view = etcd_aio_client.namespace("ns/")
        events, _ = await view.watch("k")
        lease = await view.lease(30, keep_alive=True)
        await view.close()
        assert [e async for e in events] == []
        assert not etcd_aio_client.lease_keepalive_active(lease.id)
        with pytest.raises(exceptions.ClientClosedError, match="namespace view"):
            await view.get("k")
        await etcd_aio_client.revoke_lease(lease.id)
        other = etcd_aio_client.namespace("ns/").namespace("sub/")
        assert other.prefix == b"ns/sub/"
        await etcd_aio_client.close()
        with pytest.raises(exceptions.ClientClosedError,
                           match="client under namespace b'ns/sub/' has been closed"):
            await other.put("k", "v")

    asyncio.run(body())
