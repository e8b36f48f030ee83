"""The watch-backed cache against a real etcd: reads, snapshots, read-your-writes,
listeners, transactions applied whole, resync after compaction, failover chaos,
close, exit and fork."""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Dict, List, Tuple

import pytest
from _concurrency_support import settle, wait_for

import etcd3
from etcd3 import exceptions
from etcd3._core.prefix_cache import CacheUpdate
from etcd3.testing import EtcdCluster, EtcdServer, FaultProxy


def server_state(client: Any, prefix: str, revision: int = 0) -> Dict[bytes, Tuple[bytes, int]]:
    """``{key: (value, mod_revision)}`` of the prefix on the server (at ``revision``)."""
    options = {"revision": revision} if revision else {}
    return {meta.key: (value, meta.mod_revision)
            for value, meta in client.get_prefix(prefix, **options)}


def cache_state(view: Any) -> Dict[bytes, Tuple[bytes, int]]:
    return {key: (value, meta.mod_revision) for key, (value, meta) in view.items()}


def test_reads_match_the_server(etcd_client: Any) -> None:
    etcd_client.put_many((f"/c/{i:03d}", f"v{i}") for i in range(250))
    etcd_client.put("/c-outside", "x")
    loaded: List[int] = []
    with etcd_client.cache_prefix("/c/", timeout=10, page_size=100,
                                  progress=loaded.append) as cache:
        assert loaded == [100, 250]  # pages of 100, then 200 (they grow)
        assert cache.ready and cache.stale_since is None
        assert len(cache) == 250 and "/c/007" in cache and b"/c/999" not in cache
        value, meta = cache.get("/c/007")
        server_value, server_meta = etcd_client.get("/c/007")
        assert value == server_value == b"v7"
        assert (meta.key, meta.mod_revision, meta.create_revision, meta.version) == (
            server_meta.key, server_meta.mod_revision, server_meta.create_revision,
            server_meta.version)
        assert cache.get("/c-outside") == (None, None)
        assert cache_state(cache) == server_state(etcd_client, "/c/")
        assert cache.keys() == sorted(cache.keys()) and len(cache.keys()) == 250
        assert [m.key for _, m in cache.get_prefix("/c/01")] == [
            f"/c/01{i}".encode() for i in range(10)]
        assert cache.revision == etcd_client.get_response("/c/000").header.revision
    assert cache.closed


def test_range_cache_and_bad_input(etcd_client: Any) -> None:
    for key in ("/r/a", "/r/b", "/r/c", "/r/d"):
        etcd_client.put(key, key)
    with etcd_client.cache_range("/r/b", "/r/d", timeout=10) as cache:
        assert cache.keys() == [b"/r/b", b"/r/c"]
        revision = etcd_client.put("/r/a", "outside").header.revision
        assert cache.wait_for_revision(revision, timeout=10) >= revision
        assert cache.keys() == [b"/r/b", b"/r/c"]
        with pytest.raises(TypeError):
            cache.get(7)
        with pytest.raises(ValueError):
            cache.wait_for_revision(-1)
    with pytest.raises(TypeError):
        etcd_client.cache_prefix(7)
    with pytest.raises(ValueError):
        etcd_client.cache_prefix("/r/", page_size=0)
    with pytest.raises(TypeError):
        etcd_client.cache_prefix("/r/", progress="yes")


def test_a_range_the_user_may_not_read_fails_at_once() -> None:
    from auth_support import client_for, enable_root_auth

    from etcd3.auth import Perms

    with EtcdServer(name="etcd-cache-auth") as server:
        enable_root_auth(server)
        with client_for(server) as root:
            root.add_user("dave", "dave-pw")
            root.add_role("dave-ro").grant(Perms.r, "/dave/", prefix=True)
            root.grant_role("dave", "dave-ro")
            root.put("/dave/a", "1")
            root.put("/secret/a", "x")
        with client_for(server, "dave", "dave-pw", timeout=30) as dave:
            allowed = dave.cache_prefix("/dave/")
            assert allowed.get("/dave/a")[0] == b"1"
            # etcd's refusal, not CacheTimedOut after the 30 s timeout.
            with pytest.raises(exceptions.PermissionDeniedError):
                dave.cache_prefix("/secret/")
            assert dave.caches == [allowed]


