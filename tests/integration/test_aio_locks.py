"""Locks of the asyncio client: the threaded client's scenarios awaited, interop with
the threaded client's locks and with ``etcdctl lock``, and cancellation safety."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from typing import Any, List

import pytest
from _aio_concurrency_support import aio_client, keys, run, wait_until
from _concurrency_support import etcdctl, readline

import etcd3.aio
from etcd3 import exceptions
from etcd3.aio.locks import Lock
from etcd3.testing import EtcdCluster, EtcdServer

# -- basics ---------------------------------------------------------------------------


def test_acquire_release_and_go_key_layout(etcd_client: Any,
                                           etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            lock = client.lock("job", ttl=5)
            assert isinstance(lock, Lock)
            assert lock.name == "job" and lock.key == lock.prefix_key == "/locks/job"
            assert not await lock.is_acquired()
            assert await lock.acquire() is True
            assert await lock.is_acquired()
            assert lock.owner_key == b"/locks/job/%x" % lock.lease.id
            assert await keys(client, "/locks/job/") == [lock.owner_key]
            assert (await client.get_lease_info(lock.lease.id)).TTL > 0
            assert lock.lease.kept_alive
            lease = lock.lease
            assert await lock.release() is True
            assert not await lock.is_acquired()
            assert await keys(client, "/locks/") == []
            assert (await client.get_lease_info(lease.id)).TTL == -1  # revoked

    run(body())


def test_async_with_and_custom_prefix(etcd_client: Any, etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            async with client.lock("ctx", prefix="/mine") as lock:
                assert lock.prefix_key == "/mine/ctx" and await lock.is_acquired()
                assert lock.key.startswith("/mine/ctx/")
                assert (await client.get(lock.key))[0] == b""
            assert not await lock.is_acquired()
            assert await keys(client, "/mine/") == []

    run(body())


def test_enter_raises_when_not_acquired(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            holder = client.lock("busy")
            assert await holder.acquire()
            with pytest.raises(exceptions.LockError, match="could not acquire"):
                async with client.lock("busy", timeout=0.2):
                    pytest.fail("entered a lock held elsewhere")
            assert await holder.is_acquired()
            assert await holder.release()

    run(body())


def test_non_blocking_and_timeout_leave_nothing_behind(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            holder = client.lock("nb", ttl=5)
            assert await holder.acquire()
            other = client.lock("nb", ttl=5)
            assert await other.acquire(timeout=0) is False
            started = time.monotonic()
            assert await other.acquire(timeout=0.5) is False
            assert time.monotonic() - started >= 0.5
            assert not await other.is_acquired() and other.lease is None
            assert await keys(client, "/locks/nb/") == [holder.owner_key]
            assert await holder.release()
            assert await other.acquire(timeout=0) is True
            assert await other.release()

    run(body())


def test_release_when_not_held_and_refresh(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            lock = client.lock("never", ttl=5)
            assert await lock.release() is False
            with pytest.raises(ValueError, match="acquired"):
                await lock.refresh()
            assert await lock.acquire()
            revision = lock.revision
            assert (await lock.refresh())[0].TTL == 5
            # not re-entrant: acquiring a held lock changes nothing
            assert await lock.acquire(timeout=0) is False
            assert await lock.acquire(None) is True
            assert lock.revision == revision
            assert len(await keys(client, "/locks/never/")) == 1
            with pytest.raises(exceptions.LockError, match="already held"):
                async with lock:
                    pass
            assert await lock.is_acquired()
            assert await lock.release() is True
            assert await lock.release() is False

    run(body())


@pytest.mark.parametrize("kwargs, error", [
    ({"name": ""}, ValueError),
    ({"name": b""}, ValueError),
    ({"name": "x", "ttl": 0}, ValueError),
    ({"name": "x", "timeout": -1}, ValueError),
    ({"name": "x", "ttl": "60"}, TypeError),
    ({"name": 5}, TypeError),
])
def test_bad_input(etcd_server: EtcdServer, kwargs: Any, error: type) -> None:
    client = aio_client(etcd_server)
    with pytest.raises(error):
        client.lock(**kwargs)

    async def negative() -> None:
        async with client:
            with pytest.raises(ValueError):
                await client.lock("neg").acquire(timeout=-1)

    run(negative())


# -- ownership ------------------------------------------------------------------------


def test_is_owner_fences_writes(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            lock = client.lock("fence", ttl=5)
            with pytest.raises(exceptions.LockError):
                lock.is_owner()
            assert await lock.acquire()
            put = client.transactions.put
            assert (await client.transaction(compare=[lock.is_owner()],
                                             success=[put("/guarded", "1")]))[0]
            stale, old_revision = lock.is_owner(), lock.revision
            assert await lock.release()
            successor = client.lock("fence", ttl=5)
            assert await successor.acquire()
            assert successor.revision > old_revision  # the fencing token grows
            assert not (await client.transaction(compare=[stale],
                                                 success=[put("/guarded", "2")]))[0]
            assert (await client.get("/guarded"))[0] == b"1"
            assert await successor.release()

    run(body())


@pytest.mark.parametrize("coroutine", [False, True], ids=["plain", "coroutine"])
def test_lease_expiry_while_held_is_reported(etcd_client: Any, etcd_server: EtcdServer,
                                             coroutine: bool) -> None:
    lost: List[Lock] = []

    async def on_lost_async(lock: Lock) -> None:
        await asyncio.sleep(0)
        lost.append(lock)

    async def body() -> None:
        async with aio_client(etcd_server) as client:
            lock = client.lock("expiring", ttl=5,
                               on_lost=on_lost_async if coroutine else lost.append)
            assert await lock.acquire()
            etcd_client.revoke_lease(lock.lease.id)  # as if the lease ran out
            await wait_until(lambda: bool(lost))
            assert lost == [lock] and lock.lost
            assert await lock.is_acquired() is False
            assert "lost" in repr(lock)
            assert await lock.release() is False  # nothing of ours left to delete
            waiter = client.lock("expiring")
            assert await waiter.acquire(timeout=0)
            assert await waiter.release()

    run(body())


def test_release_never_deletes_a_newer_holders_key(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            old = client.lock("gen", ttl=5)
            assert await old.acquire()
            await client.revoke_lease(old.lease.id)
            new = client.lock("gen", ttl=5)
            assert await new.acquire(timeout=0)
            assert await old.release() is False
            assert await new.is_acquired()
            assert await new.release()

    run(body())


def test_waiters_are_served_in_fifo_order(etcd_server: EtcdServer) -> None:
    async def body() -> List[str]:
        async with aio_client(etcd_server) as client:
            holder = client.lock("fifo", ttl=5)
            assert await holder.acquire()
            order: List[str] = []

            async def wait_turn(lock: Lock, name: str) -> None:
                if await lock.acquire(timeout=20):
                    order.append(name)
                    await asyncio.sleep(0.05)
                    await lock.release()

            tasks = []
            for index, name in enumerate("BCD"):
                tasks.append(asyncio.ensure_future(
                    wait_turn(client.lock("fifo", ttl=5), name)))
                queued = index + 2

                async def lined_up(queued: int = queued) -> bool:
                    return len(await keys(client, "/locks/fifo/")) == queued

                await wait_until(lined_up)
            assert order == []
            assert await holder.release()
            await asyncio.gather(*tasks)
            return order

    assert run(body()) == ["B", "C", "D"]


def test_tasks_and_threads_increment_a_counter_exactly(etcd_client: Any,
                                                       etcd_server: EtcdServer) -> None:
    etcd_client.put("/counter", "0")

    def threaded(rounds: int) -> None:
        for _ in range(rounds):
            with etcd_client.lock("counter", ttl=5, timeout=60):
                value, _ = etcd_client.get("/counter")
                etcd_client.put("/counter", str(int(value) + 1))

    async def task(client: Any, rounds: int) -> None:
        for _ in range(rounds):
            async with client.lock("counter", ttl=5, timeout=60):
                value, _ = await client.get("/counter")
                await asyncio.sleep(0)  # let the others run while we hold it
                await client.put("/counter", str(int(value) + 1))

    async def body() -> None:
        async with aio_client(etcd_server) as client:
            await asyncio.gather(*(task(client, 15) for _ in range(4)))

    thread = threading.Thread(target=threaded, args=(20,))
    thread.start()
    try:
        run(body())
    finally:
        thread.join(120)
    assert etcd_client.get("/counter")[0] == b"80"
    assert [m.key for _, m in etcd_client.get_prefix("/locks/")] == []


# -- the threaded client's locks --------------------------------------------------------


def test_threaded_holder_excludes_asyncio_lock(etcd_client: Any,
                                               etcd_server: EtcdServer) -> None:
    held = etcd_client.lock("mixed", ttl=5)
    assert held.acquire()

    async def body() -> None:
        async with aio_client(etcd_server) as client:
            lock = client.lock("mixed", ttl=5)
            assert await lock.acquire(timeout=0) is False
            waiting = asyncio.ensure_future(lock.acquire(timeout=10))

            async def queued() -> bool:
                return len(await keys(client, "/locks/mixed/")) == 2

            await wait_until(queued)
            await asyncio.sleep(0.2)
            assert not waiting.done()  # still waiting behind the threaded holder
            assert await asyncio.to_thread(held.release)
            assert await waiting is True
            assert not await asyncio.to_thread(held.is_acquired)
            assert await lock.release()

    run(body())


def test_asyncio_holder_excludes_threaded_lock(etcd_client: Any,
                                               etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            async with client.lock("mixed2", ttl=5) as lock:
                threaded = etcd_client.lock("mixed2", ttl=5)
                assert await asyncio.to_thread(threaded.acquire, 0) is False
                waiting = asyncio.ensure_future(asyncio.to_thread(threaded.acquire, 10))

                async def queued() -> bool:
                    return len(await keys(client, "/locks/mixed2/")) == 2

                await wait_until(queued)
                await asyncio.sleep(0.2)
                assert not waiting.done()
                assert await lock.is_acquired()
            assert await waiting is True
            assert await asyncio.to_thread(threaded.release)

    run(body())


# -- etcdctl interop ---------------------------------------------------------------


def test_asyncio_holder_excludes_etcdctl_lock(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            lock = client.lock("shared", ttl=5)
            assert await lock.acquire()
            proc = etcdctl(etcd_server, "lock", "/locks/shared", "echo", "etcdctl-got-it")
            try:
                async def queued() -> bool:
                    return len(await keys(client, "/locks/shared/")) == 2

                await wait_until(queued)
                await asyncio.sleep(0.3)
                assert proc.poll() is None  # still waiting behind us
                assert await lock.release()
                out, err = await asyncio.to_thread(proc.communicate, timeout=10)
                assert proc.returncode == 0, err
                assert "etcdctl-got-it" in out
            finally:
                proc.kill()
                proc.wait()

    run(body())


def test_etcdctl_holder_excludes_asyncio_lock(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            proc = etcdctl(etcd_server, "lock", "/locks/cli")
            try:
                held_key = await asyncio.to_thread(readline, proc)
                assert held_key.startswith("/locks/cli/")
                lock = client.lock("cli", ttl=5)
                assert await lock.acquire(timeout=0) is False
                assert await lock.acquire(timeout=0.3) is False
                proc.send_signal(signal.SIGINT)  # etcdctl unlocks on interrupt
                assert await lock.acquire(timeout=10) is True
                assert lock.owner_key.startswith(b"/locks/cli/")
                assert await lock.release()
            finally:
                proc.kill()
                proc.communicate()

    run(body())


# -- cancellation -----------------------------------------------------------------------


def test_cancelled_waiter_leaves_no_key(etcd_client: Any, etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            holder = client.lock("cancel", ttl=5)
            assert await holder.acquire()
            waiter = client.lock("cancel", ttl=5)
            task = asyncio.ensure_future(waiter.acquire(timeout=None))

            async def queued() -> bool:
                return len(await keys(client, "/locks/cancel/")) == 2

            await wait_until(queued)
            lease = waiter.lease
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await keys(client, "/locks/cancel/") == [holder.owner_key]
            assert waiter.lease is None and waiter.owner_key is None
            assert (await client.get_lease_info(lease.id)).TTL == -1
            # asyncio.timeout() around acquire: TimeoutError, nothing left either
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await waiter.acquire(timeout=None)
            assert await keys(client, "/locks/cancel/") == [holder.owner_key]
            assert await holder.release()

    run(body())


def test_cancellation_at_any_point_leaves_no_key(etcd_client: Any,
                                                 etcd_server: EtcdServer) -> None:
    async def body() -> int:
        cancelled = 0
        async with aio_client(etcd_server) as client:
            for step in range(30):
                lock = client.lock("anywhere", ttl=5)
                task = asyncio.ensure_future(lock.acquire())
                await asyncio.sleep(step * 0.001)
                task.cancel()
                try:
                    held = await task
                except asyncio.CancelledError:
                    cancelled += 1
                    assert lock.lease is None and lock.owner_key is None
                else:
                    assert held and await lock.release()
                assert await keys(client, "/locks/anywhere/") == []
        return cancelled

    assert run(body()) > 0


def test_cancelled_body_releases(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            entered = asyncio.Event()
            locks: List[Lock] = []

            async def worker() -> None:
                async with client.lock("body", ttl=5) as lock:
                    locks.append(lock)
                    entered.set()
                    await asyncio.sleep(30)

            task = asyncio.ensure_future(worker())
            await entered.wait()
            assert len(await keys(client, "/locks/body/")) == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await keys(client, "/locks/body/") == []
            assert locks[0].lease is None

    run(body())


_FORGETFUL_HOLDER = """
import asyncio, sys, etcd3.aio
async def main():
    client = etcd3.aio.client(host=sys.argv[1], port=int(sys.argv[2]))
    lock = client.lock("forgotten", ttl=5)
    assert await lock.acquire()
    waiter = asyncio.ensure_future(client.lock("forgotten", ttl=5).acquire(timeout=None))
    await asyncio.sleep(0.5)
    print("leaving", flush=True)
