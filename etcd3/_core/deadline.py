"""Timeouts and deadlines: one validation, one clock, one "not given" sentinel.

A *timeout* is what a caller passes (seconds, or None for "no limit"); a
:class:`Deadline` is the moment that timeout ends, on the monotonic clock. Every
part of the client (unary calls and their retries, the read batcher, locks,
elections, one-shot watches) turns a timeout into a Deadline here, so they agree on
what a valid timeout is and how much time is left.

:data:`UNSET` is the default of every ``timeout=`` parameter that falls back to the
client's own timeout; its type :data:`Unset` lets signatures say so::

    def get(self, key: str, *, timeout: Union[float, None, Unset] = UNSET) -> ...
"""

from __future__ import annotations

import enum
import numbers
import time
from typing import Final, Iterable, Literal, Optional, Union


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


#: "No timeout given": use the default (the client's timeout, a lock's own ...).
UNSET: Final = _Unset.UNSET
#: The type of :data:`UNSET`, for signatures.
Unset = Literal[_Unset.UNSET]
#: A ``timeout=`` argument: seconds, None (no deadline), or UNSET (the default).
Timeout = Union[float, None, Unset]


def check_timeout(timeout: object, *, zero_ok: bool = True, name: str = "timeout"
                  ) -> Optional[float]:
    """``timeout`` as seconds (a float), or None for "no deadline".

    :param zero_ok: whether 0 is allowed (a lock's "try once"); unary calls and the
        client's default need time to do anything and refuse it.
    :raises TypeError: not a number (a bool is not a number of seconds).
    :raises ValueError: negative (or 0 when not ``zero_ok``).
    """
    if timeout is None:
        return None
    if type(timeout) is not float and type(timeout) is not int and (
            isinstance(timeout, bool) or not isinstance(timeout, numbers.Real)):
        raise TypeError(f"{name} must be a number of seconds or None, "
                        f"not {type(timeout).__name__}")
    seconds = float(timeout)
    if seconds < 0 or (seconds == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        raise ValueError(f"{name} must be {bound} seconds or None")
    return seconds


class Deadline:
    """When a call, or a wait, must be over: an instant on the monotonic clock, or
    never. Immutable; cheap enough to make one per call.

    Build one with :meth:`after` (from a timeout) or :data:`NEVER`.
    """

    __slots__ = ("at",)

    at: Optional[float]
    """The monotonic instant (``time.monotonic()`` scale), or None: never."""

    def __init__(self, at: Optional[float]) -> None:
        _set_at(self, at)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Deadline is immutable")

    @classmethod
    def after(cls, timeout: object, *, zero_ok: bool = True,
              now: Optional[float] = None) -> Deadline:
        """The deadline ``timeout`` seconds from ``now`` (default: the monotonic
        clock now); None gives :data:`NEVER`.

        :raises TypeError: ``timeout`` is not a number or None.
        :raises ValueError: it is negative (or 0 when not ``zero_ok``).
        """
        # Every call makes one: the common case (a positive int or float) goes first.
        if (type(timeout) is float or type(timeout) is int) and timeout > 0:
            seconds: float = timeout
        else:
            checked = check_timeout(timeout, zero_ok=zero_ok)
            if checked is None:
                return NEVER
            seconds = checked
        deadline = _new(cls)
        _set_at(deadline, (_monotonic() if now is None else now) + seconds)
        return deadline

    @staticmethod
    def earliest(deadlines: Iterable[Deadline]) -> Deadline:
        """The first of ``deadlines`` to pass (:data:`NEVER` if there is none)."""
        first = NEVER
        for deadline in deadlines:
            at = deadline.at
            if at is not None and (first.at is None or at < first.at):
                first = deadline
        return first

    def remaining(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds left (never negative), or None when there is no deadline."""
        at = self.at
        if at is None:
            return None
        left = at - (_monotonic() if now is None else now)
        return left if left > 0.0 else 0.0

    def expired_at(self, now: float) -> bool:
        """True when the deadline has passed at ``now`` (monotonic seconds)."""
        at = self.at
        return at is not None and now >= at

    @property
    def expired(self) -> bool:
        """True once the deadline has passed (never for :data:`NEVER`)."""
        at = self.at
        return at is not None and _monotonic() >= at

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Deadline) and other.at == self.at

    def __hash__(self) -> int:
        return hash(self.at)

    def __repr__(self) -> str:
        if self.at is None:
            return "Deadline.NEVER"
        return f"<Deadline in {self.at - time.monotonic():.3f}s>"


_new = object.__new__
_monotonic = time.monotonic
#: Sets the slot of a new Deadline (its __setattr__ refuses to).
_set_at = Deadline.__dict__["at"].__set__

#: No deadline: waits as long as it takes.
NEVER: Final = Deadline(None)
