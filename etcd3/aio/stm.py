"""Software transactional memory for the asyncio client (Go's ``concurrency.STM``,
the rules of :mod:`etcd3.stm` from the shared core :mod:`etcd3._core.stm`).

``await client.stm(apply)`` runs ``apply(stm)``, usually a coroutine function: it
reads keys with ``await stm.get(key)`` and buffers writes with ``stm.put`` /
``stm.delete`` (no I/O, so not awaited); the writes are then committed in one
transaction guarded by what was read, and if another writer got in between,
``apply`` runs again on fresh data, until a commit succeeds::

    async def transfer(stm):
        a, b = int(await stm.get('/a')), int(await stm.get('/b'))
        stm.put('/a', str(a - 10))
        stm.put('/b', str(b + 10))

    await client.stm(transfer)
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, Iterable, Optional, TypeVar, Union

from .._core.ops import key_bytes
from .._core.stm import ISOLATIONS, Read, STMAttempt, check_isolation
from ._base import AioServiceBase
from ._concurrency import run_get, run_txn

__all__ = ["ISOLATIONS", "STM", "AioSTMMixin", "run"]

KeyType = Union[str, bytes]
T = TypeVar("T")
Apply = Callable[["STM"], Union[Awaitable[T], T]]


class STM:
    """What ``apply`` gets: transactional reads (awaited) and buffered writes."""

    def __init__(self, client: Any, isolation: str) -> None:
        self._client = client
        self._attempt = STMAttempt(isolation)

    async def get(self, key: KeyType) -> Optional[bytes]:
        """The value of ``key`` as this transaction sees it (None if absent)."""
        data = key_bytes(key)
        written, value = self._attempt.written(data)
        if written:
            return value
        kvs, _ = await self._fetch(data)
        return kvs[0].value if kvs else None

    async def rev(self, key: KeyType) -> int:
        """The mod revision of ``key`` as read (0 if absent)."""
        kvs, _ = await self._fetch(key_bytes(key))
        return int(kvs[0].mod_revision) if kvs else 0

    def put(self, key: KeyType, value: KeyType, lease: Any = None) -> None:
        """Set ``key`` to ``value`` when the transaction commits (no I/O now)."""
        self._attempt.put(key, value, lease=lease)

    def delete(self, key: KeyType) -> None:
        """Delete ``key`` when the transaction commits (no I/O now)."""
        self._attempt.delete(key)

    async def _fetch(self, key: bytes) -> Read:
        read = self._attempt.known(key)
        if read is None:
            response = await run_get(self._client, self._attempt.read_request(key))
            read = self._attempt.record(key, response)
        return read

    async def _commit(self) -> bool:
        return self._attempt.committed(await run_txn(self._client,
                                                     self._attempt.commit()))


async def run(client: Any, apply: Apply[T], isolation: str = "serializable_snapshot",
              prefetch: Iterable[KeyType] = ()) -> T:
    """Run ``apply(stm)`` until its writes commit without conflict; returns what the
    committed run of ``apply`` returned (awaited if it is awaitable).

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
            await stm._fetch(key)
        result = apply(stm)
        if inspect.isawaitable(result):
            result = await result
        if await stm._commit():
            return result


class AioSTMMixin(AioServiceBase):
    """The ``stm`` method of :class:`~etcd3.aio.Etcd3Client`."""

    async def stm(self, apply: Apply[T], isolation: str = "serializable_snapshot",
                  prefetch: Iterable[KeyType] = ()) -> T:
        """Run ``apply(stm)`` as a software transaction; see :func:`etcd3.aio.stm.run`."""
        return await run(self, apply, isolation=isolation, prefetch=prefetch)
