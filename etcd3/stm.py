"""Software transactional memory over etcd (Go's ``concurrency.STM``).

``client.stm(apply)`` runs ``apply(stm)``: it reads keys with ``stm.get`` and buffers
writes with ``stm.put``/``stm.delete``; the writes are then committed in one
transaction guarded by what was read, and if another writer got in between,
``apply`` runs again on fresh data, until a commit succeeds::

    def transfer(stm):
        a, b = int(stm.get('/a')), int(stm.get('/b'))
        stm.put('/a', str(a - 10))
        stm.put('/b', str(b + 10))

    client.stm(transfer)

Isolation levels (Go's), from strongest:

- ``"serializable_snapshot"`` (default): every read is at the revision of the
  first read, and the commit fails if any key read or written changed since.
- ``"serializable"``: reads at the first read's revision; conflicts on keys read.
- ``"repeatable_reads"``: each key is read once per attempt; conflicts on keys read.
- ``"read_committed"``: no conflict checks (the writes are applied as they are).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, TypeVar, Union

from ._core.ops import BaseCompare, Delete, Get, Mod, Put, key_bytes
from ._sync import concurrency as cc
from ._sync.base import ServiceBase
from ._sync.client_api import KVClient

KeyType = Union[str, bytes]
T = TypeVar("T")

ISOLATIONS = ("serializable_snapshot", "serializable", "repeatable_reads", "read_committed")
_SNAPSHOT_READS = ("serializable_snapshot", "serializable")

#: A read: the key-values found (zero or one) and the store revision of the read.
_Read = Tuple[Any, int]


class STM:
    """What ``apply`` gets: transactional reads and buffered writes."""

    def __init__(self, client: KVClient, isolation: str) -> None:
        self._client = client
        self._isolation = isolation
        self._reads: Dict[bytes, _Read] = {}
        self._writes: Dict[bytes, Tuple[Optional[bytes], Any]] = {}
        self._prefetched: Dict[bytes, _Read] = {}
        self._snapshot: Optional[int] = None

    def get(self, key: KeyType) -> Optional[bytes]:
        """The value of ``key`` as this transaction sees it (None if absent)."""
        data = key_bytes(key)
        if data in self._writes:
            return self._writes[data][0]
        kvs, _ = self._fetch(data)
        return kvs[0].value if kvs else None

    def rev(self, key: KeyType) -> int:
        """The mod revision of ``key`` as read (0 if absent)."""
        kvs, _ = self._fetch(key_bytes(key))
        return int(kvs[0].mod_revision) if kvs else 0

    def put(self, key: KeyType, value: KeyType, lease: Any = None) -> None:
        """Set ``key`` to ``value`` when the transaction commits."""
        op = Put(key, value, lease=lease)
        self._writes[op.key] = (op.value, op)

    def delete(self, key: KeyType) -> None:
        """Delete ``key`` when the transaction commits."""
        op = Delete(key)
        self._writes[op.key] = (None, op)

    # -- machinery --------------------------------------------------------------------

    def _reset(self) -> None:
        self._reads = {}
        self._writes = {}
        self._snapshot = None

    def _fetch(self, key: bytes) -> _Read:
        read = self._reads.get(key)
        if read is not None:
            return read
        read = self._prefetched.pop(key, None)
        if read is None:
            options: Dict[str, Any] = {}
            if self._snapshot is not None:  # later reads of a snapshot isolation
                options = {"revision": self._snapshot, "serializable": True}
            elif self._isolation not in _SNAPSHOT_READS:
                options = {"serializable": True}
            response = self._client.get_response(key, **options)
            read = (list(response.kvs), int(response.header.revision))
        if self._isolation in _SNAPSHOT_READS and self._snapshot is None:
            self._snapshot = read[1]
        self._reads[key] = read
        return read

    def _conflicts(self) -> List[BaseCompare]:
        if self._isolation == "read_committed":
            return []
        compares: List[BaseCompare] = [
            Mod(key) == (kvs[0].mod_revision if kvs else 0)
            for key, (kvs, _) in self._reads.items()]
        if self._isolation == "serializable_snapshot":
            first = min((revision for _, revision in self._reads.values()),
                        default=2**63 - 2)
            compares += [Mod(key) < first + 1 for key in self._writes]
        return compares

    def _commit(self) -> bool:
        """Try to commit; True on success, False on a conflict (reads are then
        prefetched for the next attempt)."""
        keys = list(self._reads)
        refetch = [Get(key) for key in keys] if self._isolation in _SNAPSHOT_READS else []
        response = self._client.transaction_response(
            self._conflicts(), [op for _, op in self._writes.values()], refetch)
        if response.succeeded:
            return True
        if refetch:
            revision = int(response.header.revision)
            self._prefetched = {key: (list(cc.range_kvs(response, index)), revision)
                                for index, key in enumerate(keys)}
        return False


def run(client: KVClient, apply: Callable[[STM], T], isolation: str = "serializable_snapshot",
        prefetch: Iterable[KeyType] = ()) -> T:
    """Run ``apply(stm)`` until its writes commit without conflict; returns what the
    committed run of ``apply`` returned. See the module documentation.

    :param prefetch: keys ``apply`` always reads (fetched first, at one revision).
    :raises ValueError: unknown isolation level.
    :raises Exception: whatever ``apply`` raises (nothing is committed), or the
        error of the commit transaction.
    """
    if isolation not in ISOLATIONS:
        raise ValueError(f"unknown isolation {isolation!r}; use one of "
                         + ", ".join(ISOLATIONS))
    keys = [key_bytes(key) for key in prefetch]
    stm = STM(client, isolation)
    while True:
        stm._reset()
        for key in keys:
            stm._fetch(key)
        result = apply(stm)
        if stm._commit():
            return result


class STMMixin(ServiceBase):
    """The ``stm`` method of :class:`~etcd3.client.Etcd3Client`."""

    def stm(self: KVClient, apply: Callable[[STM], T], isolation: str = "serializable_snapshot",
            prefetch: Iterable[KeyType] = ()) -> T:
        """Run ``apply(stm)`` as a software transaction; see :func:`etcd3.stm.run`."""
        return run(self, apply, isolation=isolation, prefetch=prefetch)
