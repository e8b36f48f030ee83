"""When concurrent single-key writes ride together in one Txn without compares (no I/O).

:class:`WriteBatchPolicy` counts the writes (lone or batched) on the wire and queues
the others; it says whether a new write may go out at once and which queued writes
leave together when a slot frees up. Its rules (issue 16):

* A lone writer is never delayed: with a slot free, and no earlier write to the same
  key queued or on the wire, a write goes out at once, as the plain Put/DeleteRange.
* Writes to one key keep their order: at most one write per key is on the wire at a
  time, and queued writes to a key leave in the order they were queued. (So two
  writes to one key never share a batch: etcd refuses a Txn that writes a key twice.)
* A batch respects etcd's limits: at most ``max_ops`` ops (etcd's --max-txn-ops, 128
  by default) and about ``max_bytes`` of keys and values (below etcd's
  --max-request-bytes, 1.5 MiB by default, with a margin for the encoding). A queued
  write larger than ``max_bytes`` on its own leaves alone.
* When the server refuses a batch as too many ops or too large, the limit is lowered
  below that batch for the writes that follow.

The asyncio :class:`etcd3.aio._write_batch.AioWriteBatcher` calls it from its event
loop (a threaded driver would call it under its lock) and does the waiting and the
calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Generic, List, Optional, Protocol, Set, TypeVar

#: Bytes a write adds to a Txn beyond its key and value (tags, lengths, lease, flags).
OP_OVERHEAD = 32
#: etcd's default --max-txn-ops.
DEFAULT_MAX_OPS = 128
#: Keys and values per batch: etcd's default --max-request-bytes is 1.5 MiB (about
#: 1.57 MB); 1 MiB leaves room for the encoding and for servers set a little lower.
DEFAULT_MAX_BYTES = 1 << 20

if TYPE_CHECKING:
    from .stats import Stats


def checked_in_flight(value: Optional[int]) -> Optional[int]:
    """The client option ``write_batch_in_flight``, checked: None (coalescing off) or
    an int >= 1.

    :raises ValueError: anything else.
    """
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ValueError(f"write_batch_in_flight must be None or an int >= 1, "
                         f"not {value!r}")
    return value


class WriteLike(Protocol):
    """What the policy reads of a write: the key it writes and its size in bytes."""

    @property
    def key(self) -> bytes: ...

    @property
    def size(self) -> int: ...


W = TypeVar("W", bound=WriteLike)


class WriteBatchPolicy(Generic[W]):
    """Slots, queue and per-key order of one client's write coalescing.

    :param max_in_flight: writes (single or batched) allowed on the wire before
        further writes are queued.
    :param max_ops: writes per batch.
    :param max_bytes: keys and values per batch, in bytes (see :data:`OP_OVERHEAD`).
    :raises ValueError: a limit is below 1.
    """

    #: Told of each batch sent (see :mod:`etcd3.observability`).
    recorder: Optional[Stats] = None

    def __init__(self, *, max_in_flight: int = 1, max_ops: int = DEFAULT_MAX_OPS,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_in_flight < 1 or max_ops < 1 or max_bytes < 1:
            raise ValueError("max_in_flight, max_ops and max_bytes must be >= 1")
        self.max_in_flight = max_in_flight
        self.max_ops = max_ops
        self.max_bytes = max_bytes
        self.in_flight = 0
        self.pending: List[W] = []
        #: Keys with a write on the wire (one each at most).
        self.busy: Set[bytes] = set()
        #: Queued writes per key.
        self.queued: Dict[bytes, int] = {}
        #: Counters, for tests and tuning: writes sent at once, batches sent (two
        #: writes or more), writes they carried.
        self.sent_alone = 0
        self.batches = 0
        self.batched_writes = 0

    def reset(self) -> None:
        """Forget every write in flight and queued."""
        self.in_flight = 0
        self.pending = []
        self.busy = set()
        self.queued = {}

    def try_send(self, key: bytes) -> bool:
        """True when a new write to ``key`` may go out at once (a slot is taken and
        ``key`` is marked busy); False: queue it with :meth:`enqueue`."""
        if (self.in_flight < self.max_in_flight and key not in self.busy
                and key not in self.queued):
            self.in_flight += 1
            self.busy.add(key)
            self.sent_alone += 1
            return True
        return False

    def enqueue(self, write: W) -> None:
        """Queue ``write`` until a slot frees up and its key is not busy."""
        self.pending.append(write)
        key = write.key
        self.queued[key] = self.queued.get(key, 0) + 1

    def withdraw(self, write: W) -> None:
        """Take the queued ``write`` out of the queue (its caller gave up)."""
        self.pending.remove(write)
        self._unqueue(write.key)

    def _unqueue(self, key: bytes) -> None:
        left = self.queued[key] - 1
        if left:
            self.queued[key] = left
        else:
            del self.queued[key]

    def done(self, key: bytes) -> None:
        """The write to ``key`` on the wire has finished (either way)."""
        self.busy.discard(key)

    def release(self) -> None:
        """A slot is free again (its call finished)."""
        self.in_flight -= 1

    def next_batch(self) -> Optional[List[W]]:
        """The queued writes that leave together now, in queue order (a slot is taken
        for them and their keys are marked busy), or None when no slot is free or no
        queued write may leave (every one waits for a write to its key).

        Call it after :meth:`release` or :meth:`done` until it returns None.
        """
        if self.in_flight >= self.max_in_flight or not self.pending:
            return None
        batch: List[W] = []
        taken: Set[bytes] = set()
        blocked = self.busy
        size = 0
        keep: List[W] = []
        pending = self.pending
        for index, write in enumerate(pending):
            key = write.key
            if key in blocked or key in taken:
                keep.append(write)
                continue
            cost = write.size + OP_OVERHEAD
            if batch and size + cost > self.max_bytes:
                keep.extend(pending[index:])  # FIFO: the rest waits for the next one
                break
            batch.append(write)
            taken.add(key)
            size += cost
            if len(batch) >= self.max_ops:
                keep.extend(pending[index + 1:])
                break
        if not batch:
            return None
        self.pending = keep
        for key in taken:
            self._unqueue(key)
        self.busy |= taken
        self.in_flight += 1
        if len(batch) > 1:
            self.batches += 1
            self.batched_writes += len(batch)
        else:
            self.sent_alone += 1
        if self.recorder is not None:
            self.recorder.batch("write", len(batch))
        return batch

    def too_many_ops(self, batch_size: int) -> None:
        """The server refused a batch of ``batch_size`` writes as too many ops."""
        self.max_ops = max(1, min(self.max_ops, batch_size // 2))

    def too_large(self, batch_bytes: int) -> None:
        """The server refused a batch of ``batch_bytes`` (as counted here) as too
        large."""
        self.max_bytes = max(1, min(self.max_bytes, batch_bytes // 2))

    @staticmethod
    def batch_bytes(batch: List[W]) -> int:
        """The size of ``batch`` as the limits count it."""
        return sum(write.size + OP_OVERHEAD for write in batch)
