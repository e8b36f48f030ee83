"""When each lease's keepalive is due, and when a lease counts as lost (no I/O).

The etcd Go client's ``lease.go`` model: each lease is renewed at a third of its TTL,
an unanswered keepalive is re-sent every :data:`RESEND_INTERVAL` seconds, and a lease
is lost when the server says it is gone (TTL <= 0) or when no reply renewed it for a
whole TTL. A stream whose oldest unanswered keepalive is older than
:data:`MIN_STALL` (or a third of the shortest TTL, if longer) is stalled: its member
is frozen, and the driver moves the stream. Time is always passed in (monotonic
seconds); a driver opens the stream, sends what :meth:`KeepAliveSchedule.due` returns
and feeds the replies to :meth:`KeepAliveSchedule.answered`.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

if TYPE_CHECKING:
    from .stats import Stats

#: Re-send cadence of an unanswered keepalive (Go's 500 ms loop).
RESEND_INTERVAL = 0.5
#: Longest pause of the scheduler; it also bounds how late a missed deadline is seen.
MAX_TICK = 0.5
#: An unanswered keepalive older than this (or a third of the shortest TTL, if
#: longer) means the stream's member is frozen: the stream moves to another one.
MIN_STALL = 1.0


class LeaseEntry:
    """One kept-alive lease: when its next keepalive is due and until when it is
    known to be alive. ``owner`` is the driver's (e.g. the lease and its callback)."""

    __slots__ = ("lease_id", "ttl", "owner", "next_send", "deadline")

    def __init__(self, lease_id: int, ttl: int, now: float, owner: Any = None) -> None:
        self.lease_id = lease_id
        self.ttl = max(int(ttl), 1)
        self.owner = owner
        self.next_send = now
        self.deadline = now + self.ttl


class StreamHealth:
    """Keepalives sent and answered on one stream, and since when one is unanswered."""

    __slots__ = ("sent", "received", "pending_since")

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0
        self.pending_since: Optional[float] = None

    def sent_one(self, now: float) -> None:
        if self.sent == self.received:
            self.pending_since = now
        self.sent += 1

    def answered(self, now: float) -> None:
        self.received += 1
        self.pending_since = None if self.received >= self.sent else now


class KeepAliveSchedule:
    """The kept-alive leases of one client and when their stream may be reopened."""

    def __init__(self, recorder: Optional[Stats] = None) -> None:
        #: Told of stream failures and lost leases (see :mod:`etcd3.observability`).
        self.recorder = recorder
        self.entries: Dict[int, LeaseEntry] = {}
        #: Stream openings (or streams) that failed in a row.
        self.failures = 0
        #: The stream may not be reopened before this time.
        self.reopen_at = 0.0

    def add(self, lease_id: int, ttl: int, now: float, owner: Any = None) -> None:
        """Keep ``lease_id`` alive from ``now`` (its first keepalive is due at once)."""
        self.entries[lease_id] = LeaseEntry(lease_id, ttl, now, owner)

    def remove(self, lease_id: int) -> Optional[LeaseEntry]:
        """Stop keeping ``lease_id`` alive; its entry, or None if it was not kept."""
        return self.entries.pop(lease_id, None)

    def alive_until(self, lease_id: int) -> Optional[float]:
        """The time until which ``lease_id`` is known to be alive (its last renewal
        plus its TTL), or None when it is not kept alive."""
        entry = self.entries.get(lease_id)
        return None if entry is None else entry.deadline

    def pop_expired(self, now: float) -> List[LeaseEntry]:
        """The leases no reply renewed for a whole TTL (no longer kept alive)."""
        expired = [entry for entry in self.entries.values() if entry.deadline <= now]
        for entry in expired:
            del self.entries[entry.lease_id]
        if expired and self.recorder is not None:
            self.recorder.leases_lost_now(len(expired))
        return expired

    def due(self, now: float, health: StreamHealth) -> List[int]:
        """The leases whose keepalive is to be sent now on the stream ``health``
        counts for (each is re-sent after :data:`RESEND_INTERVAL` if unanswered)."""
        due = []
        for lease_id, entry in self.entries.items():
            if entry.next_send <= now:
                health.sent_one(now)
                entry.next_send = now + RESEND_INTERVAL
                due.append(lease_id)
        return due

    def answered(self, lease_id: int, ttl: int, now: float,
                 health: StreamHealth) -> Optional[LeaseEntry]:
        """A reply renewed ``lease_id`` for ``ttl`` seconds; returns its entry if the
        lease is gone (``ttl`` <= 0: it is no longer kept alive)."""
        health.answered(now)
        self.failures = 0
        entry = self.entries.get(lease_id)
        if entry is None:
            return None
        if ttl <= 0:
            if self.recorder is not None:
                self.recorder.leases_lost_now(1)
            return self.entries.pop(lease_id)
        entry.deadline = now + ttl
        entry.next_send = now + ttl / 3.0
        return None

    def stalled(self, health: StreamHealth, now: float) -> bool:
        """True when the stream's oldest unanswered keepalive is too old."""
        if health.pending_since is None or not self.entries:
            return False
        shortest = min(entry.ttl for entry in self.entries.values())
        return now - health.pending_since > max(MIN_STALL, shortest / 3.0)

    def should_open(self, now: float) -> bool:
        """True when leases need a stream and one may be opened now."""
        return bool(self.entries) and now >= self.reopen_at

    def stream_lost(self, now: float, backoff: Callable[[int], float]) -> None:
        """The stream broke or was dropped: reopen after ``backoff(failures + 1)``
        seconds at most :data:`RESEND_INTERVAL`, and send every keepalive then."""
        if not self.entries:
            return
        if self.recorder is not None:
            self.recorder.keepalive_failed()
        self.failures += 1
        self.reopen_at = now + min(RESEND_INTERVAL, backoff(self.failures + 1))
        for entry in self.entries.values():
            entry.next_send = min(entry.next_send, self.reopen_at)

    def open_failed(self, now: float, backoff: Callable[[int], float]) -> None:
        """Opening the stream failed: try again after ``backoff(failures + 1)``
        seconds at most :data:`RESEND_INTERVAL`."""
        if self.recorder is not None:
            self.recorder.keepalive_failed()
        self.failures += 1
        self.reopen_at = now + min(RESEND_INTERVAL, backoff(self.failures + 1))

    def next_wakeup(self, now: float, streaming: bool, opening: bool = False) -> float:
        """Seconds until the next keepalive, expiry or reopening is due (at most
        :data:`MAX_TICK`); ``streaming``: a stream is open; ``opening``: a stream is
        being opened meanwhile (only expiries are due until it is open)."""
        wake = now + MAX_TICK
        for entry in self.entries.values():
            wake = min(wake, entry.deadline)
            if streaming:
                wake = min(wake, entry.next_send)
        if not streaming and not opening and self.entries:
            wake = min(wake, self.reopen_at)
        return max(wake - now, 0.0)


class LeaseOwner:
    """Who keeps a lease alive: the lease object, held weakly (a dropped Lease, or
    lock, must not keep its client alive through a driver's engine), and the
    callback to tell when it is lost."""

    __slots__ = ("lease_ref", "on_expired")

    def __init__(self, lease: Any, on_expired: Optional[Callable[[Any], Any]]) -> None:
        self.lease_ref = weakref.ref(lease)
        self.on_expired = on_expired
