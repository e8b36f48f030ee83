"""Leases of the asyncio client: unary calls, the single keepalive stream task,
expiry reports (plain and coroutine callbacks), failover, close and process exit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any, List

import pytest
from _aio_concurrency_support import aio_client, run, task_names, wait_until

import etcd3.aio
from etcd3 import exceptions
from etcd3.aio.leases import Lease
from etcd3.testing import EtcdCluster, EtcdServer

_KEEPALIVE_TASKS = ["etcd3-lease-keepalive", "etcd3-lease-keepalive-reader"]


def test_grant_inspect_refresh_revoke(etcd_client: Any, etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            lease = await client.lease(10)
            assert isinstance(lease, Lease) and lease.ttl == 10
            await client.put("/leased", "v", lease=lease)
            assert await lease.granted_ttl == 10
            assert 0 < await lease.remaining_ttl <= 10
            assert await lease.keys == [b"/leased"]
            assert (await lease.refresh())[0].TTL == 10
            assert lease.id in [item.id for item in await client.leases()]
            info = await client.get_lease_info(lease.id)
            assert info.ID == lease.id and info.keys == [b"/leased"]
            assert not lease.expired and not lease.kept_alive
            assert await lease.revoke() is True
            assert lease.expired
            assert await client.get("/leased") == (None, None)
            assert await lease.remaining_ttl == -1
            with pytest.raises(exceptions.LeaseNotFoundError):
                await lease.refresh()
            with pytest.raises(exceptions.LeaseNotFoundError):
                await lease.revoke()
            with pytest.raises(exceptions.LeaseNotFoundError):
                await client.refresh_lease(lease.id)

    run(body())
    assert etcd_client.get("/leased") == (None, None)


@pytest.mark.parametrize("ttl, error", [(0, ValueError), (-5, ValueError),
                                        (1.5, TypeError), (True, TypeError)])
def test_bad_ttl(etcd_server: EtcdServer, ttl: Any, error: type) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            with pytest.raises(error):
                await client.lease(ttl)

    run(body())


def test_async_with_revokes(etcd_client: Any, etcd_server: EtcdServer) -> None:
    async def body() -> Lease:
        async with aio_client(etcd_server) as client:
            async with await client.lease(10, keep_alive=True) as lease:
                await client.put("/ctx", "v", lease=lease)
                assert lease.kept_alive
            assert not lease.kept_alive and lease.expired
            return lease

    lease = run(body())
    assert etcd_client.get("/ctx") == (None, None)
    assert etcd_client.get_lease_info(lease.id).TTL == -1


def test_keepalive_outlives_the_ttl_on_one_stream(etcd_client: Any,
                                                  etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            leases = [await client.lease(1, keep_alive=True) for _ in range(3)]
            await client.put("/kept", "v", lease=leases[0])
            await asyncio.sleep(2.5)
            assert (await client.get("/kept"))[0] == b"v"
            for lease in leases:
                assert await lease.remaining_ttl >= 0 and not lease.expired
                assert client.lease_alive_until(lease.id) is not None
            # one scheduler task and one stream reader serve every lease
            assert task_names("etcd3-lease") == _KEEPALIVE_TASKS
            for lease in leases:
                await lease.revoke()
            assert client.lease_alive_until(leases[0].id) is None

    run(body())


def test_stop_keep_alive_lets_it_expire(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            lease = await client.lease(1)
            assert lease.keep_alive() is lease and lease.kept_alive
            assert lease.stop_keep_alive() is True
            assert lease.stop_keep_alive() is False

            async def gone() -> bool:
                return await lease.remaining_ttl == -1

            await wait_until(gone, timeout=5)
            assert not lease.expired  # we stopped it ourselves: nothing to report

    run(body())


@pytest.mark.parametrize("coroutine", [False, True], ids=["plain", "coroutine"])
def test_lease_gone_on_the_server_is_reported(etcd_client: Any, etcd_server: EtcdServer,
                                              coroutine: bool) -> None:
    reported: List[Lease] = []

    async def on_expired_async(lease: Lease) -> None:
        await asyncio.sleep(0)
        reported.append(lease)

    async def body() -> None:
        async with aio_client(etcd_server) as client:
            callback = on_expired_async if coroutine else reported.append
            lease = await client.lease(3, keep_alive=True, on_expired=callback)
            etcd_client.revoke_lease(lease.id)  # another client revokes it
            await wait_until(lambda: lease.expired and bool(reported), timeout=5)
            assert reported == [lease]
            assert not lease.kept_alive

    run(body())


def test_no_reply_for_a_whole_ttl_is_reported(etcd_client: Any,
                                              etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server, timeout=2) as client:
            reported = asyncio.Event()
            lease = await client.lease(2, keep_alive=True,
                                       on_expired=lambda _: reported.set())
            await asyncio.sleep(0.3)
            etcd_server.pause()
            try:
                await asyncio.wait_for(reported.wait(), 5)
                assert lease.expired and not lease.kept_alive
            finally:
                etcd_server.resume()

    run(body())


def test_close_stops_the_keepalive_tasks(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        client = aio_client(etcd_server)
        lease = await client.lease(5, keep_alive=True)
        await wait_until(lambda: task_names("etcd3-lease") == _KEEPALIVE_TASKS)
        await client.close()
        assert task_names("etcd3-lease") == []
        with pytest.raises(exceptions.ClientClosedError):
            lease.keep_alive()
        with pytest.raises(exceptions.ClientClosedError):
            await client.lease(5)

    run(body())


def test_a_new_event_loop_keeps_leases_alive_again(etcd_server: EtcdServer) -> None:
    client = aio_client(etcd_server)

    async def first() -> Lease:
        return await client.lease(1, keep_alive=True)

    async def second(old: Lease) -> None:
        # the old loop's engine ended with it: the lease is no longer kept alive
        assert not old.kept_alive
        lease = await client.lease(2, keep_alive=True)
        await asyncio.sleep(3)
        assert await lease.remaining_ttl > 0 and not lease.expired
        await client.close()

    old = run(first())
    run(second(old))


_FORGETFUL = """
import asyncio, sys, etcd3.aio
async def main():
    client = etcd3.aio.client(host=sys.argv[1], port=int(sys.argv[2]))
    lease = await client.lease(5, keep_alive=True)
    await client.put("/forgotten", "v", lease=lease)
    await asyncio.sleep(0.5)
    print("leaving", flush=True)
