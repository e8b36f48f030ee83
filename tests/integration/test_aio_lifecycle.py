"""etcd3.aio and event loops, cancellation, timeouts, closing and process exit.

- A client used in one ``asyncio.run()`` works in the next one (it starts over with
  new connections); used from two loops running at once it raises RuntimeError.
- A call cancelled mid-flight raises CancelledError (a write's carries the note
  that it may or may not have been applied); ``asyncio.timeout()`` / ``wait_for``
  around a call raise TimeoutError; the client keeps working afterwards.
- A client dropped without close() is collected and its channels are closed.
- A script that forgets ``await client.close()`` exits promptly.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
import weakref
from typing import Any, Awaitable, Iterator, List, TypeVar

import pytest

import etcd3.aio
from etcd3 import exceptions
from etcd3.testing import EtcdServer

UNCERTAIN = "may or may not have been applied"
#: A bound (not a timed assertion): a script still running this long has hung.
EXIT_BOUND = 10.0

T = TypeVar("T")


@pytest.fixture
def server(etcd_server: EtcdServer) -> Iterator[EtcdServer]:
    """The session server, resumed after a test that froze it."""
    try:
        yield etcd_server
    finally:
        if etcd_server.paused:
            etcd_server.resume()


def _client(server: EtcdServer, **kwargs: Any) -> etcd3.aio.Etcd3Client:
    return etcd3.aio.client(host=server.host, port=server.port, **kwargs)


async def _within(seconds: float, awaitable: Awaitable[T]) -> T:
    """``async with asyncio.timeout(seconds)`` (``wait_for`` before Python 3.11)."""
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None:
        return await asyncio.wait_for(awaitable, seconds)
    async with timeout(seconds):
        return await awaitable


# -- event loops --------------------------------------------------------------------


def test_etcd_aio_client_fixture_starts_empty(
        request: pytest.FixtureRequest, etcd_server: EtcdServer) -> None:
    etcd_server.etcdctl("put", "leftover", "x")
    client = request.getfixturevalue("etcd_aio_client")
    assert isinstance(client, etcd3.aio.Etcd3Client)

    async def body() -> Any:
        return await client.get("leftover")

    assert asyncio.run(body()) == (None, None)


def test_fixture_client_across_loops(etcd_aio_client: etcd3.aio.Etcd3Client) -> None:
    async def write() -> int:
        return int((await etcd_aio_client.put("/loops/a", "1")).header.revision)

    async def read() -> Any:
        return await etcd_aio_client.get("/loops/a")

    revision = asyncio.run(write())
    for _ in range(3):  # each asyncio.run is a new loop: the client starts over
        value, meta = asyncio.run(read())
        assert value == b"1" and meta.mod_revision == revision
    assert not etcd_aio_client.closed  # the fixture closes it after the test


def test_watches_and_leases_start_over_in_a_new_loop(
        etcd_aio_client: etcd3.aio.Etcd3Client) -> None:
    client = etcd_aio_client

    async def first() -> None:
        events, _cancel = await client.watch_prefix("/loops/w/")
        await client.lease(30)  # a keepalive stream on this loop
        await client.put("/loops/w/1", "1")
        async for event in events:
            assert event.value == b"1"
            break
        # the loop ends with the watch and the keepalive running

    async def second() -> None:
        events, cancel = await client.watch_prefix("/loops/w/")
        lease = await client.lease(30)
        await client.put("/loops/w/2", "2", lease=lease)
        async for event in events:
            assert (event.key, event.value) == (b"/loops/w/2", b"2")
            break
        await cancel()
        assert await lease.remaining_ttl > 0
        await lease.revoke()
        assert (await client.get("/loops/w/2")) == (None, None)
        await client.close()

    asyncio.run(first())
    asyncio.run(second())
    assert client.closed


def test_two_running_loops_at_once_raise(server: EtcdServer) -> None:
    client = _client(server, timeout=5)
    first_bound = threading.Event()
    release = threading.Event()
    errors: List[BaseException] = []

    async def hold_first_loop() -> None:
        await client.put("/loops/b", "1")
        first_bound.set()
        while not release.is_set():  # keeps this loop running
            await asyncio.sleep(0.01)
        await client.close()

    def first() -> None:
        try:
            asyncio.run(hold_first_loop())
        except BaseException as error:  # reported below
            errors.append(error)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_bound.wait(10)

        async def second() -> None:
            with pytest.raises(RuntimeError, match="another event loop"):
                await client.get("/loops/b")

        asyncio.run(second())
    finally:
        release.set()
        thread.join(10)
    assert not thread.is_alive()
    assert errors == []
    assert client.closed


def test_no_running_loop_is_a_clear_error(server: EtcdServer) -> None:
    client = _client(server)
    with pytest.raises(RuntimeError):
        asyncio.get_event_loop_policy().new_event_loop().run_until_complete(
            _no_loop_call(client))
    asyncio.run(client.close())


async def _no_loop_call(client: etcd3.aio.Etcd3Client) -> None:
    # A coroutine is only created here and driven from a thread without a loop.
    coro = client.get("/x")
    result: List[BaseException] = []

    def drive() -> None:
        try:
            coro.send(None)
        except BaseException as error:
            result.append(error)

    thread = threading.Thread(target=drive)
    thread.start()
    thread.join(10)
    coro.close()
    raise result[0]


# -- cancellation and timeouts ------------------------------------------------------


def test_cancelled_put_says_it_may_have_been_applied(server: EtcdServer) -> None:
    async def body() -> None:
        async with _client(server, timeout=30) as client:
            await client.put("/cancel/k", "before")
            server.pause()  # the connection stays open; nothing answers
            put = asyncio.create_task(client.put("/cancel/k", "during"))
            read = asyncio.create_task(client.get("/cancel/k"))
            await asyncio.sleep(0.3)  # both are on the wire
            put.cancel()
            read.cancel()
            with pytest.raises(asyncio.CancelledError) as put_info:
                await put
            with pytest.raises(asyncio.CancelledError) as read_info:
                await read
            if sys.version_info >= (3, 11):
                notes = getattr(put_info.value, "__notes__", [])
                assert any(UNCERTAIN in note and "/cancel/k" in note for note in notes), \
                    notes
                assert not getattr(read_info.value, "__notes__", [])
            server.resume()
            # Nothing is left behind: the client works on.
            assert (await client.get("/cancel/k"))[0] in (b"before", b"during")
            await client.put("/cancel/k", "after")
            assert (await client.get("/cancel/k"))[0] == b"after"

    asyncio.run(body())


def test_random_cancellations_under_load_leave_nothing_behind(server: EtcdServer) -> None:
    """300 writes, a third of them cancelled at random points (before sending,
    in flight, after the answer): each acknowledged write is there once, no
    cancelled one twice, and the client and its loop are left clean."""
    import random

    async def body() -> None:
        rnd = random.Random(7)
        async with _client(server, timeout=10) as client:
            await client.put("/storm/warm", "v")
            baseline = {t for t in asyncio.all_tasks()}
            acknowledged: List[str] = []
            cancelled: List[str] = []

            async def write(i: int) -> None:
                key = f"/storm/{i:03d}"
                try:
                    await client.put(key, "v")
                    await client.get(key)
                except asyncio.CancelledError:
                    cancelled.append(key)
                    raise
                acknowledged.append(key)

            tasks = [asyncio.create_task(write(i)) for i in range(300)]
            for task in rnd.sample(tasks, 100):
                await asyncio.sleep(rnd.choice((0, 0, 0.001, 0.003)))
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            assert len(acknowledged) + len(cancelled) == 300 and len(cancelled) > 0
            versions = {meta.key.decode(): meta.version
                        async for _, meta in client.get_prefix("/storm/")}
            assert all(versions.get(key) == 1 for key in acknowledged)
            assert all(versions.get(key, 0) <= 1 for key in cancelled)
            # Still working, and nothing of the storm keeps running.
            await client.put("/storm/after", "v")
            assert (await client.get("/storm/after"))[0] == b"v"
            for _ in range(50):
                left = {t for t in asyncio.all_tasks() if not t.done()} - baseline
                left.discard(asyncio.current_task())  # type: ignore[arg-type]
                if not left:
                    break
                await asyncio.sleep(0.02)
            assert not left, left

    asyncio.run(body())


def test_asyncio_timeout_around_calls(server: EtcdServer) -> None:
    async def body() -> None:
        async with _client(server, timeout=30) as client:
            await client.put("/timeout/k", "v")
            server.pause()
            with pytest.raises(asyncio.TimeoutError) as put_info:
                await _within(0.5, client.put("/timeout/k", "w"))
            with pytest.raises(asyncio.TimeoutError):
                await _within(0.5, client.get("/timeout/k"))
            with pytest.raises(asyncio.TimeoutError):
                await _within(0.5, _drain(client.get_prefix("/timeout/")))
            if sys.version_info >= (3, 11):
                cancelled = put_info.value.__cause__ or put_info.value.__context__
                assert isinstance(cancelled, asyncio.CancelledError)
                assert any(UNCERTAIN in n for n in getattr(cancelled, "__notes__", []))
            server.resume()
            assert (await client.get("/timeout/k"))[0] in (b"v", b"w")
            # The client's own deadline is a typed error, not a TimeoutError.
            server.pause()
            with pytest.raises(exceptions.ConnectionTimeoutError):
                await client.get("/timeout/k", timeout=0.5)
            server.resume()
            assert (await client.get("/timeout/k"))[0] in (b"v", b"w")

    asyncio.run(body())


async def _drain(iterator: Any) -> List[Any]:
    return [item async for item in iterator]


# -- closing ------------------------------------------------------------------------


def test_close_is_idempotent_and_later_calls_raise(server: EtcdServer) -> None:
    async def body() -> None:
        client = _client(server, timeout=5)
        async with client:
            await client.put("/close/k", "v")
        assert client.closed
        await client.close()
        with pytest.raises(exceptions.ClientClosedError):
            await client.get("/close/k")
        with pytest.raises(exceptions.ClientClosedError):
            await _drain(client.get_prefix("/close/"))
        never_used = _client(server)
        await never_used.close()
        assert never_used.closed

    asyncio.run(body())


def test_close_fails_calls_in_flight(server: EtcdServer) -> None:
    async def body() -> None:
        client = _client(server, timeout=30)
        await client.put("/close/f", "v")
        server.pause()
        try:
            call = asyncio.create_task(client.get("/close/f"))
            await asyncio.sleep(0.2)
            await _within(10, client.close())
            # Before Python 3.11 a task cannot tell whether it is being cancelled,
            # so the call passes grpc's CancelledError on.
            expected: Any = (exceptions.ClientClosedError if sys.version_info >= (3, 11)
                             else (exceptions.ClientClosedError, asyncio.CancelledError))
            with pytest.raises(expected):
                await _within(10, call)
        finally:
            server.resume()

    asyncio.run(body())


def test_dropped_client_is_collected_and_its_channels_closed(server: EtcdServer) -> None:
    async def body() -> None:
        client = _client(server, timeout=5)
        await client.put("/drop/k", "v")
        await asyncio.gather(*(client.get("/drop/k") for _ in range(10)))
        await client.add_watch_callback("/drop/k", print)  # a stream and its tasks
        tasks_before = len(asyncio.all_tasks())
        channels = [ch for state in client._transport.pool.states for ch in state.channels]
        assert channels and not any(_closed(ch) for ch in channels)
        dropped = weakref.ref(client)
        del client
        for _ in range(100):
            gc.collect()
            if dropped() is None and all(_closed(ch) for ch in channels):
                break
            await asyncio.sleep(0.05)
        assert dropped() is None, gc.get_referrers(dropped())
        assert all(_closed(ch) for ch in channels)
        for _ in range(100):  # the watch engine's tasks end
            if len(asyncio.all_tasks()) < tasks_before:
                break
            await asyncio.sleep(0.05)
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(body())


def _closed(channel: Any) -> bool:
    return bool(channel._channel.closed())  # grpc.aio's Cython channel


# -- process exit -------------------------------------------------------------------

_SCRIPT_PRELUDE = """
import asyncio, os, sys
import etcd3.aio
endpoint = os.environ["TEST_ENDPOINT"]
"""


def _run_script(body: str, server: EtcdServer) -> subprocess.CompletedProcess:
    script = _SCRIPT_PRELUDE + textwrap.dedent(body)
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True,
                              text=True, timeout=EXIT_BOUND,
                              env={**os.environ, "TEST_ENDPOINT": server.endpoint})
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the script did not exit within {EXIT_BOUND} s: {hung.stderr!r}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("LAST"), (done.stdout, done.stderr)
    return done


def test_exit_without_close(server: EtcdServer) -> None:
    done = _run_script("""
        async def main():
            client = etcd3.aio.client(endpoints=[endpoint], timeout=5)
            await client.put("/exit/k", "v")
            assert (await client.get("/exit/k"))[0] == b"v"
            await asyncio.gather(*(client.get("/exit/k") for _ in range(20)))
            events, cancel = await client.watch_prefix("/exit/")
            await client.add_watch_callback("/exit/k", print)
            await client.put("/exit/k", "w")
            async for event in events:
                break
            lease = await client.lease(10)  # kept alive by a keepalive stream
            await client.put("/exit/leased", "v", lease=lease)
            lock = client.lock("exit", ttl=10)
            assert await lock.acquire(timeout=5)
            print("LAST", flush=True)
            # no close(), no cancel(), no release(): a watch stream, a keepalive
            # stream and their tasks are running

        asyncio.run(main())
    """, server)
    assert "Traceback" not in done.stderr, done.stderr


def test_exit_with_calls_in_flight_and_the_client_alive(server: EtcdServer) -> None:
    # A task still calling when the main coroutine returns: asyncio.run cancels it,
    # the client (kept alive by a module global) is never closed.
    done = _run_script("""
        client = etcd3.aio.client(endpoints=[endpoint], timeout=30)

        async def busy():
            while True:
                await client.put("/exit/busy", "v")
                await client.get("/exit/busy")

        async def main():
            global task
            task = asyncio.create_task(busy())
            await asyncio.sleep(0.3)
            print("LAST", flush=True)

        asyncio.run(main())
    """, server)
    assert "Traceback" not in done.stderr, done.stderr


def test_exit_with_a_member_down(server: EtcdServer) -> None:
    # Every endpoint unreachable: calls are retrying when the script ends.
    _run_script("""
        async def main():
            client = etcd3.aio.client(endpoints=["127.0.0.1:1", endpoint], timeout=30)
            await client.put("/exit/down", "v")
            call = asyncio.create_task(client.get("/exit/down"))
            await asyncio.sleep(0.1)
            print("LAST", flush=True)

        asyncio.run(main())
    """, server)
