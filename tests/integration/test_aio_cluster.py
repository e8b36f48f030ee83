"""etcd3.aio: membership and per-member maintenance on a real 3-member cluster, with
the member list checked against etcdctl's."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable, Iterator, List

import pytest

import etcd3.aio
from etcd3 import exceptions
from etcd3.aio.cluster import AioMember
from etcd3.maintenance import Status
from etcd3.testing import EtcdCluster, EtcdServer, run_etcdctl

Body = Callable[[etcd3.aio.Etcd3Client], Awaitable[None]]


@pytest.fixture(scope="module")
def cluster() -> Iterator[EtcdCluster]:
    with EtcdCluster(3) as started:
        yield started


def run(cluster: EtcdCluster, body: Body) -> None:
    async def main() -> None:
        async with etcd3.aio.client(endpoints=cluster.endpoints, timeout=10) as client:
            await body(client)

    asyncio.run(main())


async def wait_for(condition: Callable[[], Awaitable[bool]], attempts: int = 100) -> bool:
    """True once ``await condition()`` is; False after ``attempts`` tries 0.1 s apart."""
    for _ in range(attempts):
        if await condition():
            return True
        await asyncio.sleep(0.1)
    return False


async def member_list(client: etcd3.aio.Etcd3Client) -> List[AioMember]:
    return [member async for member in client.members]


def test_members_match_etcdctl(cluster: EtcdCluster) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        members = sorted(await member_list(client), key=lambda m: m.name)
        assert all(isinstance(m, AioMember) for m in members)
        listed: Any = json.loads(run_etcdctl(cluster.endpoints, "member", "list",
                                             "-w", "json").stdout)
        expected = sorted(listed["members"], key=lambda m: m["name"])
        assert [(m.id, m.name, m.peer_urls, m.client_urls) for m in members] == [
            (m["ID"], m["name"], m["peerURLs"], m["clientURLs"]) for m in expected]
        assert [m.name for m in members] == ["etcd0", "etcd1", "etcd2"]
        assert [m.peer_urls for m in members] == [[s.peer_url] for s in cluster]
        assert not any(m.is_learner for m in members)
        assert await members[0].active_alarms == []
        # Iterating is lazy: nothing is asked until the first member is wanted.
        pending = client.members
        assert [m.id async for m in pending] == [m.id for m in await member_list(client)]

    run(cluster, body)


def test_add_learner_promote_update_and_remove(cluster: EtcdCluster) -> None:
    existing = ",".join(f"{m.name}={m.peer_url}" for m in cluster)
    learner = EtcdServer(name="etcd-aio-learner", join=existing)

    async def body(client: etcd3.aio.Etcd3Client) -> None:
        added = None

        async def add() -> bool:
            nonlocal added
            try:
                added = await client.add_member([learner.peer_url], is_learner=True)
            except exceptions.ConnectionFailedError as error:
                # etcd refuses membership changes until every member has been
                # connected for 5 s ("unhealthy cluster"); nothing was applied.
                assert "unhealthy cluster" in str(error)
                return False
            return True

        assert await wait_for(add)
        assert added is not None
        new_id = added.id
        try:
            assert added.is_learner and added.name == ""
            assert added.peer_urls == [learner.peer_url]
            with pytest.raises(exceptions.AlreadyExistsError):
                await client.add_member([learner.peer_url])
            await asyncio.to_thread(learner.start)
            try:
                async def promoted() -> bool:
                    try:
                        await client.promote_member(new_id)
                    except exceptions.PreconditionFailedError as error:
                        assert "learner" in str(error)  # not caught up yet
                        return False
                    return True

                assert await wait_for(promoted, attempts=200)

                async def listed_as_voter() -> bool:
                    by_id = {m.id: m for m in await member_list(client)}
                    return not by_id[new_id].is_learner and by_id[new_id].name != ""

                assert await wait_for(listed_as_voter)
                member = {m.id: m for m in await member_list(client)}[new_id]
                assert member.name == "etcd-aio-learner"
                assert len(await member_list(client)) == 4
                shown = run_etcdctl(cluster.endpoints, "member", "list").stdout
                assert "etcd-aio-learner" in shown and learner.peer_url in shown
                # Update the peer URLs (to an address nobody listens on: removed next).
                await member.update(["http://127.0.0.1:9"])
                assert member.peer_urls == ["http://127.0.0.1:9"]

                async def updated() -> bool:
                    by_id = {m.id: m for m in await member_list(client)}
                    return bool(by_id[new_id].peer_urls == ["http://127.0.0.1:9"])

                assert await wait_for(updated)
                await member.remove()
                added = None

                async def removed() -> bool:
                    names = sorted(m.name for m in await member_list(client))
                    return names == ["etcd0", "etcd1", "etcd2"]

                assert await wait_for(removed)
            finally:
                await asyncio.to_thread(learner.stop)
        finally:
            if added is not None:
                await client.remove_member(new_id)
        with pytest.raises(exceptions.EntityNotFoundError):
            await client.remove_member(12345)
        with pytest.raises(exceptions.EntityNotFoundError):
            await client.update_member(12345, ["http://127.0.0.1:9"])
        with pytest.raises(ValueError, match="peer URLs"):
            await client.update_member(12345, [])

    run(cluster, body)


def test_status_defragment_and_hash_on_each_endpoint(cluster: EtcdCluster) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        await client.put("/each", "value")
        statuses = await client.statuses()
        assert list(statuses) == cluster.endpoints
        answered = {e: s for e, s in statuses.items() if isinstance(s, Status)}
        assert list(answered) == cluster.endpoints
        assert len({s.leader.id for s in answered.values() if s.leader}) == 1
        assert len({s.member_id for s in answered.values()}) == 3
        assert sum(s.is_leader for s in answered.values()) == 1
        revision = (await client.status()).header.revision
        for endpoint in cluster.endpoints:
            await client.defragment(endpoint=endpoint)
            status = await client.status(endpoint=endpoint)
            assert status.member_id == answered[endpoint].member_id
            assert status.endpoint == endpoint

        async def same_hash() -> bool:
            hashes = [await client.hash_kv(revision, endpoint=e) for e in cluster.endpoints]
            return len({h.hash for h in hashes}) == 1

        assert await wait_for(same_hash)
        with pytest.raises(ValueError, match="not one of this client's endpoints"):
            await client.status(endpoint="127.0.0.1:1")

    run(cluster, body)


def test_statuses_report_a_dead_member_and_keep_the_others(cluster: EtcdCluster) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        victim = cluster.members[2]
        await asyncio.to_thread(victim.kill)
        try:
            statuses = await client.statuses(timeout=2)
            assert isinstance(statuses[victim.endpoint], (exceptions.ConnectionFailedError,
                                                          exceptions.ConnectionTimeoutError))
            alive = [e for e in cluster.endpoints if e != victim.endpoint]
            assert all(isinstance(statuses[e], Status) for e in alive)
        finally:
            await asyncio.to_thread(victim.start)
        await asyncio.to_thread(cluster.wait_healthy)

    run(cluster, body)


def test_move_leader(cluster: EtcdCluster) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        leader = (await client.status()).leader
        assert leader is not None
        target = next(m for m in await member_list(client) if m.id != leader.id)
        await client.move_leader(target.id)

        async def moved() -> bool:
            return bool((await client.status()).leader == target)

        assert await wait_for(moved)
        assert (await asyncio.to_thread(cluster.leader)).name == target.name
        await client.put("/after-move", "ok")

    run(cluster, body)
