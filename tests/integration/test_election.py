"""Elections: Go ``concurrency.Election`` semantics, etcdctl interop, real etcd."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any, List

import pytest
from _concurrency_support import etcdctl, readline, wait_for

from etcd3.election import NotLeaderError
from etcd3.testing import EtcdServer

pytestmark = pytest.mark.drivers("threaded", "aio")


def _leader_value(election: Any) -> Any:
    leader = election.leader()
    return None if leader is None else leader[0]


def test_campaign_proclaim_resign(etcd_client: Any) -> None:
    election = etcd_client.election("team", ttl=5)
    assert election.leader() is None
    assert not election.is_leader()
    assert election.campaign("alpha") is True
    assert election.key == b"team/%x" % election.lease.id
    value, meta = election.leader()
    assert value == b"alpha" and meta.key == election.key
    assert meta.create_revision == election.revision
    assert election.is_leader()
    election.proclaim("beta")
    assert _leader_value(election) == b"beta"
    assert election.campaign("gamma") is True  # already leading: proclaims
    assert _leader_value(election) == b"gamma"
    lease = election.lease
    assert election.resign() is True
    assert election.leader() is None and not election.is_leader()
    assert etcd_client.get_lease_info(lease.id).TTL == -1
    assert election.resign() is False


def test_second_candidate_waits_its_turn(etcd_client: Any) -> None:
    first = etcd_client.election("queue", ttl=5)
    second = etcd_client.election("queue", ttl=5)
    assert first.campaign("one")
    assert second.campaign("two", timeout=0) is False
    assert second.campaign("two", timeout=0.3) is False
    assert [meta.key for _, meta in etcd_client.get_prefix("queue/")] == [first.key]
    result: List[bool] = []
    thread = threading.Thread(target=lambda: result.append(second.campaign("two",
                                                                           timeout=10)))
    thread.start()
    wait_for(lambda: len(list(etcd_client.get_prefix("queue/"))) == 2)
    assert _leader_value(first) == b"one"
    assert first.resign()
    thread.join(10)
    assert result == [True]
    assert _leader_value(first) == b"two" and second.is_leader()
    assert second.resign()


def test_proclaim_requires_leadership(etcd_client: Any) -> None:
    election = etcd_client.election("lonely", ttl=5)
    with pytest.raises(NotLeaderError):
        election.proclaim("x")
    assert election.campaign("mine")
    etcd_client.revoke_lease(election.lease.id)  # as if the lease ran out
    assert not election.is_leader()
    with pytest.raises(NotLeaderError, match="no longer"):
        election.proclaim("still mine?")
    assert election.leader() is None


def test_leader_lease_expiry_hands_over(etcd_client: Any) -> None:
    first = etcd_client.election("handover", ttl=5)
    second = etcd_client.election("handover", ttl=5)
    assert first.campaign("one")
    result: List[bool] = []
    thread = threading.Thread(target=lambda: result.append(second.campaign("two",
                                                                           timeout=10)))
    thread.start()
    wait_for(lambda: len(list(etcd_client.get_prefix("handover/"))) == 2)
    etcd_client.revoke_lease(first.lease.id)
    thread.join(10)
    assert result == [True] and second.is_leader() and not first.is_leader()
    assert second.resign()


def test_observe_follows_every_leader(etcd_client: Any) -> None:
    first = etcd_client.election("watched", ttl=5)
    second = etcd_client.election("watched", ttl=5)
    seen: List[bytes] = []
    with first.observe() as observer:
        reader = threading.Thread(target=lambda: seen.extend(v for v, _ in observer))
        reader.start()
        time.sleep(0.2)  # observing an empty election
        assert first.campaign("a")
        wait_for(lambda: seen == [b"a"])
        first.proclaim("a2")
        wait_for(lambda: seen == [b"a", b"a2"])
        waiting = threading.Thread(target=second.campaign, args=("b",))
        waiting.start()
        wait_for(lambda: len(list(etcd_client.get_prefix("watched/"))) == 2)
        assert first.resign()
        waiting.join(10)
        wait_for(lambda: seen == [b"a", b"a2", b"b"])
    reader.join(5)
    assert not reader.is_alive()
    assert second.resign()


@pytest.mark.parametrize("kwargs", [{"name": ""}, {"name": "x", "ttl": 0},
                                    {"name": "x", "ttl": -1}])
def test_bad_input(etcd_client: Any, kwargs: Any) -> None:
    with pytest.raises(ValueError):
        etcd_client.election(**kwargs)


def test_etcdctl_candidate_waits_behind_python_leader(etcd_server: EtcdServer,
                                                      etcd_client: Any) -> None:
    election = etcd_client.election("mixed", ttl=5)
    assert election.campaign("python")
    proc = etcdctl(etcd_server, "elect", "mixed", "cli")
    try:
        wait_for(lambda: len(list(etcd_client.get_prefix("mixed/"))) == 2)
        assert _leader_value(election) == b"python"
        assert election.resign()
        assert readline(proc).startswith("mixed/")  # etcdctl: "key\nvalue"
        assert readline(proc) == "cli"
        assert _leader_value(election) == b"cli"
        # a Python candidate now waits behind etcdctl
        assert election.campaign("python", timeout=0.3) is False
        proc.send_signal(signal.SIGINT)  # etcdctl resigns on interrupt
        assert election.campaign("python", timeout=10) is True
        assert election.resign()
    finally:
        proc.kill()
        proc.communicate()


def test_etcdctl_observes_python_proclamations(etcd_server: EtcdServer,
                                               etcd_client: Any) -> None:
    election = etcd_client.election("shown", ttl=5)
    assert election.campaign("v1")
    proc = etcdctl(etcd_server, "elect", "--listen", "shown")
    try:
        assert readline(proc) == election.key.decode()
        assert readline(proc) == "v1"
        election.proclaim("v2")
        assert readline(proc) == election.key.decode()
        assert readline(proc) == "v2"
    finally:
        proc.kill()
        proc.communicate()
        election.resign()


def test_observe_ends_when_the_client_closes_after_a_resign(etcd_server: EtcdServer) -> None:
    # The close may land while the observer re-reads an empty election or while it
    # waits for a first candidate: either way the iteration ends.
    import etcd3

    for attempt in range(3):
        client = etcd3.client(endpoints=[etcd_server.endpoint])
        election = client.election(f"closing-{attempt}", ttl=5)
        assert election.campaign("x")
        observer = election.observe()
        assert next(observer)[0] == b"x"
        outcome: List[Any] = []

        def read(observer: Any = observer, outcome: List[Any] = outcome) -> None:
            try:
                outcome.append(list(observer))
            except Exception as error:  # the failure this test is about
                outcome.append(error)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.05 * attempt)
        election.resign()
        client.close()
        reader.join(10)
        assert outcome == [[]]
