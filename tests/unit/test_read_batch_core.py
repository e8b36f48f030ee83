"""When concurrent reads ride together: the read-batch policy, step by step."""

from __future__ import annotations

import pytest

from etcd3._core.read_batch_policy import MAX_ROUND_TRIP_SAMPLE, ReadBatchPolicy


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        ReadBatchPolicy(max_in_flight=0)
    with pytest.raises(ValueError):
        ReadBatchPolicy(max_batch=0)


def test_reads_go_out_at_once_until_the_slots_are_taken() -> None:
    policy: ReadBatchPolicy[str] = ReadBatchPolicy(max_in_flight=2)
    assert policy.try_send() and policy.try_send()
    assert not policy.try_send()
    assert policy.in_flight == 2


def test_a_freed_slot_takes_the_queue_up_to_max_batch() -> None:
    policy: ReadBatchPolicy[str] = ReadBatchPolicy(max_in_flight=1, max_batch=3)
    assert policy.try_send()
    for read in "abcde":
        policy.enqueue(read)
    assert policy.next_batch() == ["a", "b", "c"]
    assert policy.in_flight == 1  # the slot went on to the batch
    assert policy.next_batch() == ["d", "e"]
    assert policy.next_batch() is None and policy.in_flight == 0


def test_a_read_that_waited_too_long_leaves_the_queue() -> None:
    policy: ReadBatchPolicy[str] = ReadBatchPolicy()
    policy.enqueue("a")
    policy.enqueue("b")
    policy.withdraw("a")
    assert policy.pending == ["b"]


def test_wait_limit_is_at_least_three_recent_round_trips() -> None:
    policy: ReadBatchPolicy[str] = ReadBatchPolicy(max_wait=0.02)
    assert policy.wait_limit() == 0.02
    for _ in range(100):
        policy.answered(0.05)
    assert policy.wait_limit() == pytest.approx(0.15, rel=0.01)
    for _ in range(100):
        policy.answered(30.0)  # a hung call counts as MAX_ROUND_TRIP_SAMPLE
    assert policy.wait_limit() == pytest.approx(3 * MAX_ROUND_TRIP_SAMPLE, rel=0.01)


def test_too_many_ops_halves_the_batch_size() -> None:
    policy: ReadBatchPolicy[str] = ReadBatchPolicy(max_batch=64)
    policy.too_many_ops(64)
    assert policy.max_batch == 32
    policy.too_many_ops(1)
    assert policy.max_batch == 1


def test_a_finished_batch_gathers_as_many_reads_as_it_answered() -> None:
    policy: ReadBatchPolicy[str] = ReadBatchPolicy(max_batch=64, gather=0.001)
    policy.enqueue("early")
    assert policy.start_gathering(answered=4)
    assert policy.gather_target == 5
    for read in "abc":
        policy.enqueue(read)
        assert not policy.gathered_enough()
    policy.enqueue("d")
    assert policy.gathered_enough()


def test_no_gathering_when_off_or_the_queue_is_already_full() -> None:
    off: ReadBatchPolicy[str] = ReadBatchPolicy(gather=0)
    assert not off.start_gathering(answered=8)
    full: ReadBatchPolicy[str] = ReadBatchPolicy(max_batch=2, gather=0.001)
    full.enqueue("a")
    full.enqueue("b")
    assert not full.start_gathering(answered=8)


def test_gathering_pauses_after_misses_and_is_retried_now_and_then() -> None:
    policy: ReadBatchPolicy[str] = ReadBatchPolicy(gather=0.001)
    for _ in range(policy.GATHER_MISSES_TO_PAUSE):
        assert policy.start_gathering(answered=2)
        policy.gathering_ended(gathered=False)
    tried = []
    for _ in range(2 * policy.GATHER_RETRY_EVERY):
        tried.append(policy.start_gathering(answered=2))
        if tried[-1]:
            policy.gathering_ended(gathered=False)
    assert tried.count(True) == 2  # once in every GATHER_RETRY_EVERY batches
    policy.gathering_ended(gathered=True)
    assert policy.gather_misses == 0 and policy.start_gathering(answered=2)


def test_while_a_slot_gathers_new_reads_join_its_batch() -> None:
    # 8 readers and 2 slots: a free slot must not split them into two halves that
    # take turns (each batch half as full, twice the server's work per read).
    policy: ReadBatchPolicy[str] = ReadBatchPolicy(max_in_flight=2, gather=0.001)
    assert policy.try_send()
    policy.enqueue("a")
    assert policy.start_gathering(answered=2)
    assert not policy.try_send()  # a slot is free, but the read joins the gathering
    policy.enqueue("b")
    assert not policy.start_gathering(answered=2)  # one slot gathers at a time
    assert policy.next_batch() is None and policy.in_flight == 0  # left to the gatherer
    assert policy.pending == ["a", "b"]
    policy.gathering_ended(gathered=True)
    assert policy.try_send()


def test_reset_forgets_reads_of_another_process() -> None:
    policy: ReadBatchPolicy[str] = ReadBatchPolicy(max_in_flight=1)
    policy.try_send()
    policy.enqueue("a")
    policy.reset()
    assert policy.in_flight == 0 and policy.pending == [] and policy.try_send()
