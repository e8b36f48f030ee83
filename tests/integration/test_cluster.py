"""Membership and per-member maintenance on a real 3-member cluster of our own."""

from __future__ import annotations

import time
from typing import Iterator

import pytest

import etcd3
from etcd3 import exceptions
from etcd3.maintenance import Status
from etcd3.testing import EtcdCluster, EtcdServer


@pytest.fixture(scope="module")
def cluster() -> Iterator[EtcdCluster]:
    with EtcdCluster(3) as started:
        yield started


@pytest.fixture
def client(cluster: EtcdCluster) -> Iterator[etcd3.Etcd3Client]:
    with etcd3.client(endpoints=cluster.endpoints, timeout=10) as c:
        yield c


def _wait(condition, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_members(client: etcd3.Etcd3Client, cluster: EtcdCluster) -> None:
    members = sorted(client.members, key=lambda m: m.name)
    assert [m.name for m in members] == ["etcd0", "etcd1", "etcd2"]
    assert [m.peer_urls for m in members] == [[s.peer_url] for s in cluster]
    assert [m.client_urls for m in members] == [[s.client_url] for s in cluster]
    assert not any(m.is_learner for m in members)


def test_add_learner_promote_update_and_remove(client: etcd3.Etcd3Client,
                                               cluster: EtcdCluster) -> None:
    existing = ",".join(f"{m.name}={m.peer_url}" for m in cluster)
    learner = EtcdServer(name="etcd-learner", join=existing)
    added = None

    def add() -> bool:
        nonlocal added
        try:
            added = client.add_member([learner.peer_url], is_learner=True)
        except exceptions.ConnectionFailedError as error:
            # etcd refuses membership changes until every member has been
            # connected for 5 s ("unhealthy cluster"); nothing was applied.
            assert "unhealthy cluster" in str(error)
            return False
        return True

    assert _wait(add)
    assert added is not None
    try:
        assert added.is_learner and added.name == "" and added.peer_urls == [learner.peer_url]
        with pytest.raises(exceptions.AlreadyExistsError):
            client.add_member([learner.peer_url])
        with learner:
            def promoted() -> bool:
                try:
                    client.promote_member(added.id)  # type: ignore[union-attr]
                except exceptions.PreconditionFailedError as error:
                    assert "learner" in str(error)  # not caught up yet
                    return False
                return True

            assert _wait(promoted)
            # etcd 3.4 lists members from the answering member's own state, which may
            # lag a change made through another one (3.5's list is linearizable).
            assert _wait(lambda: not {m.id: m for m in client.members}[added.id].is_learner)
            member = {m.id: m for m in client.members}[added.id]
            assert len(list(client.members)) == 4 and not member.is_learner
            assert member.name == "etcd-learner"
            # Updating peer URLs (to an address nobody listens on: it is removed next).
            member.update(["http://127.0.0.1:9"])
            assert _wait(lambda: {m.id: m for m in client.members}[added.id].peer_urls
                         == ["http://127.0.0.1:9"])
            member.remove()
            added = None
            assert _wait(lambda: sorted(m.name for m in client.members)
                         == ["etcd0", "etcd1", "etcd2"])
    finally:
        if added is not None:
            client.remove_member(added.id)
    with pytest.raises(exceptions.EntityNotFoundError):
        client.remove_member(12345)
    with pytest.raises(exceptions.EntityNotFoundError):
        client.update_member(12345, ["http://127.0.0.1:9"])


def test_status_defragment_and_hash_on_each_endpoint(client: etcd3.Etcd3Client,
                                                     cluster: EtcdCluster) -> None:
    client.put("/each", "value")
    statuses = client.statuses()
    assert list(statuses) == cluster.endpoints
    assert all(isinstance(s, Status) for s in statuses.values())
    leaders = {s.leader.id for s in statuses.values()}  # type: ignore[union-attr]
    assert len(leaders) == 1
    assert len({s.member_id for s in statuses.values()}) == 3  # type: ignore[union-attr]
    assert sum(s.is_leader for s in statuses.values()) == 1  # type: ignore[union-attr]
    revision = client.status().header.revision
    for endpoint in cluster.endpoints:
        client.defragment(endpoint=endpoint)
        assert client.status(endpoint=endpoint).member_id == statuses[endpoint].member_id
    assert _wait(lambda: len({client.hash_kv(revision, endpoint=e).hash
                              for e in cluster.endpoints}) == 1)


def test_move_leader(client: etcd3.Etcd3Client, cluster: EtcdCluster) -> None:
    leader = client.status().leader
    assert leader is not None
    target = next(m for m in client.members if m.id != leader.id)
    client.move_leader(target.id)
    assert _wait(lambda: client.status().leader == target)
    assert cluster.leader().name == target.name
    client.put("/after-move", "ok")
