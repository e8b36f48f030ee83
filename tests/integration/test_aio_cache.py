"""The asyncio client's cache against a real etcd: the same store and rules as the
threaded cache (test_cache.py), awaited: reads, read-your-writes, listeners,
transactions applied whole, one server watch per range, compaction resync, close."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Tuple

import pytest

import etcd3
import etcd3.aio
from etcd3 import exceptions
from etcd3._core.prefix_cache import CacheUpdate
from etcd3.testing import EtcdServer, FaultProxy


def state(pairs: Any) -> Dict[bytes, Tuple[bytes, int]]:
    return {meta.key: (value, meta.mod_revision) for value, meta in pairs}


async def until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_reads_writes_listeners_and_close(etcd_aio_client: Any) -> None:
    async def body() -> None:
        client = etcd_aio_client
        await client.put_many((f"/a/{i:03d}", f"v{i}") for i in range(120))
        cache = await client.cache_prefix("/a/", timeout=10, page_size=50)
        assert cache.ready and len(cache) == 120 and "/a/007" in cache
        assert cache.get("/a/007")[0] == b"v7" and cache.get("/b") == (None, None)
        assert state(cache.values()) == state([p async for p in client.get_prefix("/a/")])
        updates: List[CacheUpdate] = []
        cache.add_listener(updates.append)
        snap = cache.snapshot()
        revision = (await client.put("/a/new", "x")).header.revision
        assert await cache.wait_for_revision(revision, timeout=10) >= revision
        assert cache.get("/a/new")[0] == b"x" and "/a/new" not in snap
        assert [u.revision for u in updates] == [revision]
        outside = (await client.put("/elsewhere", "y")).header.revision
        assert await cache.wait_for_revision(outside, timeout=10) >= outside
        with pytest.raises(exceptions.CacheTimedOut):
            await cache.wait_for_revision(outside + 1000, timeout=0.3)
        # Multi-key transactions: one update, all keys at once.
        txn = client.transactions
        await client.transaction([], [txn.put("/a/x", "1"), txn.put("/a/y", "1"),
                                      txn.delete("/a/000")], [])
        revision = (await client.get_response("/a/x")).header.revision
        await cache.wait_for_revision(revision, timeout=10)
        assert len(updates[-1].events) == 3 and updates[-1].revision == revision
        cache.add_index("value", lambda key, value: value)
        assert [m.key for _, m in cache.by_index("value", b"1")] == [b"/a/x", b"/a/y"]
        # Caches of one range share one server watch.
        again = await client.cache_prefix(b"/a/", timeout=10)
        assert len(client._watch_engine()._watches) == 1
        assert again.revision == cache.revision
        await again.close()
        assert not cache.closed and again.closed
        await client.close()
        assert cache.closed and cache.get("/a/x")[0] == b"1"
        with pytest.raises(exceptions.CacheClosedError):
            await cache.wait_for_revision(revision + 100, timeout=5)

    asyncio.run(body())


def test_compaction_while_disconnected_resyncs(etcd_server: EtcdServer,
                                               etcd_client: Any,
                                               caplog: pytest.LogCaptureFixture) -> None:
    for i in range(5):
        etcd_client.put(f"/ars/{i}", "before")

    async def body(proxy: FaultProxy) -> None:
        async with etcd3.aio.client(endpoints=[proxy.endpoint], timeout=5) as client:
            cache = await client.cache_prefix("/ars/", timeout=10)
            updates: List[CacheUpdate] = []
            cache.add_listener(updates.append)
            proxy.mode = "reset"
            await until(lambda: cache.stale_since is not None)
            etcd_client.delete("/ars/0")
            etcd_client.put("/ars/new", "added")
            revision = etcd_client.put("/unrelated", "x").header.revision
            etcd_client.compact(revision)
            with caplog.at_level(logging.WARNING, logger="etcd3"):
                proxy.mode = "pass"
                assert await cache.wait_for_revision(revision, timeout=20) >= revision
            assert state(cache.values()) == state(etcd_client.get_prefix("/ars/"))
            (resync,) = [u for u in updates if u.resync]
            assert sorted((type(e).__name__, e.key) for e in resync.events) == [
                ("DeleteEvent", b"/ars/0"), ("PutEvent", b"/ars/new")]
            assert any("compacted" in r.getMessage() for r in caplog.records)

    with FaultProxy(etcd_server.endpoint) as proxy:
        asyncio.run(body(proxy))


def test_bad_input_and_an_unloaded_cache(etcd_aio_client: Any) -> None:
    async def body() -> None:
        with pytest.raises(TypeError):
            await etcd_aio_client.cache_prefix(3)
        with pytest.raises(ValueError):
            await etcd_aio_client.cache_range("/a", "/b", page_size=0)
        cache = await etcd_aio_client.cache_range("/r/a", "/r/z", wait=False)
        await cache.wait_ready(10)
        assert cache.ready and len(cache) == 0 and cache.keys() == []
        await cache.close()

    asyncio.run(body())
