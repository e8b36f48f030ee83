"""Watches of the asyncio client against a real etcd: event sequences, options,
callbacks (plain and coroutine), coalescing, compaction, backpressure, cancellation,
close, and interop with etcdctl. The threaded test_watch.py's scenarios, awaited."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import subprocess
import sys
import textwrap
from typing import Any, Iterator, List, Tuple

import pytest
from _aio_watch_support import Seen, run, take, wait_until

import etcd3.aio
from etcd3 import exceptions
from etcd3.aio._watch_engine import AioWatchEngine
from etcd3.etcdrpc import rpc_pb2
from etcd3.events import DeleteEvent, Event, PutEvent, WatchResponse
from etcd3.testing import EtcdServer

Client = etcd3.aio.Etcd3Client


@pytest.fixture
def server(etcd_server: EtcdServer) -> Iterator[EtcdServer]:
    """The session's etcd, up and empty."""
    if etcd_server.paused:
        etcd_server.resume()
    if not etcd_server.running:
        etcd_server.start()
    etcd_server.etcdctl("del", "", "--from-key")
    yield etcd_server


@pytest.fixture(scope="module")
def quiet_server() -> Iterator[EtcdServer]:
    """An etcd of this module's own, for tests that count etcd's watchers (other
    tests' clients may leave watchers on the session's server)."""
    with EtcdServer(name="aio-watch-quiet") as server:
        yield server


def shape(events: List[Event]) -> List[Tuple[str, bytes, bytes]]:
    return [(type(e).__name__, e.key, e.value) for e in events]


def engine_of(client: Client) -> AioWatchEngine:
    return client._watch_engine()


def nothing_registered(client: Client) -> None:
    engine = engine_of(client)
    assert engine._subs == {} and engine._watches == {} and engine._shared == {}


