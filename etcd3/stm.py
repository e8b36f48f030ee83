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

from typing import Any, Callable, Iterable, Optional, TypeVar, Union

from ._core.ops import key_bytes
from ._core.stm import ISOLATIONS, STMAttempt, check_isolation
from ._sync import concurrency as cc
from ._sync.base import ServiceBase
from ._sync.client_api import KVClient

__all__ = ["ISOLATIONS", "STM", "STMMixin", "run"]

KeyType = Union[str, bytes]
T = TypeVar("T")


class STM:
    """What ``apply`` gets: transactional reads and buffered writes."""

    def __init__(self, client: KVClient, isolation: str) -> None:
        self._client = client
        self._attempt = STMAttempt(isolation)

    def get(self, key: KeyType) -> Optional[bytes]:
        """The value of ``key`` as this transaction sees it (None if absent)."""
        data = key_bytes(key)
        written, value = self._attempt.written(data)
        if written:
            return value
        kvs, _ = self._fetch(data)
        return kvs[0].value if kvs else None

    def rev(self, key: KeyType) -> int:
        """The mod revision of ``key`` as read (0 if absent)."""
        kvs, _ = self._fetch(key_bytes(key))
        return int(kvs[0].mod_revision) if kvs else 0

    def put(self, key: KeyType, value: KeyType, lease: Any = None) -> None:
        """Set ``key`` to ``value`` when the transaction commits."""
        self._attempt.put(key, value, lease=lease)

    def delete(self, key: KeyType) -> None:
        """Delete ``key`` when the transaction commits."""
        self._attempt.delete(key)

    # -- machinery --------------------------------------------------------------------

    def _fetch(self, key: bytes) -> Any:
        read = self._attempt.known(key)
        if read is None:
            response = cc.run_get(self._client, self._attempt.read_request(key))
            read = self._attempt.record(key, response)
        return read

    def _commit(self) -> bool:
        """Try to commit; True on success, False on a conflict (reads are then
        prefetched for the next attempt)."""
        return self._attempt.committed(cc.run_txn(self._client, self._attempt.commit()))


def run(client: KVClient, apply: Callable[[STM], T], isolation: str = "serializable_snapshot",
        prefetch: Iterable[KeyType] = ()) -> T:
    """Run ``apply(stm)`` until its writes commit without conflict; returns what the
    committed run of ``apply`` returned. See the module documentation.

    :param prefetch: keys ``apply`` always reads (fetched first, at one revision).
    :raises ValueError: unknown isolation level.
    :raises Exception: whatever ``apply`` raises (nothing is committed), or the
        error of the commit transaction.
    """
    check_isolation(isolation)
    keys = [key_bytes(key) for key in prefetch]
    stm = STM(client, isolation)
    while True:
        stm._attempt.reset()
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
