"""When concurrent single-key reads ride together in one read-only Txn (no I/O).

:class:`ReadBatchPolicy` counts the reads on the wire and queues the others; it says
whether a read may go out at once, which queued reads leave together when a slot
frees up, how long a queued read may wait before it goes out alone, and whether a
finished batch's slot waits (gathers) for its readers' next reads. The threaded
:class:`etcd3._sync.read_batch.ReadBatcher` calls it under its lock and does the
waiting and the calls; see that module for the why of each rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, List, Optional, TypeVar

T = TypeVar("T")

#: The longest round trip a sample counts for: a call that hung (a frozen member)
#: must not make queued reads wait long.
MAX_ROUND_TRIP_SAMPLE = 0.25  # seconds

if TYPE_CHECKING:
    from .stats import Stats


class ReadBatchPolicy(Generic[T]):
    """Slots, queue and gathering state of one client's read batching.

    :param max_in_flight: reads (single or batched) allowed on the wire before
        further reads are queued.
    :param max_batch: reads per batch (halved when the server refuses a batch as too
        large).
    :param max_wait: seconds a queued read waits before it is sent on its own (at
        least three recent round trips).
    :param gather: seconds a finished batch's slot may wait for its readers' next
        reads (0 turns gathering off).
    :raises ValueError: ``max_in_flight`` or ``max_batch`` is below 1.
    """

    #: Told of each batch sent (see :mod:`etcd3.observability`).
    recorder: Optional[Stats] = None

    #: Gathering turns itself off after this many gathers in a row time out ...
    GATHER_MISSES_TO_PAUSE = 4
    #: ... and is tried again once in this many batches.
    GATHER_RETRY_EVERY = 32

    def __init__(self, *, max_in_flight: int = 1, max_batch: int = 64,
                 max_wait: float = 0.02, gather: float = 0.0003) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be >= 1")
        self.max_in_flight = max_in_flight
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.gather = gather
        self.round_trip = 0.0  # moving average of a batch's round trip, seconds
        self.in_flight = 0
        self.pending: List[T] = []
        #: A finished batch's slot is waiting for its readers' next reads: meanwhile
        #: new reads queue for it instead of taking a free slot.
        self.gathering = False
        self.gather_target = 0
        self.gather_misses = 0
        self.batches = 0

    def reset(self) -> None:
        """Forget the reads in flight and queued (they belong to another process)."""
        self.in_flight = 0
        self.pending = []
        self.gathering = False

    def try_send(self) -> bool:
        """True (a slot is taken) when a new read may go out at once; False: queue it
        (every slot is busy, or a slot is gathering: the read joins its batch)."""
        if self.in_flight < self.max_in_flight and not self.gathering:
            self.in_flight += 1
            return True
        return False

    def enqueue(self, read: T) -> None:
        """Queue ``read`` until a slot frees up."""
        self.pending.append(read)

    def gathered_enough(self) -> bool:
        """True when a gathering slot has as many queued reads as it waits for."""
        return len(self.pending) >= self.gather_target

    def wait_limit(self) -> float:
        """Seconds a queued read waits for a slot before it goes out alone."""
        return max(self.max_wait, 3 * self.round_trip)

    def withdraw(self, read: T) -> None:
        """Take the queued ``read`` out of the queue (it goes out alone)."""
        self.pending.remove(read)

    def next_batch(self) -> Optional[List[T]]:
        """A slot freed up: the queued reads that leave in it now (at most
        ``max_batch``), or None when none wait or another slot is gathering them (the
        slot is released)."""
        if not self.pending or self.gathering:
            self.in_flight -= 1
            return None
        batch = self.pending[:self.max_batch]
        del self.pending[:self.max_batch]
        if self.recorder is not None:
            self.recorder.batch("read", len(batch))
        return batch

    def answered(self, seconds: float, size: int = 1) -> None:
        """A call of the batcher carrying ``size`` reads succeeded in ``seconds``."""
        if self.recorder is not None:
            self.recorder.read_batch_answered(size, seconds)
        sample = min(seconds, MAX_ROUND_TRIP_SAMPLE)
        self.round_trip += (sample - self.round_trip) / 8

    def too_many_ops(self, batch_size: int) -> None:
        """The server refused a batch of ``batch_size`` reads as too many ops."""
        self.max_batch = max(1, batch_size // 2)

    def start_gathering(self, answered: int) -> bool:
        """A batch of ``answered`` reads was answered: True when its slot should wait
        (at most ``gather`` seconds) until :meth:`gathered_enough`."""
        self.batches += 1
        if self.gathering or self.gather <= 0 or (self.gather_misses >= self.GATHER_MISSES_TO_PAUSE
                                and self.batches % self.GATHER_RETRY_EVERY):
            return False
        target = min(len(self.pending) + answered, self.max_batch)
        if len(self.pending) >= target:
            return False
        self.gather_target = target
        self.gathering = True
        return True

    def gathering_ended(self, gathered: bool) -> None:
        """A gathering slot got its reads (``gathered``) or timed out."""
        self.gathering = False
        self.gather_misses = 0 if gathered else self.gather_misses + 1