asyncio.run(main())
print("exited", flush=True)
"""


def test_exit_without_close_is_prompt(etcd_server: EtcdServer) -> None:
    proc = subprocess.run([sys.executable, "-c", _FORGETFUL_HOLDER, etcd_server.host,
                           str(etcd_server.port)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["leaving", "exited"]
    assert "Traceback" not in proc.stderr


def test_a_frozen_member_makes_the_holder_learn_it_lost_the_lock(
        etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server, timeout=2) as client:
            lost = asyncio.Event()
            lock = client.lock("frozen", ttl=2, on_lost=lambda _: lost.set())
            assert await lock.acquire()
            etcd_server.pause()
            try:
                await asyncio.wait_for(lost.wait(), 10)
                assert lock.lost
                # known locally: no need to ask the (frozen) server
                assert await lock.is_acquired() is False
            finally:
                etcd_server.resume()
            await lock.release()
            assert await keys(client, "/locks/frozen/") == []

    run(body())


def test_holder_keeps_the_lock_when_its_stream_member_dies() -> None:
    with EtcdCluster(3) as cluster:
        async def body() -> None:
            async with etcd3.aio.client(endpoints=cluster.endpoints, timeout=10) as client:
                lost: List[Lock] = []
                lock = client.lock("survivor", ttl=3, on_lost=lost.append)
                assert await lock.acquire()
                engine = client._keepalive
                assert engine is not None
                await wait_until(lambda: engine.stream_endpoint is not None)
                member = next(m for m in cluster.members
                              if m.endpoint == engine.stream_endpoint)
                member.kill()
                await asyncio.sleep(7)  # more than twice the TTL
                assert lost == [] and not lock.lost
                assert await lock.is_acquired()
                other = client.lock("survivor", ttl=3)
                assert await other.acquire(timeout=0) is False
                assert await lock.release()
                assert await other.acquire(timeout=0) is True
                assert await other.release()

        run(body())


def test_cancelled_body_stays_cancelled_when_the_release_fails(
        etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server, timeout=1) as client:
            entered = asyncio.Event()

            async def worker() -> None:
                async with client.lock("unreleasable", ttl=2):
                    entered.set()
                    await asyncio.sleep(30)

            task = asyncio.ensure_future(worker())
            await entered.wait()
            etcd_server.pause()
            try:
                task.cancel()
                # the release times out, but the cancellation is what propagates
                with pytest.raises(asyncio.CancelledError):
                    await task
            finally:
                etcd_server.resume()

            async def expired() -> bool:  # no longer kept alive: gone after its TTL
                return await keys(client, "/locks/unreleasable/") == []

            await wait_until(expired, timeout=15)

    run(body())
