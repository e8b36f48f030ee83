"""Distributed locks of the asyncio client: the threaded :mod:`etcd3.locks` (etcd's
Go ``concurrency.Mutex`` algorithm and key layout, python-etcd3's names), awaited.

``async with client.lock("job", ttl=10):`` holds ``/locks/job`` for the block; an
asyncio holder excludes threaded holders and ``etcdctl lock /locks/job`` alike.

Cancellation: a task cancelled inside ``await lock.acquire()`` (or
``asyncio.timeout()`` around it) leaves no key behind: the lease under its key is
revoked, which deletes the key. A cancelled ``async with`` body releases the lock.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from .._core import concurrency as core
from .._core.deadline import UNSET, Deadline, Timeout
from .._holders import DEFAULT_TIMEOUT, DEFAULT_TTL, KeyType, LockState
from . import _concurrency as cc
from ._base import AioServiceBase

__all__ = ["DEFAULT_TIMEOUT", "DEFAULT_TTL", "AioLockMixin", "Lock"]


class Lock(LockState, cc.AioLeaseHolder):
    """A distributed lock of the asyncio client (see :class:`etcd3.locks.Lock`: same
    arguments, attributes and rules).

    .. code-block:: python

        async with client.lock('my-job', ttl=20) as lock:
            await client.transaction(compare=[lock.is_owner()], success=[...],
                                     failure=[])

    Calls that ask etcd are awaited: :meth:`acquire`, :meth:`release`,
    :meth:`refresh`, :meth:`is_acquired`. :meth:`is_owner` (a compare) is not.
    ``on_lost(lock)`` runs in the event loop; it may be a coroutine function.
    """

    async def acquire(self, timeout: Timeout = UNSET) -> bool:
        """Wait for the lock; True once held, False if ``timeout`` passed first.

        :param timeout: seconds to wait (default: the lock's ``timeout``, 10 s);
            ``None`` waits forever, ``0`` tries once.
        :raises ValueError: negative timeout. :raises TypeError: not a number.
        :raises Etcd3Exception: etcd could not be reached (nothing is left behind).
        :raises asyncio.CancelledError: the task was cancelled (nothing is left
            behind: the lease is revoked, deleting the key).

        Not re-entrant: acquiring a lock this object already holds changes nothing
        and answers at once (False with a timeout, True with ``timeout=None``).
        """
        if timeout is UNSET:
            timeout = self.timeout
        deadline = Deadline.after(timeout)
        if self.owner_key is not None:
            if await self.is_acquired():
                return timeout is None
            await self._abandon()
        while True:
            try:
                if await self._try_acquire(deadline, once=timeout == 0):
                    return True
            except BaseException:
                await cc.shielded(self._abandon())
                raise
            if self.lease is not None:  # gave up: timed out
                await self._abandon()
                return False
            if deadline.expired:
                return False

    async def _try_acquire(self, deadline: Deadline, once: bool) -> bool:
        """One attempt; True when held. Leaves ``self.lease`` set when it timed out,
        None when its key was lost while waiting (try again)."""
        self.lease = await self._grant_lease(self.ttl)
        attempt = self._contention(once)

        def created() -> None:
            self.owner_key, self.revision = attempt.key, attempt.revision

        end = await cc.contend(self._client, attempt, deadline, created)
        if end.verdict is core.Verdict.HELD:
            self.header = end.header
            return True
        if end.verdict is core.Verdict.LOST:
            await self._abandon()
        return False

    async def _abandon(self) -> None:
        """Forget our key and revoke our lease (which deletes the key); best effort."""
        await cc.revoke_quietly(self._forget())

    async def release(self) -> bool:
        """Release the lock; True if this object held it (False if it never did, or
        lost it when its lease expired). Deletes only its own key (fenced on its
        create revision), then revokes its lease.

        :raises Etcd3Exception: etcd could not be reached (the lease then still
            expires after ``ttl``).
        """
        return await cc.step_down(self._client, self.owner_key, self.revision,
                                  self._abandon)

    async def refresh(self) -> Any:
        """Renew the lock's lease now (it is also renewed automatically).

        :raises ValueError: the lock is not held.
        :raises LeaseNotFoundError: the lease expired: the lock was lost.
        """
        if self.lease is None:
            raise self._not_held()
        return await self.lease.refresh()

    async def is_acquired(self) -> bool:
        """True if this object holds the lock now (asks etcd, unless it already knows
        the lock was lost: see :attr:`lost`).

        :raises Etcd3Exception: etcd could not be reached within the client timeout
            (within ``ttl`` seconds when the client has no timeout).
        """
        if self.owner_key is None or not self._lease_alive():
            return False
        return await cc.key_create_revision(self._client, self.owner_key,
                                            self._check_timeout()) == self.revision

    async def __aenter__(self) -> Lock:
        """Acquire the lock for the ``async with`` block.

        :raises LockError: not acquired within the lock's ``timeout``, or this object
            already holds it.
        """
        if self.owner_key is not None and await self.is_acquired():
            raise self._nested_error()
        if not await self.acquire():
            raise self._timed_out_error()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        """Release the lock (even when the task was cancelled meanwhile).

        :raises Etcd3Exception: the release failed and the block itself raised
            nothing (otherwise the block's exception, a cancellation included,
            propagates and the failure is logged: the lease expires after ``ttl``).
        """
        try:
            await cc.shielded(self.release())
        except Exception as error:
            if exc_type is None:
                raise
            cc.log.warning("etcd3: releasing %s failed (%s); it is freed when its "
                           "lease expires", self._what, error)


class AioLockMixin(AioServiceBase):
    """Lock methods of :class:`~etcd3.aio.Etcd3Client`."""

    #: Default key prefix of locks (python-etcd3's ``/locks``).
    lock_prefix: KeyType = "/locks"

    def lock(self, name: KeyType, ttl: Optional[int] = 60,
             prefix: Optional[KeyType] = None, *, timeout: Optional[float] = DEFAULT_TIMEOUT,
             on_lost: Optional[Callable[[Lock], Any]] = None) -> Lock:
        """A :class:`Lock` called ``name`` (not acquired yet: ``async with`` it or
        ``await lock.acquire()``).

        :raises ValueError: empty name, ttl <= 0, negative timeout.
        """
        return Lock(name, ttl=ttl, etcd_client=self, prefix=prefix, timeout=timeout,
                    on_lost=on_lost)
