"""Elections of the asyncio client: the threaded client's scenarios awaited, observe
as an async iterator, interop with the threaded client and ``etcdctl elect``, and
cancellation safety."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from typing import Any, List

import pytest
from _aio_concurrency_support import aio_client, keys, run, wait_until
from _concurrency_support import etcdctl, readline

from etcd3.aio.election import Election
from etcd3.exceptions import ClientClosedError, NotLeaderError
from etcd3.testing import EtcdServer


async def _leader_value(election: Any) -> Any:
    leader = await election.leader()
    return None if leader is None else leader[0]


def _count(client: Any, prefix: str, count: int) -> Any:
    async def check() -> bool:
        return len(await keys(client, prefix)) == count
    return check


def test_campaign_proclaim_resign(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            election = client.election("team", ttl=5)
            assert isinstance(election, Election)
            assert await election.leader() is None
            assert not await election.is_leader()
            assert await election.campaign("alpha") is True
            assert election.key == b"team/%x" % election.lease.id
            value, meta = await election.leader()
            assert value == b"alpha" and meta.key == election.key
            assert meta.create_revision == election.revision
            assert await election.is_leader()
            await election.proclaim("beta")
            assert await _leader_value(election) == b"beta"
            assert await election.campaign("gamma") is True  # leads: proclaims
            assert await _leader_value(election) == b"gamma"
            lease = election.lease
            assert await election.resign() is True
            assert await election.leader() is None and not await election.is_leader()
            assert (await client.get_lease_info(lease.id)).TTL == -1
            assert await election.resign() is False

    run(body())


def test_second_candidate_waits_its_turn(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            first = client.election("queue", ttl=5)
            second = client.election("queue", ttl=5)
            assert await first.campaign("one")
            assert await second.campaign("two", timeout=0) is False
            assert await second.campaign("two", timeout=0.3) is False
            assert await keys(client, "queue/") == [first.key]
            waiting = asyncio.ensure_future(second.campaign("two", timeout=10))
            await wait_until(_count(client, "queue/", 2))
            assert await _leader_value(first) == b"one"
            assert await first.resign()
            assert await waiting is True
            assert await _leader_value(first) == b"two" and await second.is_leader()
            assert await second.resign()

    run(body())


def test_proclaim_requires_leadership(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            election = client.election("lonely", ttl=5)
            with pytest.raises(NotLeaderError):
                await election.proclaim("x")
            assert await election.campaign("mine")
            await client.revoke_lease(election.lease.id)  # as if the lease ran out
            assert not await election.is_leader()
            with pytest.raises(NotLeaderError, match="no longer"):
                await election.proclaim("still mine?")
            assert await election.leader() is None

    run(body())


def test_leader_lease_expiry_hands_over(etcd_client: Any, etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            lost: List[Election] = []

            async def on_lost(election: Election) -> None:
                lost.append(election)

            first = client.election("handover", ttl=5, on_lost=on_lost)
            second = client.election("handover", ttl=5)
            assert await first.campaign("one")
            waiting = asyncio.ensure_future(second.campaign("two", timeout=10))
            await wait_until(_count(client, "handover/", 2))
            etcd_client.revoke_lease(first.lease.id)  # another client revokes it
            assert await waiting is True
            assert await second.is_leader() and not await first.is_leader()
            await wait_until(lambda: lost == [first])
            assert await second.resign()

    run(body())


def test_observe_follows_every_leader(etcd_server: EtcdServer) -> None:
    async def body() -> List[bytes]:
        async with aio_client(etcd_server) as client:
            first = client.election("watched", ttl=5)
            second = client.election("watched", ttl=5)
            seen: List[bytes] = []

            async with first.observe() as observer:
                async def read() -> None:
                    async for value, _ in observer:
                        seen.append(value)

                reader = asyncio.ensure_future(read())
                await asyncio.sleep(0.2)  # observing an empty election
                assert await first.campaign("a")
                await wait_until(lambda: seen == [b"a"])
                await first.proclaim("a2")
                await wait_until(lambda: seen == [b"a", b"a2"])
                waiting = asyncio.ensure_future(second.campaign("b"))
                await wait_until(_count(client, "watched/", 2))
                assert await first.resign()
                assert await waiting is True
                await wait_until(lambda: seen == [b"a", b"a2", b"b"])
            await asyncio.wait_for(reader, 5)  # cancel() ends the iteration
            assert await second.resign()
            return seen

    assert run(body()) == [b"a", b"a2", b"b"]


def test_observe_ends_when_the_client_closes(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        client = aio_client(etcd_server)
        election = client.election("closing", ttl=5)
        assert await election.campaign("x")
        observer = election.observe()
        assert (await observer.__anext__())[0] == b"x"
        reader = asyncio.ensure_future(observer.__anext__())
        await asyncio.sleep(0.2)
        await election.resign()
        await client.close()
        with pytest.raises(StopAsyncIteration):  # iteration ends
            await asyncio.wait_for(reader, 10)
        with pytest.raises(ClientClosedError):
            await election.leader()

    run(body())


@pytest.mark.parametrize("kwargs", [{"name": ""}, {"name": "x", "ttl": 0},
                                    {"name": "x", "ttl": -1}])
def test_bad_input(etcd_server: EtcdServer, kwargs: Any) -> None:
    with pytest.raises(ValueError):
        aio_client(etcd_server).election(**kwargs)


def test_cancelled_campaign_withdraws(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            first = client.election("cancelled", ttl=5)
            second = client.election("cancelled", ttl=5)
            assert await first.campaign("one")
            task = asyncio.ensure_future(second.campaign("two"))
            await wait_until(_count(client, "cancelled/", 2))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await keys(client, "cancelled/") == [first.key]
            assert second.key is None and second.lease is None
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await second.campaign("two")
            assert await keys(client, "cancelled/") == [first.key]
            assert await first.resign()

    run(body())


# -- the threaded client and etcdctl ------------------------------------------------


def test_threaded_and_asyncio_candidates_share_the_election(etcd_client: Any,
                                                            etcd_server: EtcdServer) -> None:
    threaded = etcd_client.election("both", ttl=5)
    assert threaded.campaign("threaded")

    async def body() -> None:
        async with aio_client(etcd_server) as client:
            election = client.election("both", ttl=5)
            assert await _leader_value(election) == b"threaded"
            waiting = asyncio.ensure_future(election.campaign("asyncio", timeout=10))
            await wait_until(_count(client, "both/", 2))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            assert await asyncio.to_thread(threaded.resign)
            assert await waiting is True
            assert await asyncio.to_thread(threaded.leader) is not None
            assert (await asyncio.to_thread(threaded.leader))[0] == b"asyncio"
            # now the threaded candidate waits behind the asyncio leader
            assert await asyncio.to_thread(threaded.campaign, "threaded", 0.3) is False
            assert await election.resign()

    run(body())


def test_etcdctl_candidate_waits_behind_asyncio_leader(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            election = client.election("mixed", ttl=5)
            assert await election.campaign("python")
            proc = etcdctl(etcd_server, "elect", "mixed", "cli")
            try:
                await wait_until(_count(client, "mixed/", 2))
                assert await _leader_value(election) == b"python"
                assert await election.resign()
                assert (await asyncio.to_thread(readline, proc)).startswith("mixed/")
                assert await asyncio.to_thread(readline, proc) == "cli"
                assert await _leader_value(election) == b"cli"
                assert await election.campaign("python", timeout=0.3) is False
                proc.send_signal(signal.SIGINT)  # etcdctl resigns on interrupt
                assert await election.campaign("python", timeout=10) is True
                assert await election.resign()
            finally:
                proc.kill()
                proc.communicate()

    run(body())


def test_etcdctl_observes_asyncio_proclamations(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            election = client.election("shown", ttl=5)
            assert await election.campaign("v1")
            proc = etcdctl(etcd_server, "elect", "--listen", "shown")
            try:
                assert await asyncio.to_thread(readline, proc) == election.key.decode()
                assert await asyncio.to_thread(readline, proc) == "v1"
                await election.proclaim("v2")
                assert await asyncio.to_thread(readline, proc) == election.key.decode()
                assert await asyncio.to_thread(readline, proc) == "v2"
            finally:
                proc.kill()
                proc.communicate()
                await election.resign()

    run(body())


def test_asyncio_observer_sees_etcdctl_leader(etcd_server: EtcdServer) -> None:
    async def body() -> None:
        async with aio_client(etcd_server) as client:
            election = client.election("cli-led", ttl=5)
            proc = etcdctl(etcd_server, "elect", "cli-led", "from-cli")
            try:
                async with election.observe() as observer:
                    value, meta = await asyncio.wait_for(observer.__anext__(), 10)
                    assert value == b"from-cli" and meta.key.startswith(b"cli-led/")
            finally:
                proc.kill()
                proc.communicate()

    run(body())


_FORGETFUL_CANDIDATES = """
import asyncio, sys, etcd3.aio
async def main():
    client = etcd3.aio.client(host=sys.argv[1], port=int(sys.argv[2]))
    leader = client.election("forgotten", ttl=5)
    assert await leader.campaign("first")
    waiting = asyncio.ensure_future(client.election("forgotten", ttl=5).campaign("next"))
    observer = leader.observe()
    assert (await observer.__anext__())[0] == b"first"
    following = asyncio.ensure_future(observer.__anext__())
    await asyncio.sleep(0.5)
    print("leaving", flush=True)
asyncio.run(main())
print("exited", flush=True)
"""


def test_exit_without_close_is_prompt(etcd_server: EtcdServer) -> None:
    proc = subprocess.run([sys.executable, "-c", _FORGETFUL_CANDIDATES, etcd_server.host,
                           str(etcd_server.port)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["leaving", "exited"]
    assert "Traceback" not in proc.stderr and "was destroyed" not in proc.stderr