def test_read_your_writes_snapshots_and_listeners(etcd_client: Any) -> None:
    cache = etcd_client.cache_prefix("/ryw/", timeout=10)
    updates: List[CacheUpdate] = []
    cache.add_listener(updates.append)
    before = cache.snapshot()
    assert cache.snapshot() is before  # no change since: the same view
    for i in range(20):
        revision = etcd_client.put(f"/ryw/{i}", str(i)).header.revision
        assert cache.wait_for_revision(revision, timeout=10) >= revision
        assert cache.get(f"/ryw/{i}")[0] == str(i).encode()
    deleted = etcd_client.delete("/ryw/3", return_response=True).header.revision
    cache.wait_for_revision(deleted, timeout=10)
    assert "/ryw/3" not in cache
    assert len(before) == 0 and before.revision < deleted  # snapshots never change
    after = cache.snapshot()
    assert after.revision == deleted == cache.revision and len(after) == 19
    assert after == cache.snapshot() and cache_state(after) == server_state(
        etcd_client, "/ryw/", deleted)
    wait_for(lambda: len(updates) == 21)
    assert [u.revision for u in updates] == sorted(u.revision for u in updates)
    assert [type(u.events[0]).__name__ for u in updates[-2:]] == ["PutEvent", "DeleteEvent"]
    # A revision of another key: the cache asks etcd how far its watch is.
    outside = etcd_client.put("/elsewhere", "x").header.revision
    assert cache.wait_for_revision(outside, timeout=10) >= outside
    with pytest.raises(exceptions.CacheTimedOut, match="did not reach revision"):
        cache.wait_for_revision(outside + 1000, timeout=0.3)
    cache.close()
    with pytest.raises(exceptions.CacheClosedError):
        cache.wait_for_revision(outside + 1000, timeout=5)


def test_an_index_of_the_values_is_consistent_at_each_revision(etcd_client: Any) -> None:
    etcd_client.put("/svc/a", "eu:10.0.0.1")
    etcd_client.put("/svc/b", "us:10.0.0.2")
    with etcd_client.cache_prefix("/svc/", timeout=10) as cache:
        cache.add_index("zone", lambda key, value: value.split(b":")[0])
        assert [m.key for _, m in cache.by_index("zone", b"eu")] == [b"/svc/a"]
        before = cache.snapshot()
        txn = etcd_client.transactions
        response = etcd_client.transaction_response([], [
            txn.put("/svc/b", "eu:10.0.0.2"), txn.put("/svc/c", "eu:10.0.0.3"),
            txn.delete("/svc/a")])
        cache.wait_for_revision(response.header.revision, timeout=10)
        assert [m.key for _, m in cache.by_index("zone", b"eu")] == [b"/svc/b", b"/svc/c"]
        assert cache.by_index("zone", b"us") == []
        assert [m.key for _, m in before.by_index("zone", b"eu")] == [b"/svc/a"]
        with pytest.raises(KeyError):
            cache.by_index("region", b"eu")


def test_transactions_are_applied_whole(etcd_client: Any) -> None:
    """A reader never sees half of a multi-key transaction, in snapshots or updates."""
    keys = [f"/txn/{k}" for k in "abcd"]
    for key in keys:
        etcd_client.put(key, "0")
    cache = etcd_client.cache_prefix("/txn/", timeout=10)
    torn: List[Any] = []
    cache.add_listener(lambda u: torn.append(u) if len(u.events) != 4 else None)
    stop = threading.Event()
    seen = [0]

    def read() -> None:
        while not stop.is_set():
            snap = cache.snapshot()
            values = {snap.get(key)[0] for key in keys}
            if len(values) != 1:
                torn.append((snap.revision, values))
            seen[0] += 1

    reader = threading.Thread(target=read)
    reader.start()
    txn = etcd_client.transactions
    last = 0
    for i in range(1, 40):
        _, _ = etcd_client.transaction(
            compare=[], success=[txn.put(key, str(i)) for key in keys])
        last = etcd_client.get(keys[0])[1].mod_revision
    cache.wait_for_revision(last, timeout=10)
    stop.set()
    reader.join(10)
    assert torn == [] and seen[0] > 0
    assert {cache.get(key)[0] for key in keys} == {b"39"}
    cache.close()