def test_put_and_delete_sequence(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        events, cancel = await client.watch("/w/key")
        await client.put("/w/key", "1")
        await client.put("/w/other", "x")
        await client.put("/w/key", "2")
        await client.delete("/w/key")
        got = await take(events, 3)
        assert shape(got) == [("PutEvent", b"/w/key", b"1"), ("PutEvent", b"/w/key", b"2"),
                              ("DeleteEvent", b"/w/key", b"")]
        assert [e.version for e in got] == [1, 2, 0]
        assert got[1].mod_revision == got[0].mod_revision + 2
        assert isinstance(got[0], PutEvent) and isinstance(got[2], DeleteEvent)
        await cancel()
        assert [e async for e in events] == []  # cancel ends the iterator
        nothing_registered(client)

    run(body, endpoints=[server.endpoint])


def test_prefix_range_filters_and_prev_kv(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        prefix_events, cancel_prefix = await client.watch_prefix("/p/")
        range_events, cancel_range = await client.watch("/r/b", range_end="/r/d")
        no_put, cancel_a = await client.watch("/f", filters=["noput"])
        no_delete, cancel_b = await client.watch(
            "/f", filters=[rpc_pb2.WatchCreateRequest.NODELETE], prev_kv=True)
        for key in ("/p/a", "/pz", "/p/b", "/r/a", "/r/b", "/r/c", "/r/d"):
            await client.put(key, "v")
        await client.put("/f", "1")
        await client.delete("/f")
        await client.put("/f", "2")
        assert [e.key for e in await take(prefix_events, 2)] == [b"/p/a", b"/p/b"]
        assert [e.key for e in await take(range_events, 2)] == [b"/r/b", b"/r/c"]
        assert shape(await take(no_put, 1)) == [("DeleteEvent", b"/f", b"")]
        first, second = await take(no_delete, 2)
        assert (first.value, first.prev_kv) == (b"1", None)
        assert (second.value, second.prev_value) == (b"2", None)  # deleted in between
        for cancel in (cancel_prefix, cancel_range, cancel_a, cancel_b):
            await cancel()
        with pytest.raises(ValueError):
            await client.watch("/f", filters=["nothing"])
        with pytest.raises(TypeError):
            await client.watch("/f", start_revision="1")
        nothing_registered(client)

    run(body, endpoints=[server.endpoint])


def test_start_revision_replays_history(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        first = (await client.put("/h", "1")).header.revision
        await client.put("/h", "2")
        await client.delete("/h")
        events, cancel = await client.watch("/h", start_revision=first, prev_kv=True)
        got = await take(events, 3)
        assert shape(got) == [("PutEvent", b"/h", b"1"), ("PutEvent", b"/h", b"2"),
                              ("DeleteEvent", b"/h", b"")]
        assert [e.mod_revision for e in got] == [first, first + 1, first + 2]
        assert got[2].prev_value == b"2"
        await cancel()

    run(body, endpoints=[server.endpoint])


def test_watch_response_and_progress(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        responses, cancel = await client.watch_prefix_response("/wr/")
        await client.transaction([], [client.transactions.put(f"/wr/{i}", "v")
                                      for i in range(3)])
        (response,) = await take(responses, 1)
        assert isinstance(response, WatchResponse)
        assert [e.key for e in response.events] == [b"/wr/0", b"/wr/1", b"/wr/2"]
        assert response.header.revision == response.events[0].mod_revision
        await client.request_progress()
        (progress,) = await take(responses, 1)
        assert progress.events == [] and progress.progress_notify
        assert progress.header.revision >= response.header.revision
        await cancel()

    run(body, endpoints=[server.endpoint])


def test_plain_and_coroutine_callbacks_and_cancel(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        plain: List[Any] = []
        seen = Seen()
        plain_id = await client.add_watch_prefix_callback("/cb/", plain.append)
        seen_id = await client.add_watch_prefix_callback("/cb/", seen)
        assert plain_id != seen_id
        await client.put("/cb/1", "a")
        await seen.wait_for(lambda s: len(s.events) == 1)
        await wait_until(lambda: len(plain) == 1)
        await client.cancel_watch(seen_id)
        await client.cancel_watch(seen_id)  # a second cancel is a no-op
        await client.put("/cb/2", "b")
        await wait_until(lambda: len(plain) == 2)
        assert shape(seen.events) == [("PutEvent", b"/cb/1", b"a")]
        assert [r.events[0].key for r in plain] == [b"/cb/1", b"/cb/2"]
        await client.cancel_watch(plain_id)
        nothing_registered(client)
        with pytest.raises(TypeError):
            await client.add_watch_callback("/cb/", "not callable")  # type: ignore

    run(body, endpoints=[server.endpoint])


def test_callback_may_add_and_cancel_watches(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        inner = Seen()
        added: asyncio.Queue[int] = asyncio.Queue()
        outer_ids: List[int] = []

        async def outer(response: Any) -> None:
            await added.put(await client.add_watch_callback("/in", inner))
            await client.cancel_watch(outer_ids[0])

        outer_ids.append(await client.add_watch_callback("/out", outer))
        await client.put("/out", "go")
        inner_id = await asyncio.wait_for(added.get(), 10)
        await client.put("/out", "ignored: outer cancelled itself")
        await client.put("/in", "1")
        await inner.wait_for(lambda s: len(s.events) == 1)
        assert added.empty()
        await client.cancel_watch(inner_id)

    run(body, endpoints=[server.endpoint])


def test_callback_exception_is_logged_and_delivery_goes_on(
        server: EtcdServer, caplog: pytest.LogCaptureFixture) -> None:
    async def body(client: Client) -> None:
        seen = Seen()

        async def failing(response: Any) -> None:
            await seen(response)
            raise RuntimeError("boom")

        watch_id = await client.add_watch_callback("/boom", failing)
        await client.put("/boom", "1")
        await client.put("/boom", "2")
        await seen.wait_for(lambda s: len(s.events) == 2)
        await client.cancel_watch(watch_id)

    with caplog.at_level(logging.ERROR, logger="etcd3"):
        run(body, endpoints=[server.endpoint])
    assert any(r.exc_info and "boom" in str(r.exc_info[1]) for r in caplog.records)


def test_slow_callback_does_not_stall_iterators(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        release = asyncio.Event()

        async def slow(response: Any) -> None:
            await release.wait()

        watch_id = await client.add_watch_callback("/slow", slow)
        events, cancel = await client.watch("/slow")
        await client.put("/slow", "1")
        await client.put("/slow", "2")
        assert [e.value for e in await take(events, 2)] == [b"1", b"2"]
        release.set()
        await cancel()
        await client.cancel_watch(watch_id)

    run(body, endpoints=[server.endpoint])


def test_watch_once(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        with pytest.raises(exceptions.WatchTimedOut):
            await client.watch_once("/once", timeout=0.2)

        async def later() -> None:
            await asyncio.sleep(0.1)
            await client.put("/once/x", "1")

        writer = asyncio.ensure_future(later())
        event = await client.watch_prefix_once("/once/", timeout=5)
        await writer
        assert (event.key, event.value) == (b"/once/x", b"1")
        with pytest.raises(ValueError):
            await client.watch_once("/once", timeout=-1)
        response = await client.watch_once_response(
            "/once/x", timeout=5, start_revision=event.mod_revision)
        assert [e.value for e in response.events] == [b"1"]
        response = await client.watch_prefix_once_response(
            "/once/", timeout=5, start_revision=event.mod_revision)
        assert response.header.revision >= event.mod_revision
        nothing_registered(client)

    run(body, endpoints=[server.endpoint])


def test_identical_watches_share_one_server_watch(quiet_server: EtcdServer) -> None:
    server = quiet_server

    async def body(client: Client) -> None:
        first = Seen()
        first_id = await client.add_watch_prefix_callback("/s/", first)
        await client.put("/s/before", "1")
        await first.wait_for(lambda s: len(s.events) == 1)
        second = Seen()
        second_id = await client.add_watch_prefix_callback("/s/", second)
        events, cancel = await client.watch_prefix("/s/")
        engine = engine_of(client)
        assert len(engine._watches) == 1 and len(engine._subs) == 3
        await client.put("/s/after", "2")
        await first.wait_for(lambda s: len(s.events) == 2)
        await second.wait_for(lambda s: len(s.events) == 1)
        assert [e.key for e in second.events] == [b"/s/after"]
        assert [e.key for e in await take(events, 1)] == [b"/s/after"]
        # etcd itself sees one watch: its metrics count the watchers of the server.
        assert await _server_watchers(server) == 1
        await client.cancel_watch(first_id)
        await cancel()
        assert len(engine._watches) == 1
        await client.cancel_watch(second_id)
        nothing_registered(client)
        await _until_server_watchers(server, 0)

    run(body, endpoints=[server.endpoint])


def _server_watchers_now(server: EtcdServer) -> int:
    import urllib.request

    with urllib.request.urlopen(f"http://{server.host}:{server.port}/metrics",
                                timeout=5) as reply:
        text = reply.read().decode()
    for line in text.splitlines():
        if line.startswith("etcd_debugging_mvcc_watcher_total "):
            return int(float(line.split()[1]))
    raise AssertionError("etcd reports no etcd_debugging_mvcc_watcher_total")


async def _server_watchers(server: EtcdServer) -> int:
    return await asyncio.get_running_loop().run_in_executor(None, _server_watchers_now,
                                                            server)


async def _until_server_watchers(server: EtcdServer, count: int) -> None:
    """Wait until etcd counts ``count`` watchers (a cancel takes effect shortly
    after it is sent)."""
    for _ in range(200):
        if await _server_watchers(server) == count:
            return
        await asyncio.sleep(0.05)
    assert await _server_watchers(server) == count


def test_thousand_watchers_shared_and_distinct(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        count = 1000
        shared = [Seen() for _ in range(count // 2)]
        shared_ids = [await client.add_watch_prefix_callback("/many/", s) for s in shared]
        distinct = await asyncio.gather(*(client.watch(f"/many/{i}")
                                          for i in range(count // 2)))
        assert len(engine_of(client)._watches) == 1 + count // 2
        await client.transaction([], [client.transactions.put(f"/many/{i}", str(i))
                                      for i in range(100)])
        for i, (events, _) in enumerate(distinct[:100]):
            (event,) = await take(events, 1)
            assert (event.key, event.value) == (f"/many/{i}".encode(), str(i).encode())
        for seen in shared:
            await seen.wait_for(lambda s: len(s.events) == 100)
            assert [e.key for e in seen.events] == [f"/many/{i}".encode()
                                                    for i in range(100)]
        for watch_id in shared_ids:
            await client.cancel_watch(watch_id)
        for _, cancel in distinct:
            await cancel()
        nothing_registered(client)

    run(body, endpoints=[server.endpoint])


def test_compacted_start_revision(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        first = (await client.put("/c", "1")).header.revision
        last = (await client.put("/c", "2")).header.revision
        await client.compact(last)
        seen = Seen()
        await client.add_watch_callback("/c", seen, start_revision=first)
        await seen.wait_for(lambda s: len(s.items) == 1)
        (error,) = seen.items
        assert isinstance(error, exceptions.RevisionCompactedError)
        assert error.compacted_revision == last
        events, cancel = await client.watch("/c", start_revision=first)
        with pytest.raises(exceptions.RevisionCompactedError):
            await events.__anext__()
        assert [e async for e in events] == []  # ended after its error
        await cancel()
        nothing_registered(client)

    run(body, endpoints=[server.endpoint])


def test_cancel_ends_a_blocked_iterator(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        events, cancel = await client.watch("/blocked")

        async def consume() -> List[Event]:
            return [e async for e in events]

        consumer = asyncio.ensure_future(consume())
        await asyncio.sleep(0.1)
        assert not consumer.done()
        await cancel()
        assert await asyncio.wait_for(consumer, 5) == []
        nothing_registered(client)

    run(body, endpoints=[server.endpoint])


def test_close_ends_iterators_and_tasks(server: EtcdServer) -> None:
    async def body() -> None:
        before = asyncio.all_tasks()
        client = etcd3.aio.client(host=server.host, port=server.port)
        events, _ = await client.watch("/closing")
        responses, _ = await client.watch_response("/closing")
        await client.add_watch_callback("/closing", lambda r: None)
        consumers = [asyncio.ensure_future(_drain(it)) for it in (events, responses)]
        await asyncio.sleep(0.05)
        await client.close()
        assert await asyncio.wait_for(asyncio.gather(*consumers), 5) == [[], []]
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("etcd3-")]
        # (gRPC's own task for the cancelled stream ends as its channel closes)
        await wait_until(lambda: asyncio.all_tasks() - before == set(), timeout=5)
        with pytest.raises(exceptions.ClientClosedError):
            await client.watch("/closing")
        with pytest.raises(exceptions.ClientClosedError):
            await client.add_watch_callback("/closing", lambda r: None)

    asyncio.run(asyncio.wait_for(body(), 30))


async def _drain(iterator: Any) -> List[Any]:
    return [item async for item in iterator]


def test_close_during_registration_raises_client_closed(server: EtcdServer) -> None:
    async def body() -> None:
        client = etcd3.aio.client(host=server.host, port=server.port)
        await client.put("/x", "1")  # connected
        # A create never confirmed: the watch is still registering when close comes.
        pending = asyncio.ensure_future(client.watch("/reg"))
        await asyncio.sleep(0)
        await client.close()
        with pytest.raises(exceptions.ClientClosedError):
            await asyncio.wait_for(pending, 5)

    asyncio.run(asyncio.wait_for(body(), 30))


def test_cancelling_a_task_mid_registration_leaves_nothing(quiet_server: EtcdServer
                                                          ) -> None:
    server = quiet_server

    async def body(client: Client) -> None:
        engine = engine_of(client)
        # Cancelled at every step of the registration: before the stream opens,
        # while etcd confirms, and while a joiner reads the store's revision.
        for delay_steps in range(8):
            task = asyncio.ensure_future(client.watch_prefix("/mid/"))
            for _ in range(delay_steps):
                await asyncio.sleep(0)
            task.cancel()
            try:
                events, cancel = await task
            except asyncio.CancelledError:
                pass
            else:  # registered before the cancel came: a whole watch
                await cancel()
            assert engine._subs == {} and engine._shared == {}
        first = Seen()
        first_id = await client.add_watch_prefix_callback("/mid/", first)
        for delay_steps in range(8):  # joiners of a confirmed shared watch
            task = asyncio.ensure_future(client.watch_prefix("/mid/"))
            for _ in range(delay_steps):
                await asyncio.sleep(0)
            task.cancel()
            try:
                _, cancel = await task
            except asyncio.CancelledError:
                pass
            else:
                await cancel()
            assert list(engine._subs) == [first_id] and len(engine._watches) == 1
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.watch_once("/mid/x"), 0.2)
        assert list(engine._subs) == [first_id]
        await client.put("/mid/x", "1")
        await first.wait_for(lambda s: len(s.events) == 1)
        await client.cancel_watch(first_id)
        await wait_until(lambda: engine._watches == {})
        await _until_server_watchers(server, 0)  # no watch was left on the server

    run(body, endpoints=[server.endpoint])


def test_bounded_iterator_overflows_alone(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        slow, cancel_slow = await client.watch_prefix("/bounded/", max_queue=3)
        fast, cancel_fast = await client.watch_prefix("/bounded/")  # shares it
        for i in range(10):
            await client.put(f"/bounded/{i}", str(i))
        assert [e.value for e in await take(fast, 10)] == [str(i).encode()
                                                           for i in range(10)]
        got = []
        with pytest.raises(exceptions.WatchOverflowError, match="3 responses behind"):
            async for event in slow:
                got.append(event.value)
        assert got == [b"0", b"1", b"2"]
        await client.put("/bounded/after", "x")
        assert (await fast.__anext__()).key == b"/bounded/after"
        await cancel_fast()
        await cancel_slow()
        with pytest.raises(ValueError, match="max_queue"):
            await client.watch("/bounded/x", max_queue=0)

    run(body, endpoints=[server.endpoint])


def test_bounded_callback_overflows_alone(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        release = asyncio.Event()
        slow_got: List[Any] = []
        fast = Seen()

        async def slow(response: Any) -> None:
            await release.wait()
            slow_got.append(response)

        slow_id = await client.add_watch_prefix_callback("/bcb/", slow, max_queue=3)
        fast_id = await client.add_watch_prefix_callback("/bcb/", fast)
        for i in range(10):
            await client.put(f"/bcb/{i}", str(i))
        # The dispatcher is stuck in the slow callback: the rest waits for it.
        await wait_until(lambda: len(engine_of(client)._subs) == 1)
        release.set()
        await fast.wait_for(lambda s: len(s.events) == 10)
        assert [e.value for e in fast.events] == [str(i).encode() for i in range(10)]
        await wait_until(lambda: bool(slow_got) and isinstance(slow_got[-1], Exception))
        *responses, error = slow_got
        assert isinstance(error, exceptions.WatchOverflowError) and "callback" in str(error)
        values = [e.value for r in responses for e in r.events]
        assert len(responses) == 3 and values == [b"0", b"1", b"2"]
        await client.put("/bcb/after", "x")
        await fast.wait_for(lambda s: len(s.events) == 11)
        assert len(slow_got) == 4
        await client.cancel_watch(slow_id)  # a no-op now
        await client.cancel_watch(fast_id)
        with pytest.raises(ValueError, match="max_queue"):
            await client.add_watch_callback("/bcb/x", fast, max_queue=True)

    run(body, endpoints=[server.endpoint])


def test_events_written_by_etcdctl_arrive(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        events, cancel = await client.watch_prefix("/ctl/", prev_kv=True)
        loop = asyncio.get_running_loop()
        for args in (("put", "/ctl/a", "1"), ("put", "/ctl/a", "2"), ("del", "/ctl/a")):
            await loop.run_in_executor(None, lambda a=args: server.etcdctl(*a))
        got = await take(events, 3)
        assert shape(got) == [("PutEvent", b"/ctl/a", b"1"), ("PutEvent", b"/ctl/a", b"2"),
                              ("DeleteEvent", b"/ctl/a", b"")]
        assert got[2].prev_value == b"2"
        await cancel()
        # And the other way: etcdctl watch sees what this client writes.
        proc = subprocess.Popen(
            [_etcdctl(), f"--endpoints={server.endpoint}", "watch", "/ctl/b"],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "ETCDCTL_API": "3"})
        try:
            await asyncio.sleep(0.5)
            await client.put("/ctl/b", "from-aio")
            line = await loop.run_in_executor(None, _lines, proc, 3)
            assert line == ["PUT", "/ctl/b", "from-aio"]
        finally:
            proc.kill()
            proc.wait()

    run(body, endpoints=[server.endpoint])


def _etcdctl() -> str:
    from etcd3.testing.binaries import find_etcd_binary

    return find_etcd_binary("etcdctl")


def _lines(proc: subprocess.Popen[str], count: int) -> List[str]:
    assert proc.stdout is not None
    return [proc.stdout.readline().strip() for _ in range(count)]


def test_asyncio_run_without_close_exits(server: EtcdServer) -> None:
    script = textwrap.dedent(f"""
        import asyncio, etcd3.aio

        async def main():
            client = etcd3.aio.client(host={server.host!r}, port={server.port})
            events, cancel = await client.watch_prefix("/exit/")
            await client.add_watch_callback("/exit/", lambda r: None)
            await client.put("/exit/a", "1")
            async for event in events:
                assert event.key == b"/exit/a"
                break
            async def consume():  # still waiting for events when main() returns
                async for event in events:
                    pass

            asyncio.get_running_loop().create_task(consume())
            await asyncio.sleep(0.05)
            print("LAST", flush=True)

        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "LAST"
    assert "Traceback" not in proc.stderr and "Task was destroyed" not in proc.stderr, \
        proc.stderr


def test_dropped_client_ends_its_watches(server: EtcdServer) -> None:
    async def body() -> None:
        client = etcd3.aio.client(host=server.host, port=server.port)
        events, _ = await client.watch("/dropped")
        engine = engine_of(client)
        tasks = list(engine._tasks)
        assert len(tasks) == 3 and not any(t.done() for t in tasks)
        del client
        gc.collect()  # the client is collected: its engines and channels are released
        assert await asyncio.wait_for(_drain(events), 5) == []
        await asyncio.wait_for(asyncio.wait(tasks), 5)
        assert engine.closed and engine._subs == {}

    asyncio.run(asyncio.wait_for(body(), 30))


def test_one_client_watches_in_successive_event_loops(server: EtcdServer) -> None:
    client = etcd3.aio.client(host=server.host, port=server.port)

    async def once(value: str) -> Tuple[bytes, AioWatchEngine]:
        events, cancel = await client.watch("/loops")
        await client.put("/loops", value)
        (event,) = await take(events, 1)
        await cancel()
        return event.value, engine_of(client)

    first, old_engine = asyncio.run(once("1"))
    second, new_engine = asyncio.run(once("2"))
    assert (first, second) == (b"1", b"2")
    assert new_engine is not old_engine and old_engine.closed

    async def close() -> None:
        await client.close()

    asyncio.run(close())


def test_aclose_of_an_iterator_cancels_its_watch(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        events, _ = await client.watch_prefix("/ac/")
        responses, _ = await client.watch_prefix_response("/ac/")
        await client.put("/ac/a", "1")
        assert [e.key for e in await take(events, 1)] == [b"/ac/a"]
        await events.aclose()
        await events.aclose()  # idempotent
        assert [e async for e in events] == []
        assert len(engine_of(client)._subs) == 1
        await responses.aclose()
        assert [r async for r in responses] == []
        nothing_registered(client)

    run(body, endpoints=[server.endpoint])


def test_an_iterator_dropped_unread_ends_its_watch(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        kept = Seen()
        await client.add_watch_prefix_callback("/gone/", kept)
        events, cancel = await client.watch_prefix("/gone/")
        engine = engine_of(client)
        assert len(engine._subs) == 2
        del events, cancel
        gc.collect()
        await wait_until(lambda: len(engine._subs) == 1)
        await client.put("/gone/a", "1")  # the other watch of the spec goes on
        await kept.wait_for(lambda s: len(s.events) == 1)

    run(body, endpoints=[server.endpoint])


def test_a_callback_cancelled_on_its_own_does_not_stop_the_others(
        server: EtcdServer, caplog: pytest.LogCaptureFixture) -> None:
    async def body(client: Client) -> None:
        seen = Seen()

        async def gives_up(response: Any) -> None:
            await seen(response)
            raise asyncio.CancelledError()  # e.g. it awaited something cancelled

        await client.add_watch_callback("/cc", gives_up)
        await client.put("/cc", "1")
        await client.put("/cc", "2")
        await seen.wait_for(lambda s: len(s.events) == 2)  # the dispatcher lives on

    with caplog.at_level(logging.ERROR, logger="etcd3"):
        run(body, endpoints=[server.endpoint])
    assert any("was cancelled; delivery continues" in r.getMessage()
               for r in caplog.records)


def test_asyncio_timeout_around_watch_calls(server: EtcdServer) -> None:
    async def body(client: Client) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):  # type: ignore[attr-defined]
                await client.watch_once("/to")  # nothing changes it
        events, cancel = await client.watch("/to")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):  # type: ignore[attr-defined]
                await events.__anext__()
        await client.put("/to", "1")  # the iterator is intact after the timeout
        assert [e.value for e in await take(events, 1)] == [b"1"]
        await cancel()
        nothing_registered(client)

    if sys.version_info >= (3, 11):
        run(body, endpoints=[server.endpoint])
    else:  # asyncio.timeout() is new in 3.11; wait_for is the same cancellation
        async def with_wait_for(client: Client) -> None:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.watch_once("/to"), 0.2)
            nothing_registered(client)

        run(with_wait_for, endpoints=[server.endpoint])
