"""The lock/election algorithm steps (etcd3._core.concurrency), one step at a time,
fed with responses decoded by the codec as the driver would get them."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import pytest

import etcd3.events
from etcd3 import codec
from etcd3._core import concurrency as core
from etcd3._core import ops
from etcd3.etcdrpc import kv_pb2
from etcd3.etcdrpc import rpc_pb2 as pb

PREFIX = b"/locks/job/"
LEASE = 0xAB
OWN = PREFIX + b"ab"


def header(revision: int) -> Any:
    return pb.ResponseHeader(cluster_id=1, member_id=2, revision=revision, raft_term=3)


def kv(key: bytes, create_revision: int, value: bytes = b"") -> Any:
    return kv_pb2.KeyValue(key=key, value=value, create_revision=create_revision,
                           mod_revision=create_revision, version=1)


def range_response(revision: int, *kvs: Any) -> Any:
    message = pb.RangeResponse(header=header(revision), kvs=list(kvs), count=len(kvs))
    return codec.decode_range_response(message.SerializeToString())


def created(revision: int, oldest: Optional[Any]) -> Any:
    """The create transaction's response when the own key was created at ``revision``."""
    message = pb.TxnResponse(header=header(revision), succeeded=True, responses=[
        pb.ResponseOp(response_put=pb.PutResponse(header=header(revision))),
        pb.ResponseOp(response_range=pb.RangeResponse(
            header=header(revision), kvs=[oldest] if oldest is not None else []))])
    return codec.decode_txn_response(message.SerializeToString())


def existed(revision: int, own_revision: int, oldest: Any) -> Any:
    """The create transaction's response when the own key already existed."""
    message = pb.TxnResponse(header=header(revision), succeeded=False, responses=[
        pb.ResponseOp(response_range=pb.RangeResponse(kvs=[kv(OWN, own_revision)])),
        pb.ResponseOp(response_range=pb.RangeResponse(kvs=[oldest]))])
    return codec.decode_txn_response(message.SerializeToString())


def lock_attempt(wait: bool = True) -> core.Contention:
    return core.Contention(PREFIX, LEASE, first_wins=True, wait=wait)


def election_attempt() -> core.Contention:
    return core.Contention(PREFIX, LEASE, b"me", first_wins=False, wait=True)


def assert_get(step: Any, expected: ops.Get) -> None:
    assert isinstance(step, ops.Get)
    assert step.encode() == expected.encode()


def predecessor_query(max_create_revision: int) -> ops.Get:
    return ops.Get(PREFIX, codec.prefix_range_end(PREFIX), sort_order="descend",
                   sort_target="create", limit=1, max_create_revision=max_create_revision)


# -- the requests --------------------------------------------------------------------------

def test_the_create_transaction_is_gos() -> None:
    attempt = core.Contention(PREFIX, LEASE, b"v", first_wins=True, wait=True)
    assert attempt.key == OWN == core.own_key(PREFIX, LEASE)
    oldest = pb.RangeRequest(key=PREFIX, range_end=b"/locks/job0", limit=1,
                             sort_order=pb.RangeRequest.ASCEND,
                             sort_target=pb.RangeRequest.CREATE)
    expected = pb.TxnRequest(
        compare=[pb.Compare(key=OWN, target=pb.Compare.CREATE, result=pb.Compare.EQUAL,
                            create_revision=0)],
        success=[pb.RequestOp(request_put=pb.PutRequest(key=OWN, value=b"v", lease=LEASE)),
                 pb.RequestOp(request_range=oldest)],
        failure=[pb.RequestOp(request_range=pb.RangeRequest(key=OWN)),
                 pb.RequestOp(request_range=oldest)])
    assert attempt.start().encode() == expected.SerializeToString()


