"""etcd3.aio: put_many / delete_many / get_many / iter_prefix / iter_range against a
real etcd, with the threaded client's failure accounting: a frozen server, a member
SIGKILLed mid-run in a 3-member cluster, and a cancelled bulk call."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Iterator,
    List,
    Set,
    Tuple,
    Union,
)

import pytest

import etcd3.aio
from etcd3 import exceptions
from etcd3.testing import EtcdCluster, EtcdServer

Body = Callable[[etcd3.aio.Etcd3Client], Awaitable[Any]]


def run(server: EtcdServer, body: Body, **kwargs: Any) -> Any:
    async def main() -> Any:
        async with etcd3.aio.client(host=server.host, port=server.port,
                                    **kwargs) as client:
            return await body(client)

    return asyncio.run(main())


def count(server: EtcdServer, prefix: str) -> int:
    """etcdctl's count of keys under ``prefix``."""
    out = server.etcdctl("get", "--prefix", prefix, "--limit", "1", "-w", "json").stdout
    return int(json.loads(out).get("count", 0))


def value_of(server: EtcdServer, key: str) -> str:
    return server.etcdctl("get", key, "--print-value-only").stdout.rstrip("\n")


def iter_prefix(client: etcd3.aio.Etcd3Client, prefix: str, **options: Any
                ) -> AsyncIterator[Tuple[bytes, Any]]:
    return client.iter_prefix(prefix, **options)


async def stored_keys(client: etcd3.aio.Etcd3Client, prefix: str) -> Set[bytes]:
    return {meta.key async for _, meta in iter_prefix(client, prefix, keys_only=True)}


def test_put_many_20000_keys_all_there(etcd_server: EtcdServer) -> None:
    done: List[int] = []

    async def body(client: etcd3.aio.Etcd3Client) -> int:
        items = ((f"/abulk/{i:06d}", f"value-{i}") for i in range(20_000))
        return await client.put_many(items, progress=done.append)

    assert run(etcd_server, body) == 20_000
    assert count(etcd_server, "/abulk/") == 20_000
    for i in (0, 1, 127, 128, 129, 10_000, 19_999):
        assert value_of(etcd_server, f"/abulk/{i:06d}") == f"value-{i}"
    assert done == sorted(done) and done[-1] == 20_000


def test_inputs_mapping_async_iterable_and_prev_kv_in_order(etcd_server: EtcdServer) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        await client.delete_prefix("/ain/")
        mapping: Dict[Union[str, bytes], Union[str, bytes]] = {"/ain/a": "1",
                                                               b"/ain/b": b"2"}
        assert await client.put_many(mapping) == 2
        assert await client.put_many([]) == 0
        assert (await client.get("/ain/b"))[0] == b"2"

        async def produced() -> AsyncIterator[Tuple[str, str]]:
            for i in range(500):
                if i % 100 == 0:
                    await asyncio.sleep(0)
                yield f"/ain/gen/{i:04d}", f"g{i}"

        assert await client.put_many(produced(), ops_per_txn=64) == 500
        assert len(await stored_keys(client, "/ain/gen/")) == 500
        items = [("/ain/d/a", "1"), ("/ain/d/b", "1"), ("/ain/d/a", "2"),
                 ("/ain/d/c", "1"), ("/ain/d/a", "3")]
        previous: List[Tuple[bytes, object]] = []
        assert await client.put_many(
            items, prev_kv=lambda key, value, meta: previous.append((key, value))) == 5
        value, meta = await client.get("/ain/d/a")
        assert value == b"3" and meta is not None and meta.version == 3
        assert previous == [(b"/ain/d/a", None), (b"/ain/d/b", None), (b"/ain/d/a", b"1"),
                            (b"/ain/d/c", None), (b"/ain/d/a", b"2")]

    run(etcd_server, body)


