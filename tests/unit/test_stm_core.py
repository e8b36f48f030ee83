"""The STM rules (etcd3._core.stm), one step at a time, fed with responses decoded by
the codec as a driver would get them."""

from __future__ import annotations

from typing import Any, List, Tuple

import pytest

from etcd3 import codec
from etcd3._core import ops
from etcd3._core.stm import ISOLATIONS, STMAttempt, check_isolation
from etcd3.etcdrpc import kv_pb2
from etcd3.etcdrpc import rpc_pb2 as pb


def header(revision: int) -> Any:
    return pb.ResponseHeader(cluster_id=1, member_id=2, revision=revision, raft_term=3)


def range_response(revision: int, *kvs: Tuple[bytes, bytes, int]) -> Any:
    items = [kv_pb2.KeyValue(key=k, value=v, create_revision=mod, mod_revision=mod,
                             version=1) for k, v, mod in kvs]
    message = pb.RangeResponse(header=header(revision), kvs=items, count=len(items))
    return codec.decode_range_response(message.SerializeToString())


def txn_response(revision: int, succeeded: bool, *ranges: List[Any]) -> Any:
    message = pb.TxnResponse(header=header(revision), succeeded=succeeded, responses=[
        pb.ResponseOp(response_range=pb.RangeResponse(header=header(revision), kvs=kvs))
        for kvs in ranges])
    return codec.decode_txn_response(message.SerializeToString())


def compares(txn: ops.Txn) -> List[Tuple[Any, ...]]:
    return [item.fields() for item in txn.compare]


def test_isolation_levels_are_checked() -> None:
    assert ISOLATIONS[0] == "serializable_snapshot"
    for isolation in ISOLATIONS:
        assert check_isolation(isolation) == isolation
    with pytest.raises(ValueError, match="unknown isolation 'chaos'"):
        STMAttempt("chaos")


@pytest.mark.parametrize("isolation, first, later", [
    ("serializable_snapshot", {}, {"revision": 7, "serializable": True}),
    ("serializable", {}, {"revision": 7, "serializable": True}),
    ("repeatable_reads", {"serializable": True}, {"serializable": True}),
    ("read_committed", {"serializable": True}, {"serializable": True}),
])
def test_reads_after_the_first_follow_the_isolation(isolation: str, first: Any,
                                                    later: Any) -> None:
    attempt = STMAttempt(isolation)
    assert attempt.known(b"/a") is None
    request = attempt.read_request(b"/a")
    assert request.key == b"/a" and request.range_options == first
    kvs, revision = attempt.record(b"/a", range_response(7, (b"/a", b"1", 5)))
    assert [kv.value for kv in kvs] == [b"1"] and revision == 7
    assert attempt.known(b"/a") == (kvs, 7)  # read once per run
    assert attempt.read_request(b"/b").range_options == later


def test_own_writes_are_seen_and_buffered() -> None:
    attempt = STMAttempt("serializable_snapshot")
    assert attempt.written(b"/k") == (False, None)
    attempt.put("/k", "v")
    assert attempt.written(b"/k") == (True, b"v")
    attempt.delete("/k")
    assert attempt.written(b"/k") == (True, None)
    attempt.reset()
    assert attempt.written(b"/k") == (False, None)


def test_snapshot_commit_guards_reads_and_writes() -> None:
    attempt = STMAttempt("serializable_snapshot")
    attempt.record(b"/r", range_response(9, (b"/r", b"x", 4)))
    attempt.record(b"/gone", range_response(9))
    attempt.put("/w", "1")
    txn = attempt.commit()
    assert compares(txn) == [
        (ops.EQUAL, ops.MOD, b"/r", None, 4),
        (ops.EQUAL, ops.MOD, b"/gone", None, 0),
        (ops.LESS, ops.MOD, b"/w", None, 10),  # unchanged since the first read
    ]
    assert [op.key for op in txn.success] == [b"/w"]
    assert [op.key for op in txn.failure] == [b"/r", b"/gone"]  # re-read on conflict


def test_a_failed_commit_prefetches_the_next_run() -> None:
    attempt = STMAttempt("serializable")
    attempt.record(b"/r", range_response(9, (b"/r", b"x", 4)))
    attempt.put("/r", "y")
    attempt.commit()
    fresh = kv_pb2.KeyValue(key=b"/r", value=b"z", create_revision=4, mod_revision=11)
    assert attempt.committed(txn_response(12, False, [fresh])) is False
    attempt.reset()
    kvs, revision = attempt.known(b"/r")  # no request: the commit re-read it
    assert kvs[0].value == b"z" and revision == 12
    assert attempt.read_request(b"/other").range_options == {"revision": 12,
                                                             "serializable": True}
    assert attempt.committed(txn_response(13, True)) is True


def test_repeatable_reads_and_read_committed() -> None:
    repeatable = STMAttempt("repeatable_reads")
    repeatable.record(b"/r", range_response(9, (b"/r", b"x", 4)))
    repeatable.put("/w", "1")
    txn = repeatable.commit()
    assert compares(txn) == [(ops.EQUAL, ops.MOD, b"/r", None, 4)]  # no write guard
    assert txn.failure == []
    assert repeatable.committed(txn_response(10, False)) is False
    assert repeatable.known(b"/r") is not None  # same run: still known
    repeatable.reset()
    assert repeatable.known(b"/r") is None  # nothing prefetched: read again

    committed = STMAttempt("read_committed")
    committed.record(b"/r", range_response(9, (b"/r", b"x", 4)))
    committed.put("/w", "1")
    assert compares(committed.commit()) == []
