"""Deadline, timeout validation and the UNSET sentinel (etcd3._core.deadline)."""

from __future__ import annotations

import copy
import pickle
import time
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

import etcd3
from etcd3._core.deadline import NEVER, UNSET, Deadline, check_timeout


@pytest.mark.parametrize("value", [0.5, 1, 10**6, Fraction(1, 4), float("inf")])
def test_numbers_are_timeouts(value: Any) -> None:
    assert check_timeout(value) == float(value)
    assert isinstance(check_timeout(value), float)


def test_none_is_no_deadline() -> None:
    assert check_timeout(None) is None
    assert Deadline.after(None) is NEVER
    assert NEVER.remaining() is None
    assert not NEVER.expired


@pytest.mark.parametrize("value", ["1", b"1", True, False, [1], Decimal("1"), object()])
def test_non_numbers_are_type_errors(value: Any) -> None:
    with pytest.raises(TypeError, match="timeout must be a number of seconds or None, not"):
        check_timeout(value)
    with pytest.raises(TypeError):
        Deadline.after(value)


def test_negative_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"timeout must be >= 0 seconds or None"):
        check_timeout(-1)
    with pytest.raises(ValueError, match=r"timeout must be > 0 seconds or None"):
        check_timeout(-0.5, zero_ok=False)


def test_zero_is_a_choice_of_the_caller() -> None:
    # A lock's acquire(timeout=0) tries once; a call needs time and refuses 0.
    assert check_timeout(0) == 0.0
    assert Deadline.after(0).expired
    with pytest.raises(ValueError, match=r"timeout must be > 0 seconds or None"):
        check_timeout(0, zero_ok=False)
    with pytest.raises(ValueError, match="unreachable_timeout must be"):
        check_timeout(0, zero_ok=False, name="unreachable_timeout")


def test_remaining_counts_down_and_stops_at_zero() -> None:
    deadline = Deadline.after(10, now=100.0)
    assert deadline.at == 110.0
    assert deadline.remaining(now=104.0) == 6.0
    assert deadline.remaining(now=120.0) == 0.0
    assert not deadline.expired_at(109.9)
    assert deadline.expired_at(110.0)
    live = Deadline.after(60)
    left = live.remaining()
    assert left is not None and 59 < left <= 60
    assert not live.expired
    assert Deadline(time.monotonic() - 1).expired


def test_earliest() -> None:
    a, b = Deadline(5.0), Deadline(3.0)
    assert Deadline.earliest([a, NEVER, b]) is b
    assert Deadline.earliest([NEVER, NEVER]) is NEVER
    assert Deadline.earliest([]) is NEVER


def test_deadline_is_immutable_and_a_value() -> None:
    deadline = Deadline(5.0)
    with pytest.raises(AttributeError):
        deadline.at = 6.0  # type: ignore[misc]
    assert deadline == Deadline(5.0) and deadline != Deadline(6.0)
    assert hash(deadline) == hash(Deadline(5.0))
    assert deadline != 5.0
    assert repr(NEVER) == "Deadline.NEVER"
    assert "Deadline in" in repr(deadline)


def test_unset_is_one_sentinel() -> None:
    assert repr(UNSET) == "UNSET"
    assert copy.copy(UNSET) is UNSET and copy.deepcopy(UNSET) is UNSET
    assert pickle.loads(pickle.dumps(UNSET)) is UNSET
    from etcd3._sync.base import UNSET as base_unset

    assert base_unset is UNSET


def test_per_call_timeout_is_validated_before_any_connection() -> None:
    with etcd3.client(host="127.0.0.1", port=1) as client:
        for bad, error in ((0, ValueError), (-1, ValueError), ("1", TypeError)):
            with pytest.raises(error):
                client.get("/k", timeout=bad)
    with pytest.raises(ValueError, match=r"timeout must be > 0 seconds or None"):
        etcd3.client(timeout=0)
