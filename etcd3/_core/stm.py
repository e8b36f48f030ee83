"""Software transactional memory (Go's ``concurrency.STM``) as steps that do no I/O.

:class:`STMAttempt` is what one run of an STM ``apply`` function read and wrote.
For each key it reads, it says whether the answer is already known
(:meth:`STMAttempt.known`) or which :class:`~etcd3._core.ops.Get` to make
(:meth:`STMAttempt.read_request`), and records the response
(:meth:`STMAttempt.record`); at the end it builds the commit transaction
(:meth:`STMAttempt.commit`) and reads its response (:meth:`STMAttempt.committed`).
A driver (threads or asyncio) runs ``apply`` and makes the requests, retrying the
whole run until a commit succeeds.

Isolation levels, from strongest (see :mod:`etcd3.stm`): ``serializable_snapshot``,
``serializable``, ``repeatable_reads``, ``read_committed``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from .ops import BaseCompare, Delete, Get, Mod, Put, Txn

ISOLATIONS = ("serializable_snapshot", "serializable", "repeatable_reads", "read_committed")
_SNAPSHOT_READS = ("serializable_snapshot", "serializable")

#: A read: the key-values found (zero or one) and the store revision of the read.
Read = Tuple[List[Any], int]


def check_isolation(isolation: str) -> str:
    """``isolation`` if it is one of :data:`ISOLATIONS`.

    :raises ValueError: unknown isolation level.
    """
    if isolation not in ISOLATIONS:
        raise ValueError(f"unknown isolation {isolation!r}; use one of "
                         + ", ".join(ISOLATIONS))
    return isolation


class STMAttempt:
    """The reads and buffered writes of the current run of ``apply``."""

    def __init__(self, isolation: str) -> None:
        self.isolation = check_isolation(isolation)
        self.reads: Dict[bytes, Read] = {}
        self.writes: Dict[bytes, Tuple[Optional[bytes], Any]] = {}
        self.prefetched: Dict[bytes, Read] = {}
        self.snapshot: Optional[int] = None
        self._committing: List[bytes] = []

    def reset(self) -> None:
        """Start a new run (prefetched reads of the last failed commit are kept)."""
        self.reads = {}
        self.writes = {}
        self.snapshot = None

    # -- reads ------------------------------------------------------------------------

    def written(self, key: bytes) -> Tuple[bool, Optional[bytes]]:
        """``(True, value)`` when this run wrote ``key`` (value None: deleted)."""
        if key in self.writes:
            return True, self.writes[key][0]
        return False, None

    def known(self, key: bytes) -> Optional[Read]:
        """The read of ``key`` if it needs no request (read before in this run, or
        prefetched by the last failed commit)."""
        read = self.reads.get(key)
        if read is not None:
            return read
        read = self.prefetched.pop(key, None)
        if read is not None:
            self._remember(key, read)
        return read

    def read_request(self, key: bytes) -> Get:
        """The read to make for ``key`` when :meth:`known` said None."""
        if self.snapshot is not None:  # later reads of a snapshot isolation
            return Get(key, revision=self.snapshot, serializable=True)
        if self.isolation not in _SNAPSHOT_READS:
            return Get(key, serializable=True)
        return Get(key)

    def record(self, key: bytes, response: Any) -> Read:
        """The RangeResponse of :meth:`read_request`; returns the read."""
        read: Read = (list(response.kvs), int(response.header.revision))
        self._remember(key, read)
        return read

    def _remember(self, key: bytes, read: Read) -> None:
        if self.isolation in _SNAPSHOT_READS and self.snapshot is None:
            self.snapshot = read[1]
        self.reads[key] = read

    # -- writes -----------------------------------------------------------------------

    def put(self, key: Any, value: Any, lease: Any = None) -> None:
        op = Put(key, value, lease=lease)
        self.writes[op.key] = (op.value, op)

    def delete(self, key: Any) -> None:
        op = Delete(key)
        self.writes[op.key] = (None, op)

    # -- commit -----------------------------------------------------------------------

    def _conflicts(self) -> List[BaseCompare]:
        if self.isolation == "read_committed":
            return []
        compares: List[BaseCompare] = [
            Mod(key) == (kvs[0].mod_revision if kvs else 0)
            for key, (kvs, _) in self.reads.items()]
        if self.isolation == "serializable_snapshot":
            first = min((revision for _, revision in self.reads.values()),
                        default=2**63 - 2)
            compares += [Mod(key) < first + 1 for key in self.writes]
        return compares

    def commit(self) -> Txn:
        """The transaction that commits the writes if nothing read changed (on
        failure it re-reads the keys read, for the next run)."""
        self._committing = list(self.reads)
        refetch = ([Get(key) for key in self._committing]
                   if self.isolation in _SNAPSHOT_READS else [])
        return Txn(self._conflicts(), [op for _, op in self.writes.values()], refetch)

    def committed(self, response: Any) -> bool:
        """The TxnResponse of :meth:`commit`: True when committed; False on a
        conflict (then run ``apply`` again, after :meth:`reset`)."""
        if response.succeeded:
            return True
        if self.isolation in _SNAPSHOT_READS:
            revision = int(response.header.revision)
            self.prefetched = {
                key: (list(response.responses[index].response_range.kvs), revision)
                for index, key in enumerate(self._committing)}
        return False