asyncio.run(main())
print("exited", flush=True)
"""


def test_exit_without_close_is_prompt(etcd_client: Any, etcd_server: EtcdServer) -> None:
    proc = subprocess.run([sys.executable, "-c", _FORGETFUL, etcd_server.host,
                           str(etcd_server.port)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["leaving", "exited"]
    assert "Traceback" not in proc.stderr and "was destroyed" not in proc.stderr
    assert etcd_client.get("/forgotten")[0] == b"v"  # the lease expires later


def test_keepalive_survives_freezing_then_killing_its_member() -> None:
    with EtcdCluster(3) as cluster:
        async def body() -> None:
            async with etcd3.aio.client(endpoints=cluster.endpoints, timeout=10) as client:
                reported: List[Lease] = []
                lease = await client.lease(5, keep_alive=True, on_expired=reported.append)
                await client.put("/survivor", "v", lease=lease)
                engine = client._keepalive
                assert engine is not None
                await wait_until(lambda: engine.stream_endpoint is not None)

                # SIGSTOP: the stream stalls (no error, no reply) and must move
                frozen_endpoint = engine.stream_endpoint
                frozen = next(m for m in cluster.members if m.endpoint == frozen_endpoint)
                await asyncio.to_thread(frozen.pause)
                try:
                    await asyncio.sleep(11)  # more than twice the TTL
                    assert reported == [] and not lease.expired
                    assert engine.stream_endpoint not in (None, frozen_endpoint)
                    assert await lease.remaining_ttl > 0
                finally:
                    frozen.resume()

                # SIGKILL of the member the stream moved to, made leader first
                stream_endpoint = engine.stream_endpoint
                member = next(m for m in cluster.members if m.endpoint == stream_endpoint)
                leader = await asyncio.to_thread(cluster.leader)
                if leader is not member:  # the hardest case: the stream's member leads
                    member_id = int(member.status()["header"]["member_id"])
                    await asyncio.to_thread(leader.etcdctl, "move-leader",
                                            f"{member_id:x}")
                    await wait_until(lambda: cluster.leader() is member)
                member.kill()
                await asyncio.sleep(11)  # more than twice the TTL
                assert reported == [] and not lease.expired
                assert engine.stream_endpoint not in (None, stream_endpoint)
                assert await lease.remaining_ttl > 0
                assert (await client.get("/survivor"))[0] == b"v"
                await lease.revoke()

        run(body())


def test_keepalive_survives_a_restart_with_auth_enabled() -> None:
    with EtcdServer() as server:
        server.etcdctl("user", "add", "root:secret")
        server.etcdctl("auth", "enable")

        async def body() -> None:
            async with aio_client(server, user="root", password="secret",
                                  timeout=10) as client:
                reported: List[Lease] = []
                lease = await client.lease(3, keep_alive=True, on_expired=reported.append)
                engine = client._keepalive
                assert engine is not None
                await wait_until(lambda: engine.stream_endpoint is not None)
                await asyncio.to_thread(server.restart)  # the stream must come back
                await asyncio.sleep(6.5)  # more than twice the TTL
                assert reported == [] and not lease.expired
                assert await lease.remaining_ttl > 0
                await lease.revoke()

        run(body())


def test_cancelled_async_with_stays_cancelled_when_the_revoke_fails(
        etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server, timeout=1) as client:
            entered = asyncio.Event()
            leases: List[Lease] = []

            async def worker() -> None:
                async with await client.lease(2, keep_alive=True) as lease:
                    leases.append(lease)
                    entered.set()
                    await asyncio.sleep(30)

            task = asyncio.ensure_future(worker())
            await entered.wait()
            etcd_server.pause()
            try:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            finally:
                etcd_server.resume()
            assert not leases[0].kept_alive  # no longer renewed: it expires

            async def gone() -> bool:
                return await leases[0].remaining_ttl == -1

            await wait_until(gone, timeout=15)

    run(body())