def test_generator_is_streamed_with_a_bounded_window(etcd_server: EtcdServer) -> None:
    committed = [0]
    most_ahead = [0]
    ops, window, total = 50, 2, 10_000

    def items() -> Iterator[Tuple[str, bytes]]:
        for i in range(total):
            most_ahead[0] = max(most_ahead[0], i - committed[0])
            yield f"/agen/{i:06d}", b"x"

    def progress(done: int) -> None:
        assert done > committed[0]
        committed[0] = done

    async def body(client: etcd3.aio.Etcd3Client) -> None:
        assert await client.put_many(items(), ops_per_txn=ops, window=window,
                                     progress=progress) == total
        assert len(await stored_keys(client, "/agen/")) == total

    run(etcd_server, body)
    assert committed[0] == total
    # at most `window` transactions in flight plus the one being filled
    assert most_ahead[0] <= (window + 1) * ops


def test_chunks_by_bytes_and_an_oversize_value_names_its_key(etcd_server: EtcdServer) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        big = b"v" * 300_000  # 10 in one transaction would be twice etcd's limit
        assert await client.put_many((f"/abig/{i}", big) for i in range(10)) == 10
        assert len(await stored_keys(client, "/abig/")) == 10
        items = [(f"/aover/{i}", b"s") for i in range(5)]
        items += [("/aover/the-big-one", b"b" * 1_500_000), ("/aover/after", b"s")]
        with pytest.raises(exceptions.BulkRequestTooLargeError) as caught:
            await client.put_many(items)
        error = caught.value
        assert isinstance(error, exceptions.RequestTooLargeError)
        assert "/aover/the-big-one" in str(error)
        assert error.committed == 5 and error.failed_keys == [b"/aover/the-big-one"]

    run(etcd_server, body)
    assert count(etcd_server, "/aover/") == 5
    assert value_of(etcd_server, "/aover/after") == ""


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_bad_item_mid_stream_reports_what_was_written(etcd_server: EtcdServer,
                                                      kind: str) -> None:
    prefix = f"/abad/{kind}/"

    def items() -> Iterator[Tuple[object, bytes]]:
        for i in range(300):
            yield f"{prefix}{i:04d}", b"v"
        yield 12345, b"v"
        yield f"{prefix}never", b"v"

    async def async_items() -> AsyncIterator[Tuple[object, bytes]]:
        for item in items():
            yield item

    async def body(client: etcd3.aio.Etcd3Client) -> None:
        source: Any = items() if kind == "sync" else async_items()
        with pytest.raises(exceptions.BulkWriteError) as caught:
            await client.put_many(source)
        assert caught.value.committed == 300
        assert isinstance(caught.value.__cause__, TypeError)
        assert not caught.value.uncertain
        assert "resume from items[300:]" in str(caught.value)
        assert await stored_keys(client, prefix) == {f"{prefix}{i:04d}".encode()
                                                     for i in range(300)}

    run(etcd_server, body)