def test_caches_of_one_range_share_one_server_watch(etcd_client: Any) -> None:
    first = etcd_client.cache_prefix("/shared/", timeout=10)
    second = etcd_client.cache_prefix(b"/shared/", timeout=10)
    other = etcd_client.cache_prefix("/other/", timeout=10)
    engine = etcd_client._watch_engine()
    assert len(engine._watches) == 2
    revision = etcd_client.put("/shared/k", "v").header.revision
    second.wait_for_revision(revision, timeout=10)
    assert first.get("/shared/k")[0] == b"v" and first.revision == second.revision
    first.close()
    assert not second.closed and len(engine._watches) == 2
    revision = etcd_client.put("/shared/k", "w").header.revision
    assert second.wait_for_revision(revision, timeout=10) >= revision
    assert second.get("/shared/k")[0] == b"w" and first.get("/shared/k")[0] == b"v"
    second.close()
    wait_for(lambda: len(engine._watches) == 1)
    assert set(etcd_client.caches) == {other}
    etcd_client.close()
    assert other.closed and other.get("/other/x") == (None, None)
    with pytest.raises(exceptions.CacheClosedError):
        other.wait_ready(1)


def test_compaction_while_disconnected_resyncs(etcd_server: EtcdServer,
                                               etcd_client: Any,
                                               caplog: pytest.LogCaptureFixture) -> None:
    for i in range(10):
        etcd_client.put(f"/rs/{i}", "before")
    with FaultProxy(etcd_server.endpoint) as proxy:
        client = etcd3.client(endpoints=[proxy.endpoint], timeout=5)
        try:
            cache = client.cache_prefix("/rs/", timeout=10)
            updates: List[CacheUpdate] = []
            cache.add_listener(updates.append)
            start = cache.revision
            proxy.mode = "reset"
            wait_for(lambda: cache.stale_since is not None)
            etcd_client.delete("/rs/0")
            etcd_client.put("/rs/1", "changed")
            etcd_client.put("/rs/new", "added")
            revision = etcd_client.put("/unrelated", "x").header.revision
            etcd_client.compact(revision)
            assert cache.revision == start and cache.get("/rs/0")[0] == b"before"
            with caplog.at_level(logging.WARNING, logger="etcd3"):
                proxy.mode = "pass"
                assert cache.wait_for_revision(revision, timeout=20) >= revision
                wait_for(lambda: cache.stale_since is None)
            assert cache_state(cache) == server_state(etcd_client, "/rs/")
            (resync,) = [u for u in updates if u.resync]
            assert sorted((type(e).__name__, e.key) for e in resync.events) == [
                ("DeleteEvent", b"/rs/0"), ("PutEvent", b"/rs/1"), ("PutEvent", b"/rs/new")]
            assert any("compacted" in r.getMessage() and "re-listed" in r.getMessage()
                       for r in caplog.records)
            later = etcd_client.put("/rs/2", "after").header.revision
            assert cache.wait_for_revision(later, timeout=10) >= later
            assert cache.get("/rs/2")[0] == b"after"
        finally:
            client.close()


def test_chaos_on_a_cluster_cache_equals_the_server(etcd_cluster: EtcdCluster) -> None:
    """Puts, deletes and multi-key transactions while a member is killed and
    restarted and the store compacted; sampled snapshots equal the server at their
    revision, and at quiescence the cache equals the server."""
    rng = random.Random(int(os.environ.get("ETCD3_CHAOS_SEED", "17")))
    endpoints = etcd_cluster.endpoints
    writer = etcd3.client(endpoints=endpoints, timeout=10)
    reader = etcd3.client(endpoints=endpoints, timeout=10)
    writer.delete_prefix("/chaos/")
    cache = reader.cache_prefix("/chaos/", timeout=20, page_size=7)
    samples: List[Any] = []
    txn = writer.transactions
    keys = [f"/chaos/{i:02d}" for i in range(24)]

    def check_before_compacting(snapshots: List[Any]) -> int:
        """Every snapshot equals the server at its revision; then compact."""
        for snap in snapshots:
            assert cache_state(snap) == server_state(writer, "/chaos/", snap.revision)
        writer.compact(writer.get_response(keys[0]).header.revision)
        return len(snapshots)
    try:
        engine = reader._watch_engine()
        victim = next(m for m in etcd_cluster.members if m.endpoint == engine.endpoint)
        deadline = time.monotonic() + 30
        failed = checked = 0
        for step in range(300):
            if time.monotonic() > deadline:
                break
            if step == 80:
                victim.kill()
            elif step == 160:
                victim.start()
            if step == 200:
                checked, samples = check_before_compacting(samples), []
            roll = rng.random()
            try:  # a write may time out while the killed member was the leader
                if roll < 0.5:
                    writer.put(rng.choice(keys), f"v{step}")
                elif roll < 0.7:
                    writer.delete(rng.choice(keys))
                else:
                    chosen = rng.sample(keys, rng.randint(2, 5))
                    ops = [txn.put(k, f"t{step}") if rng.random() < 0.7 else txn.delete(k)
                           for k in chosen]
                    writer.transaction_response([], ops)
            except exceptions.Etcd3Exception:
                failed += 1
            if step % 10 == 0:
                samples.append(cache.snapshot())
        if not checked:  # a slow machine: the loop ended before step 200
            checked, samples = check_before_compacting(samples), []
        last = writer.put("/chaos/last", "end").header.revision
        assert cache.wait_for_revision(last, timeout=30) >= last
        assert cache_state(cache) == server_state(writer, "/chaos/", cache.revision)
        assert cache_state(cache) == server_state(writer, "/chaos/")
        assert checked >= 2, (checked, failed)
        for snap in samples:
            try:
                assert cache_state(snap) == server_state(writer, "/chaos/", snap.revision)
            except exceptions.RevisionCompactedError:
                pass  # it lagged behind the compaction: the server no longer has it
    finally:
        for member in etcd_cluster.members:
            if not member.running:
                member.start()
        cache.close()
        reader.close()
        writer.close()


