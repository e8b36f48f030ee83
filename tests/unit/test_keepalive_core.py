"""Lease keepalive scheduling, step by step, with time passed in."""

from __future__ import annotations

import pytest

from etcd3._core.keepalive_schedule import (
    MAX_TICK,
    MIN_STALL,
    RESEND_INTERVAL,
    KeepAliveSchedule,
    StreamHealth,
)


def backoff(attempt: int) -> float:
    return 0.1 * attempt


def test_first_keepalive_is_due_at_once_then_resent_until_answered() -> None:
    schedule = KeepAliveSchedule()
    health = StreamHealth()
    schedule.add(7, ttl=9, now=100.0)
    assert schedule.alive_until(7) == 109.0
    assert schedule.due(100.0, health) == [7]
    assert schedule.due(100.4, health) == []
    assert schedule.due(100.0 + RESEND_INTERVAL, health) == [7]
    assert health.sent == 2 and health.pending_since == 100.0


def test_reply_renews_for_the_ttl_and_next_send_is_a_third_of_it() -> None:
    schedule = KeepAliveSchedule()
    health = StreamHealth()
    schedule.add(7, ttl=9, now=100.0)
    schedule.due(100.0, health)
    assert schedule.answered(7, 30, 101.0, health) is None
    assert schedule.alive_until(7) == 131.0
    assert health.pending_since is None
    assert schedule.due(110.9, health) == []
    assert schedule.due(111.0, health) == [7]


def test_lease_gone_on_the_server_is_lost_at_once() -> None:
    schedule = KeepAliveSchedule()
    health = StreamHealth()
    schedule.add(7, ttl=9, now=0.0, owner="mine")
    schedule.due(0.0, health)
    gone = schedule.answered(7, 0, 0.1, health)
    assert gone is not None and gone.lease_id == 7 and gone.owner == "mine"
    assert schedule.alive_until(7) is None and schedule.entries == {}


def test_reply_for_an_unknown_lease_changes_nothing() -> None:
    schedule = KeepAliveSchedule()
    health = StreamHealth()
    schedule.failures = 3
    assert schedule.answered(99, 10, 0.0, health) is None
    assert schedule.failures == 0  # but the stream works


def test_lease_without_a_reply_for_its_whole_ttl_is_lost() -> None:
    schedule = KeepAliveSchedule()
    schedule.add(1, ttl=5, now=0.0)
    schedule.add(2, ttl=60, now=0.0)
    assert schedule.pop_expired(4.9) == []
    [lost] = schedule.pop_expired(5.0)
    assert lost.lease_id == 1 and list(schedule.entries) == [2]


def test_ttl_below_one_second_counts_as_one() -> None:
    schedule = KeepAliveSchedule()
    schedule.add(1, ttl=0, now=0.0)
    assert schedule.alive_until(1) == 1.0


def test_stream_is_stalled_when_a_keepalive_stays_unanswered_too_long() -> None:
    schedule = KeepAliveSchedule()
    health = StreamHealth()
    schedule.add(1, ttl=30, now=0.0)  # a third of the shortest TTL: 10 s
    schedule.due(0.0, health)
    assert not schedule.stalled(health, 10.0)
    assert schedule.stalled(health, 10.1)
    short = KeepAliveSchedule()
    short.add(1, ttl=1, now=0.0)
    fresh = StreamHealth()
    short.due(0.0, fresh)
    assert not short.stalled(fresh, MIN_STALL)
    assert short.stalled(fresh, MIN_STALL + 0.01)


def test_lost_stream_backs_off_and_sends_everything_on_reopening() -> None:
    schedule = KeepAliveSchedule()
    health = StreamHealth()
    schedule.add(1, ttl=30, now=0.0)
    schedule.due(0.0, health)
    schedule.answered(1, 30, 0.0, health)  # next send at 10.0
    assert schedule.should_open(0.0)
    schedule.stream_lost(1.0, backoff)
    assert schedule.failures == 1 and schedule.reopen_at == 1.2
    assert schedule.entries[1].next_send == 1.2
    assert not schedule.should_open(1.1) and schedule.should_open(1.2)
    schedule.open_failed(1.2, backoff)
    assert schedule.failures == 2 and schedule.reopen_at == pytest.approx(1.5)


def test_backoff_never_exceeds_the_resend_interval() -> None:
    schedule = KeepAliveSchedule()
    schedule.add(1, ttl=30, now=0.0)
    schedule.stream_lost(0.0, lambda attempt: 60.0)
    assert schedule.reopen_at == RESEND_INTERVAL


def test_nothing_to_keep_alive_needs_no_stream() -> None:
    schedule = KeepAliveSchedule()
    schedule.stream_lost(0.0, backoff)
    assert schedule.failures == 0 and not schedule.should_open(0.0)
    assert schedule.remove(1) is None


def test_next_wakeup_is_the_earliest_due_time_capped_at_a_tick() -> None:
    schedule = KeepAliveSchedule()
    assert schedule.next_wakeup(0.0, streaming=True) == MAX_TICK
    schedule.add(1, ttl=30, now=0.0)
    schedule.entries[1].next_send = 0.2
    assert schedule.next_wakeup(0.0, streaming=True) == 0.2
    # Without a stream nothing is sent: wake for the reopening instead.
    schedule.reopen_at = 0.3
    assert schedule.next_wakeup(0.0, streaming=False) == 0.3
    assert schedule.next_wakeup(1.0, streaming=False) == 0.0


def test_while_a_stream_opens_only_expiries_are_due() -> None:
    schedule = KeepAliveSchedule()
    schedule.add(1, ttl=3, now=0.0)
    schedule.reopen_at = 0.0  # due, but an opening is under way: no spinning
    assert schedule.next_wakeup(0.0, streaming=False, opening=True) == MAX_TICK
    assert schedule.next_wakeup(2.9, streaming=False, opening=True) == pytest.approx(0.1)