def test_one_off_requests() -> None:
    fence = pb.Compare(key=OWN, target=pb.Compare.CREATE, create_revision=42)
    assert core.delete_if_owner(OWN, 42).encode() == pb.TxnRequest(
        compare=[fence], success=[pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(
            key=OWN))]).SerializeToString()
    assert core.proclaim(OWN, 42, b"new", LEASE).encode() == pb.TxnRequest(
        compare=[fence], success=[pb.RequestOp(request_put=pb.PutRequest(
            key=OWN, value=b"new", lease=LEASE))]).SerializeToString()
    assert core.is_owner(OWN, 42).build_message() == fence
    assert_get(core.first_created(PREFIX),
               ops.Get(PREFIX, b"/locks/job0", sort_order="ascend", sort_target="create",
                       limit=1))
    assert_get(core.last_created_before(PREFIX, 41), predecessor_query(41))


# -- a lock --------------------------------------------------------------------------------

def test_a_lock_nobody_holds_is_held_at_once() -> None:
    attempt = lock_attempt()
    attempt.start()
    response = created(10, kv(OWN, 10))
    assert attempt.on_txn(response) == core.Finished(core.Verdict.HELD, response.header)
    assert (attempt.key, attempt.revision, attempt.created_header) == (OWN, 10,
                                                                      response.header)


def test_a_held_lock_without_waiting_gives_up() -> None:
    attempt = lock_attempt(wait=False)
    attempt.start()
    assert attempt.on_txn(created(10, kv(PREFIX + b"01", 5))) == \
        core.Finished(core.Verdict.GAVE_UP)
    assert attempt.revision == 10  # the own key exists: the driver removes it


def test_a_waiter_watches_its_predecessors_then_checks_its_own_key() -> None:
    attempt = lock_attempt()
    attempt.start()
    step = attempt.on_txn(created(10, kv(PREFIX + b"01", 5)))
    assert_get(step, predecessor_query(9))
    step = attempt.on_range(range_response(10, kv(PREFIX + b"07", 8)))
    assert step == core.WaitDelete(PREFIX + b"07", 10)
    assert_get(attempt.on_waited(True), predecessor_query(9))
    step = attempt.on_range(range_response(12, kv(PREFIX + b"01", 5)))
    assert step == core.WaitDelete(PREFIX + b"01", 12)
    assert_get(attempt.on_waited(True), predecessor_query(9))
    assert_get(attempt.on_range(range_response(13)), ops.Get(OWN))
    check = range_response(13, kv(OWN, 10))
    assert attempt.on_range(check) == core.Finished(core.Verdict.HELD, check.header)


def test_a_deadline_while_waiting_gives_up() -> None:
    attempt = lock_attempt()
    attempt.start()
    attempt.on_txn(created(10, kv(PREFIX + b"01", 5)))
    assert attempt.on_range(range_response(10, kv(PREFIX + b"01", 5))) == \
        core.WaitDelete(PREFIX + b"01", 10)
    assert attempt.on_waited(False) == core.Finished(core.Verdict.GAVE_UP)


@pytest.mark.parametrize("own", [None, kv(OWN, 20)], ids=["gone", "recreated"])
def test_an_own_key_lost_while_waiting_is_lost(own: Any) -> None:
    attempt = lock_attempt()
    attempt.start()
    attempt.on_txn(created(10, kv(PREFIX + b"01", 5)))
    attempt.on_range(range_response(10, kv(PREFIX + b"01", 5)))
    attempt.on_waited(True)
    attempt.on_range(range_response(11))
    check = range_response(21, *([own] if own is not None else []))
    assert attempt.on_range(check) == core.Finished(core.Verdict.LOST)


def test_an_own_key_that_existed_keeps_its_revision() -> None:
    attempt = lock_attempt()
    attempt.start()
    response = existed(30, 7, kv(OWN, 7))
    assert attempt.on_txn(response) == core.Finished(core.Verdict.HELD, response.header)
    assert attempt.revision == 7


# -- an election ---------------------------------------------------------------------------

def test_an_election_always_asks_for_predecessors() -> None:
    attempt = election_attempt()
    assert attempt.start().success[0].value == b"me"  # type: ignore[union-attr]
    step = attempt.on_txn(created(10, kv(OWN, 10)))
    assert_get(step, predecessor_query(9))
    assert_get(attempt.on_range(range_response(10)), ops.Get(OWN))
    check = range_response(10, kv(OWN, 10, b"me"))
    assert attempt.on_range(check).verdict is core.Verdict.HELD


