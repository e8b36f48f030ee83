"""etcd3.aio failover against a real 3-member cluster: members killed (-9) and frozen
(SIGSTOP), the leader included, while 8 tasks of one event loop read and write;
a frozen member is left aside within each call's deadline; every member down and
back. Acknowledged writes are counted with a threaded client afterwards. Uses its
own cluster: it damages it."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Dict, List, Tuple

import pytest

import etcd3
import etcd3.aio
from etcd3 import exceptions
from etcd3.retry import Retry
from etcd3.testing import EtcdCluster

TASKS = 8
UNCERTAIN = "may or may not have been applied"


@pytest.fixture(scope="module")
def cluster() -> Any:
    with EtcdCluster(size=3) as cluster:
        yield cluster


def _client(cluster: EtcdCluster, **kwargs: Any) -> etcd3.aio.Etcd3Client:
    kwargs.setdefault("timeout", 12)
    kwargs.setdefault("retry", Retry(attempt_timeout=1.0))
    return etcd3.aio.client(endpoints=cluster.endpoints, **kwargs)


class Workload:
    """8 tasks of mixed gets/puts/txns; each write creates a unique key once."""

    def __init__(self, client: etcd3.aio.Etcd3Client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.running = True
        self.read_failures: List[BaseException] = []
        self.reads = 0
        self.written: List[bytes] = []
        self.put_revisions: List[int] = []
        self.uncertain: List[Tuple[bytes, BaseException]] = []
        self.tasks: List[asyncio.Task[None]] = []

    async def _run(self, n: int) -> None:
        rnd = random.Random(n)
        t = self.client.transactions
        i = 0
        while self.running:
            i += 1
            kind = rnd.choice(("get", "get", "put", "txn"))
            key = f"{self.prefix}{n}/{i}".encode()
            try:
                if kind == "get":
                    await self.client.get(f"{self.prefix}{n}/{max(i - 2, 1)}")
                    self.reads += 1
                    continue
                if kind == "put":
                    response = await self.client.put(key, b"x")
                    self.put_revisions.append(response.header.revision)
                else:
                    ok, _ = await self.client.transaction(
                        compare=[t.version(key) == 0], success=[t.put(key, b"t")],
                        failure=[])
                    assert ok, f"txn found {key!r} already written"
            except (exceptions.ConnectionFailedError,
                    exceptions.ConnectionTimeoutError) as error:
                if kind == "get":
                    self.read_failures.append(error)
                else:
                    self.uncertain.append((key, error))
                continue
            except Exception as error:  # anything else is a defect
                self.read_failures.append(error)
                continue
            self.written.append(key)

    async def __aenter__(self) -> Workload:
        self.tasks = [asyncio.create_task(self._run(n)) for n in range(TASKS)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.running = False
        await asyncio.wait_for(asyncio.gather(*self.tasks), 60)

    def check(self, cluster: EtcdCluster) -> None:
        """No read failed; every acknowledged write is there exactly once, every
        uncertain one at most once (counted by a threaded client)."""
        assert not self.read_failures, self.read_failures[:3]
        for _key, error in self.uncertain:
            assert UNCERTAIN in str(error), error
        with etcd3.client(endpoints=cluster.endpoints, timeout=10) as checker:
            found: Dict[bytes, int] = {
                meta.key: meta.version for _, meta in checker.get_prefix(self.prefix)}
        missing = [key for key in self.written if found.get(key) != 1]
        assert not missing, missing[:5]
        assert all(found.get(key, 0) <= 1 for key, _ in self.uncertain)
        assert len(found) <= len(self.written) + len(self.uncertain)


def _chaos(cluster: EtcdCluster) -> None:
    """Kill -9 the leader and bring it back; freeze a follower, then the leader."""
    time.sleep(1.0)
    leader = cluster.leader()
    leader.kill()
    time.sleep(2.5)
    leader.start()
    cluster.wait_healthy()
    time.sleep(1.0)
    follower = next(m for m in cluster.members if m is not cluster.leader())
    follower.pause()
    time.sleep(2.5)
    follower.resume()
    leader = cluster.leader()
    leader.pause()
    time.sleep(2.5)
    leader.resume()
    cluster.wait_healthy()
    time.sleep(1.0)


@pytest.mark.parametrize("write_batch_in_flight", [None, 1], ids=["plain", "coalesced"])
def test_members_killed_and_frozen_under_load(cluster: EtcdCluster,
                                              write_batch_in_flight: Any) -> None:
    """With ``write_batch_in_flight=1`` concurrent puts share Txns: a batch lost
    with its member must fail each of its writes as possibly applied, never
    acknowledge one that is not there, nor apply one twice."""
    cluster.wait_healthy()

    async def body() -> Workload:
        async with _client(cluster, write_batch_in_flight=write_batch_in_flight) as client:
            async with Workload(client, f"/chaos/{write_batch_in_flight}/") as load:
                await asyncio.to_thread(_chaos, cluster)
                counts = (load.reads, len(load.written))
            assert counts[0] > 100 and counts[1] > 50, counts
            if write_batch_in_flight is not None:  # puts were coalesced: one Txn,
                revisions = load.put_revisions  # one revision for several puts
                assert len(set(revisions)) < len(revisions), len(revisions)
            # The same client uses every member again.
            states = client._transport.pool.states
            for _ in range(100):
                if not any(state.ejected for state in states):
                    break
                await client.get("probe-traffic")
                await asyncio.sleep(0.1)
            assert not any(state.ejected for state in states), states
            return load

    asyncio.run(body()).check(cluster)


def test_frozen_follower_is_left_aside_within_the_call_deadline(
        cluster: EtcdCluster) -> None:
    """SIGSTOP keeps the member's connections open and answers nothing: every read
    must still succeed within its 3 s deadline (attempts get 0.5 s each, then
    another member). A write already sent to it cannot be retried: it fails as
    possibly applied, never silently."""
    cluster.wait_healthy()
    leader = cluster.leader()
    frozen = next(m for m in cluster.members if m is not leader)

    async def body() -> Tuple[int, List[BaseException], List[BaseException]]:
        client = _client(cluster, timeout=3, retry=Retry(attempt_timeout=0.5))
        async with client:
            await client.put("/frozen/k", "v")
            for _ in range(6):  # every member is in use (round-robin)
                assert (await client.get("/frozen/k"))[0] == b"v"
            state = next(s for s in client._transport.pool.states
                         if s.endpoint.netloc == frozen.endpoint)
            read_failures: List[BaseException] = []
            write_failures: List[BaseException] = []
            reads = [0]
            running = [True]

            async def worker(n: int) -> None:
                i = 0
                while running[0]:
                    i += 1
                    try:
                        assert (await client.get("/frozen/k"))[0] == b"v"
                        reads[0] += 1
                    except Exception as error:  # reported below
                        read_failures.append(error)
                    try:
                        await client.put(f"/frozen/{n}/{i}", "x")
                    except exceptions.ConnectionTimeoutError as error:
                        write_failures.append(error)

            frozen.pause()
            try:
                workers = [asyncio.create_task(worker(n)) for n in range(6)]
                await asyncio.sleep(4.0)
                assert state.ejected, "the frozen member was never left aside"
                running[0] = False
                await asyncio.wait_for(asyncio.gather(*workers), 30)
            finally:
                frozen.resume()
            # Answering again, it is taken back by the probe the next calls start.
            assert await settle_async(
                lambda: not state.ejected, lambda: client.get("/frozen/k"), 20), \
                "never re-admitted"
            return reads[0], read_failures, write_failures

    reads, read_failures, write_failures = asyncio.run(body())
    assert read_failures == []
    assert reads > 0
    for error in write_failures:
        assert UNCERTAIN in str(error) and frozen.endpoint in str(error), error


async def settle_async(condition: Any, traffic: Any, seconds: float) -> bool:
    """Drive ``traffic()`` until ``condition()`` holds (at most ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await traffic()
        if condition():
            return True
        await asyncio.sleep(0.1)
    return bool(condition())


def test_all_members_down_then_back(cluster: EtcdCluster) -> None:
    cluster.wait_healthy()

    async def body() -> None:
        async with _client(cluster, timeout=3) as client:
            await client.put("/down", "before")
            for member in cluster.members:
                member.kill()
            try:
                for call in (client.get("/down"), client.put("/down", "x")):
                    with pytest.raises(exceptions.NoServerAvailableError) as info:
                        await call
                    for endpoint in cluster.endpoints:
                        assert endpoint in str(info.value)
            finally:
                await asyncio.to_thread(cluster.start)
            assert (await client.get("/down", timeout=15))[0] == b"before"
            await client.put("/down", "after")
            assert (await client.get("/down"))[0] == b"after"

    asyncio.run(body())
    cluster.wait_healthy()