_SCRIPT = """
import os, sys, time
import etcd3
client = etcd3.client(endpoints=[os.environ["TEST_ENDPOINT"]], timeout=5)
cache = client.cache_prefix("/exit/", timeout=10)
client.put("/exit/k", "v")
{body}
print("LAST", flush=True)
"""


@pytest.mark.parametrize("body", ["", "del client, cache", "cache.close()"])
def test_a_process_with_an_open_cache_exits_promptly(etcd_server: EtcdServer,
                                                     body: str) -> None:
    script = textwrap.dedent(_SCRIPT.format(body=body))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TEST_ENDPOINT": etcd_server.endpoint})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        last = time.monotonic()
        assert line.strip() == "LAST", proc.stderr.read() if proc.stderr else ""
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - last < 5.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_dropped_cache_and_client_end_their_threads(etcd_server: EtcdServer) -> None:
    def cache_threads() -> int:
        return sum(1 for t in threading.enumerate() if t.name.startswith("etcd3-cache"))

    baseline = cache_threads()

    def use_and_drop() -> None:
        client = etcd3.client(endpoints=[etcd_server.endpoint], timeout=5)
        cache = client.cache_prefix("/dropped/", timeout=10)
        assert cache.ready

    use_and_drop()
    assert settle(lambda: cache_threads() <= baseline)


def test_a_cache_dropped_without_close_stops_following(etcd_client: Any) -> None:
    engine = etcd_client._watch_engine()
    kept = etcd_client.cache_prefix("/kept/", timeout=10)

    def open_and_drop() -> None:
        cache = etcd_client.cache_prefix("/dropped/", timeout=10)
        assert len(engine._watches) == 2 and cache.ready

    open_and_drop()
    assert settle(lambda: len(engine._watches) == 1)
    assert etcd_client.caches == [kept] and not kept.closed
    kept.close()


def test_a_forked_child_keeps_the_contents_frozen_and_can_open_its_own(
        etcd_client: Any) -> None:
    etcd_client.put("/fork/k", "v")
    cache = etcd_client.cache_prefix("/fork/", timeout=10)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            assert cache.get("/fork/k")[0] == b"v" and cache.stale_since is not None
            try:
                cache.wait_for_revision(cache.revision + 1, timeout=1)
            except exceptions.ForkedWatchError:
                pass
            else:
                raise AssertionError("no ForkedWatchError")
            fresh = etcd_client.cache_prefix("/fork/", timeout=10)
            revision = etcd_client.put("/fork/child", "c").header.revision
            assert fresh.wait_for_revision(revision, timeout=10) >= revision
            assert fresh.get("/fork/child")[0] == b"c"
            code = 0
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    status = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    assert status == b"\0"
    revision = etcd_client.put("/fork/parent", "p").header.revision
    assert cache.wait_for_revision(revision, timeout=10) >= revision
    assert cache.get("/fork/child")[0] == b"c"
    cache.close()