# -- driven end to end by a scripted driver ------------------------------------------------

def drive(attempt: core.Contention, answers: List[Any]) -> Tuple[core.Finished, List[str]]:
    """Run ``attempt`` as a driver does, answering each step from ``answers``."""
    seen: List[str] = []
    step: core.Step = attempt.start()
    while not isinstance(step, core.Finished):
        answer = answers.pop(0)
        seen.append(type(step).__name__)
        if isinstance(step, ops.Txn):
            step = attempt.on_txn(answer)
        elif isinstance(step, ops.Get):
            step = attempt.on_range(answer)
        else:
            step = attempt.on_waited(answer)
    assert not answers
    return step, seen


def test_a_driver_needs_nothing_but_the_steps() -> None:
    end, seen = drive(lock_attempt(), [
        created(10, kv(PREFIX + b"01", 5)), range_response(10, kv(PREFIX + b"01", 5)),
        True, range_response(11), range_response(11, kv(OWN, 10))])
    assert end.verdict is core.Verdict.HELD
    assert seen == ["Txn", "Get", "WaitDelete", "Get", "Get"]



# -- observing an election -----------------------------------------------------------------

def watch_response(revision: int, *events: Tuple[int, Any]) -> Any:
    """A watch response decoded as the client decodes it (PutEvent/DeleteEvent)."""
    message = pb.WatchResponse(header=header(revision), watch_id=1)
    for kind, item in events:
        message.events.add(type=kind, kv=item)
    layout = codec.event_layout(etcd3.events.PutEvent, etcd3.events.DeleteEvent)
    return codec.decode_watch_response(message.SerializeToString(), layout)


PUT, DELETE = 0, 1


def values(leaders: List[Any]) -> List[Tuple[bytes, bytes, int]]:
    return [(value, meta.key, meta.mod_revision) for value, meta in leaders]


def test_observing_a_led_election_follows_the_leaders_key() -> None:
    observation = core.Observation(PREFIX)
    assert_get(observation.start(), core.first_created(PREFIX))
    leaders, step = observation.on_range(range_response(20, kv(OWN, 15, b"a")))
    assert values(leaders) == [(b"a", OWN, 15)]
    assert step == core.Watch(OWN, 21) and not observation.awaiting_first
    leaders, step = observation.on_watch(watch_response(
        23, (PUT, kv(OWN, 22, b"a2")), (PUT, kv(OWN, 23, b"a3"))))
    assert values(leaders) == [(b"a2", OWN, 22), (b"a3", OWN, 23)] and step is None
    leaders, step = observation.on_watch(watch_response(
        25, (PUT, kv(OWN, 24, b"a4")), (DELETE, kv(OWN, 25)), (PUT, kv(OWN, 26, b"x"))))
    assert values(leaders) == [(b"a4", OWN, 24)]  # then the leader's key went
    assert_get(step, core.first_created(PREFIX))


def test_observing_an_empty_election_waits_for_a_first_candidate() -> None:
    observation = core.Observation(PREFIX)
    leaders, step = observation.on_range(range_response(30))
    assert leaders == [] and observation.awaiting_first
    assert step == core.Watch(PREFIX, 31, codec.prefix_range_end(PREFIX))
    other = PREFIX + b"cd"
    assert observation.on_watch(watch_response(31, (DELETE, kv(other, 31)))) == ([], None)
    leaders, step = observation.on_watch(watch_response(
        33, (PUT, kv(other, 32, b"b")), (PUT, kv(OWN, 33, b"c"))))
    assert values(leaders) == [(b"b", other, 32)]  # the first one leads
    assert step == core.Watch(other, 33) and not observation.awaiting_first


def test_leader_of() -> None:
    assert core.leader_of(range_response(5)) is None
    value, meta = core.leader_of(range_response(9, kv(OWN, 7, b"v")))  # type: ignore[misc]
    assert (value, meta.key, meta.create_revision, meta.response_header.revision) == (
        b"v", OWN, 7, 9)
