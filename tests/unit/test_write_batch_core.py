"""The write coalescing policy, driven without a server: slots, per-key order,
etcd's limits, and what happens when the server refuses a batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import pytest

from etcd3._core.write_batch_policy import OP_OVERHEAD, WriteBatchPolicy


@dataclass(eq=False)
class W:
    key: bytes
    size: int = 10
    name: str = ""


def _keys(batch: List[W]) -> List[bytes]:
    return [w.key for w in batch]


def test_a_lone_writer_goes_at_once_and_frees_its_slot() -> None:
    policy: WriteBatchPolicy[W] = WriteBatchPolicy(max_in_flight=1)
    for _ in range(3):
        assert policy.try_send(b"a")
        assert policy.in_flight == 1 and policy.busy == {b"a"}
        policy.done(b"a")
        policy.release()
        assert policy.next_batch() is None
    assert policy.in_flight == 0 and policy.sent_alone == 3 and policy.batches == 0


def test_writes_beyond_the_slots_queue_and_leave_together() -> None:
    policy: WriteBatchPolicy[W] = WriteBatchPolicy(max_in_flight=2)
    assert policy.try_send(b"a") and policy.try_send(b"b")
    assert not policy.try_send(b"c")
    queued = [W(b"c"), W(b"d"), W(b"e")]
    for w in queued:
        policy.enqueue(w)
    assert policy.next_batch() is None  # no slot free yet
    policy.done(b"a")
    policy.release()
    batch = policy.next_batch()
    assert batch == queued
    assert policy.in_flight == 2 and policy.busy == {b"b", b"c", b"d", b"e"}
    assert policy.pending == [] and policy.queued == {}
    assert policy.batches == 1 and policy.batched_writes == 3
    assert policy.next_batch() is None


def test_a_key_with_a_write_on_the_wire_or_queued_waits_even_with_a_free_slot() -> None:
    policy: WriteBatchPolicy[W] = WriteBatchPolicy(max_in_flight=4)
    assert policy.try_send(b"k")
    assert not policy.try_send(b"k")  # one write per key on the wire
    second = W(b"k", name="second")
    policy.enqueue(second)
    assert policy.next_batch() is None  # free slots, but its key is busy
    assert not policy.try_send(b"k")  # an earlier write to k is queued
    third = W(b"k", name="third")
    policy.enqueue(third)
    assert policy.try_send(b"other")  # other keys are not held up
    policy.done(b"k")
    policy.release()
    assert policy.next_batch() == [second]  # in order, one per key
    assert policy.next_batch() is None
    policy.done(b"k")
    policy.release()
    assert policy.next_batch() == [third]


def test_keys_are_distinct_within_a_batch_and_keep_their_order_across_batches() -> None:
    policy: WriteBatchPolicy[W] = WriteBatchPolicy(max_in_flight=1)
    assert policy.try_send(b"x")
    writes = [W(b"a", name="a1"), W(b"b", name="b1"), W(b"a", name="a2"),
              W(b"c", name="c1"), W(b"a", name="a3"), W(b"b", name="b2")]
    for w in writes:
        policy.enqueue(w)
    policy.done(b"x")
    policy.release()
    sent: List[List[str]] = []
    while True:
        batch = policy.next_batch()
        if batch is None:
            break
        assert len(set(_keys(batch))) == len(batch)
        sent.append([w.name for w in batch])
        for w in batch:
            policy.done(w.key)
        policy.release()
    assert sent == [["a1", "b1", "c1"], ["a2", "b2"], ["a3"]]
    assert policy.in_flight == 0 and not policy.busy and not policy.queued


def test_a_batch_holds_at_most_max_ops_writes() -> None:
    policy: WriteBatchPolicy[W] = WriteBatchPolicy(max_in_flight=1, max_ops=128)
    assert policy.try_send(b"first")
    for i in range(300):
        policy.enqueue(W(b"k%d" % i))
    policy.done(b"first")
    policy.release()
    sizes = []
    while True:
        batch = policy.next_batch()
        if batch is None:
            break
        sizes.append(len(batch))
        for w in batch:
            policy.done(w.key)
        policy.release()
    assert sizes == [128, 128, 44]


def test_a_batch_stays_under_max_bytes_and_an_oversized_write_leaves_alone() -> None:
    policy: WriteBatchPolicy[W] = WriteBatchPolicy(max_in_flight=1, max_bytes=1000)
    assert policy.try_send(b"first")
    small = [W(b"s%d" % i, size=400 - OP_OVERHEAD) for i in range(3)]
    huge = W(b"huge", size=5000)
    for w in small[:2] + [huge] + small[2:]:
        policy.enqueue(w)
    policy.done(b"first")
    policy.release()
    batches = []
    while True:
        batch = policy.next_batch()
        if batch is None:
            break
        batches.append(batch)
        assert len(batch) == 1 or policy.batch_bytes(batch) <= 1000
        for w in batch:
            policy.done(w.key)
        policy.release()
    assert batches == [small[:2], [huge], small[2:]]  # queue order kept


def test_a_refused_batch_lowers_the_limits() -> None:
    policy: WriteBatchPolicy[W] = WriteBatchPolicy(max_in_flight=1)
    policy.too_many_ops(100)
    assert policy.max_ops == 50
    policy.too_many_ops(200)  # never raised again
    assert policy.max_ops == 50
    policy.too_large(600_000)
    assert policy.max_bytes == 300_000
    policy.too_many_ops(1)
    assert policy.max_ops == 1


def test_a_withdrawn_write_leaves_the_queue_and_its_key() -> None:
    policy: WriteBatchPolicy[W] = WriteBatchPolicy(max_in_flight=1)
    assert policy.try_send(b"x")
    gone, kept = W(b"a"), W(b"b")
    policy.enqueue(gone)
    policy.enqueue(kept)
    policy.withdraw(gone)
    assert policy.queued == {b"b": 1}
    policy.done(b"x")
    policy.release()
    assert policy.next_batch() == [kept]
    assert policy.try_send(b"a") is False  # the slot is held by the batch of b
    policy.done(b"b")
    policy.release()
    assert policy.try_send(b"a")


def test_reset_forgets_everything() -> None:
    policy: WriteBatchPolicy[W] = WriteBatchPolicy(max_in_flight=1)
    assert policy.try_send(b"a")
    policy.enqueue(W(b"b"))
    policy.reset()
    assert policy.in_flight == 0 and not policy.pending and not policy.busy
    assert policy.try_send(b"b")


@pytest.mark.parametrize("args", [dict(max_in_flight=0), dict(max_ops=0),
                                  dict(max_bytes=0)])
def test_limits_below_one_are_refused(args: Dict[str, int]) -> None:
    with pytest.raises(ValueError):
        WriteBatchPolicy(**{"max_in_flight": 1, **args})