def test_bad_arguments_fail_before_sending(etcd_server: EtcdServer) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        with pytest.raises(ValueError):
            await client.put_many([("/aargs", "v")], ops_per_txn=0)
        with pytest.raises(TypeError):
            await client.put_many([("/aargs", "v")], window=1.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await client.put_many([("/aargs", "v")], prev_kv=True)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await client.put_many([("/aargs", "v")], progress="yes")
        with pytest.raises(TypeError):
            await client.put_many(42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="page_size"):
            iter_prefix(client, "/a", page_size=0)  # at once, before iterating
        with pytest.raises(ValueError, match="ascending"):
            iter_prefix(client, "/a", sort_order="descend")
        assert await client.get("/aargs") == (None, None)

    run(etcd_server, body)


def test_delete_many_and_get_many_at_one_revision(etcd_server: EtcdServer) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        await client.put_many((f"/adel/{i:04d}", "v") for i in range(300))
        doomed = [f"/adel/{i:04d}" for i in range(200)] + ["/adel/absent", "/adel/0000"]
        assert await client.delete_many(doomed, ops_per_txn=64) == 200
        assert await stored_keys(client, "/adel/") == {f"/adel/{i:04d}".encode()
                                                       for i in range(200, 300)}

        await client.put_many((f"/agm/{i:03d}", f"old{i}") for i in range(100))
        wanted = [f"/agm/{i:03d}" for i in (5, 1, 99, 1)] + ["/agm/missing"]

        async def keys() -> AsyncIterator[str]:
            for key in wanted[:2]:
                yield key
            # the first batch (pinning the revision) is done: rewrite what comes next
            await client.put_many((key, "new") for key in wanted[2:])
            for key in wanted[2:]:
                yield key

        results = await client.get_many(keys(), ops_per_txn=1)
        assert [value for value, _ in results] == [b"old5", b"old1", b"old99", b"old1",
                                                   None]
        first_meta = results[0][1]
        assert first_meta is not None and first_meta.key == b"/agm/005"
        assert results[-1] == (None, None)
        fresh = await client.get_many(wanted[:3])
        assert [v for v, _ in fresh] == [b"old5", b"new", b"new"]
        with pytest.raises(exceptions.FutureRevisionError):
            await client.get_many(wanted, revision=10**9)

    run(etcd_server, body)


def test_paged_reads_are_one_consistent_snapshot(etcd_server: EtcdServer) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        await client.delete_prefix("/apg")
        await client.put_many((f"/apg/{i:05d}", f"v{i}") for i in range(3_000))
        await client.put_many([("/apf", "before"), ("/apg", "exact"), ("/aph", "after")])
        whole = [(meta.key, value) async for value, meta in client.get_prefix("/apg/")]
        assert len(whole) == 3_000
        for page_size in (1_000, 2_999, 3_000, 3_001):
            paged = [(meta.key, value)
                     async for value, meta in iter_prefix(client, "/apg/",
                                                          page_size=page_size)]
            assert paged == whole
            via_get_prefix = [(meta.key, value) async for value, meta
                              in client.get_prefix("/apg/", page_size=page_size)]
            assert via_get_prefix == whole
        ranged = [meta.key async for _, meta in client.iter_range(
            "/apg/00100", "/apg/00200", page_size=30)]
        assert ranged == [f"/apg/{i:05d}".encode() for i in range(100, 200)]

        base = (await client.get_prefix_response("/apg/", count_only=True)).header.revision
        pages = iter_prefix(client, "/apg/", page_size=250)
        got = [await pages.__anext__() for _ in range(10)]
        # concurrent writes ahead of and behind the cursor
        await client.put("/apg/00001", "changed")
        await client.put("/apg/02999", "changed")
        await client.put("/apg/01500x", "inserted")
        await client.delete("/apg/02000")
        got += [pair async for pair in pages]
        assert [(meta.key, value) for value, meta in got] == whole
        newer = [meta.key async for _, meta in iter_prefix(
            client, "/apg/", page_size=500, min_mod_revision=base + 1)]
        assert newer == [b"/apg/00001", b"/apg/01500x", b"/apg/02999"]

    run(etcd_server, body)


# -- failures mid-run -------------------------------------------------------------------

async def load_until_failure(client: etcd3.aio.Etcd3Client, prefix: str, at: int,
                             fault: Callable[[], None], total: int
                             ) -> Tuple[int, Any]:
    """put_many ``total`` items; ``fault`` runs (in a thread) once ``at`` are written.
    Returns (items written, the BulkWriteError or None)."""
    reached = asyncio.Event()

    def progress(done: int) -> None:
        if done >= at:
            reached.set()

    async def inject() -> None:
        await reached.wait()
        await asyncio.to_thread(fault)

    injector = asyncio.ensure_future(inject())
    try:
        written = await client.put_many(
            ((f"{prefix}{i:07d}", b"v" * 100) for i in range(total)), progress=progress)
        return written, None
    except exceptions.BulkWriteError as error:
        assert error.committed >= at
        assert isinstance(error.__cause__, exceptions.Etcd3Exception)
        return error.committed, error
    finally:
        reached.set()
        await injector


async def check_store_matches(error: exceptions.BulkWriteError,
                              client: etcd3.aio.Etcd3Client, prefix: str) -> None:
    stored = {int(key[len(prefix):]) for key in await stored_keys(client, prefix)}
    assert set(range(error.committed)) <= stored
    later: Set[int] = set()
    for first, stop in error.later_committed:
        later.update(range(first, stop))
    assert later <= stored
    maybe = {int(key[len(prefix.encode()):]) for key in error.failed_keys}
    assert stored <= set(range(error.committed)) | later | maybe  # nothing else was sent
    if not error.uncertain:
        assert not stored & maybe


def test_frozen_server_mid_run_reports_uncertain_batches(etcd_server: EtcdServer) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        await client.delete_prefix("/afrozen/")
        try:
            _, error = await load_until_failure(client, "/afrozen/", 3_000,
                                                etcd_server.pause, 500_000)
        finally:
            await asyncio.to_thread(etcd_server.resume)
        assert error is not None and error.uncertain and error.failed_keys
        assert "may or may not have been applied" in str(error)
        await check_store_matches(error, client, "/afrozen/")

    run(etcd_server, body, timeout=2)


@pytest.fixture(scope="module")
def cluster() -> Iterator[EtcdCluster]:
    with EtcdCluster(3) as started:
        yield started


@pytest.mark.parametrize("fault", ["kill", "pause"])
def test_member_killed_or_frozen_mid_put_many_is_accounted_for(cluster: EtcdCluster,
                                                              fault: str) -> None:
    victim = cluster.members[1]
    survivors = [m.endpoint for m in cluster.members if m is not victim]
    prefix = f"/a{fault}/"
    total = 150_000

    async def main() -> None:
        # A frozen member holds the writes sent to it until their deadline.
        async with etcd3.aio.client(endpoints=cluster.endpoints,
                                    timeout=10 if fault == "kill" else 3) as client:
            written, error = await load_until_failure(
                client, prefix, 5_000, victim.kill if fault == "kill" else victim.pause,
                total)
        if fault == "pause":
            await asyncio.to_thread(victim.resume)
        # Checked through the members that stayed up.
        async with etcd3.aio.client(endpoints=survivors, timeout=10) as checker:
            if error is None:  # nothing was in flight to the victim when it failed
                assert written == total
                assert len(await stored_keys(checker, prefix)) == total
            else:
                assert written < total
                await check_store_matches(error, checker, prefix)

    try:
        asyncio.run(main())
    finally:
        if victim.paused:
            victim.resume()
        if not victim.running:
            victim.start()
        cluster.wait_healthy()


@pytest.fixture(scope="module")
def read_cluster() -> Iterator[EtcdCluster]:
    """A cluster of its own for the get_many tests. The put_many tests above SIGKILL a
    member under write load, which on etcd 3.5.0-3.5.2 can leave it applying later
    writes at revisions shifted from the other members' (etcd issue #13766, fixed in
    3.5.3); a read pinned at one member's revision then reads another member's older
    state. That is etcd's bug, not get_many's, and not what these tests are about."""
    with EtcdCluster(3) as started:
        yield started


@pytest.mark.parametrize("fault", ["kill", "pause"])
def test_get_many_survives_a_member_killed_or_frozen_mid_read(read_cluster: EtcdCluster,
                                                             fault: str) -> None:
    cluster = read_cluster
    # A follower: losing the leader is the retry rules' business (reads wait for an
    # election), not get_many's.
    leader = cluster.leader()
    victim = next(member for member in cluster.members if member is not leader)
    keys = [f"/agm{fault}/{i:05d}" for i in range(20_000)]

    async def main() -> None:
        async with etcd3.aio.client(endpoints=cluster.endpoints, timeout=10) as client:
            await client.put_many((key, key) for key in keys)

            async def read_repeatedly() -> int:
                reads = 0
                for _ in range(10):
                    got = await client.get_many(keys, window=8)
                    assert [value for value, _ in got] == [k.encode() for k in keys]
                    reads += 1
                return reads

            reader = asyncio.ensure_future(read_repeatedly())
            await asyncio.sleep(0.2)  # mid-read: a get_many of 20,000 keys is running
            await asyncio.to_thread(victim.kill if fault == "kill" else victim.pause)
            # Its transactions are reads: sent again elsewhere, as a Range is (a
            # frozen member's after their attempt's share of the deadline; on etcd
            # 3.5.0-3.5.4 the one it holds is left running there, never cancelled).
            assert await reader == 10
            if fault == "pause":
                # Closing the client while a 3.5.0-3.5.4 member still holds a
                # left-running read-only Txn would cancel it, which crashes that
                # member when it resumes (etcd issue 14110): resume it first and let
                # the Txn finish, as an operator's member would.
                await asyncio.to_thread(victim.resume)
                left = client._transport._left_running
                for _ in range(200):
                    if not left:
                        break
                    await asyncio.sleep(0.05)
                assert not left

    try:
        asyncio.run(main())
    finally:
        if victim.paused:
            victim.resume()
        if not victim.running:
            victim.start()
        cluster.wait_healthy()


def calls_in_flight() -> List[asyncio.Task[Any]]:
    """Tasks of the running loop running an RPC of an etcd3.aio transport."""
    return [task for task in asyncio.all_tasks()
            if "AioTransport.call" in getattr(task.get_coro(), "__qualname__", "")]


def test_cancelled_put_many_cancels_its_transactions(etcd_server: EtcdServer) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        await client.delete_prefix("/acancel/")
        done: List[int] = []
        task = asyncio.ensure_future(client.put_many(
            ((f"/acancel/{i:07d}", b"v" * 100) for i in range(1_000_000)),
            progress=done.append))
        for _ in range(500):
            if done and done[-1] >= 2_000:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as caught:
            await task
        if hasattr(caught.value, "add_note"):  # Python 3.11+; else the note is logged
            notes = " ".join(getattr(caught.value, "__notes__", []))
            assert "put_many was cancelled: items [0, " in notes
        # Nothing is left running. A Txn already on the wire when the cancel came may
        # still land (a cancelled write may or may not have been applied); after
        # that, what is stored stays as it is.
        stored, now = -1, 0
        for _ in range(10):
            now = len(await stored_keys(client, "/acancel/"))
            if now == stored:
                break
            stored = now
            await asyncio.sleep(0.3)
        assert now == stored >= done[-1]
        assert stored < 1_000_000
        assert calls_in_flight() == []
        # A deadline around a bulk call.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(
                client.put_many((f"/acancel/t{i:07d}", b"v") for i in range(1_000_000)),
                0.2)
        assert calls_in_flight() == []
        await client.put("/acancel/after", "ok")

    run(etcd_server, body)


SCRIPT = """
import asyncio, sys
import etcd3.aio

async def main():
    client = etcd3.aio.client(host=sys.argv[1], port=int(sys.argv[2]))
    asyncio.ensure_future(client.put_many((f"/aexit/{i}", "v") for i in range(10**6)))
    stream = client.snapshot_stream()
    await stream.__anext__()
    await client.members.__anext__()
    await asyncio.sleep(0.3)
    print("leaving with put_many and a snapshot stream running, client not closed")

asyncio.run(main())
"""


def test_a_script_that_forgets_close_mid_put_many_exits_cleanly(
        etcd_server: EtcdServer) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, etcd_server.host,
                           str(etcd_server.port)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "leaving with put_many" in done.stdout
    for noise in ("Traceback", "Task was destroyed", "Exception ignored", "never awaited"):
        assert noise not in done.stderr
