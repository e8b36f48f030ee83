"""Distributed locks: python-etcd3's API on etcd's Go ``concurrency.Mutex`` algorithm.

Layout (the same as ``etcdctl lock`` and Go's ``concurrency.NewMutex``): the lock
``/locks/<name>`` is a key prefix; each contender owns ``/locks/<name>/<lease hex>``,
created in one transaction and attached to a lease kept alive by the client's
keepalive stream. The contender whose key has the lowest create revision holds the
lock; the others each watch only their predecessor, so the lock is granted in FIFO
order with no thundering herd. A Python holder therefore excludes
``etcdctl lock /locks/<name>`` and the reverse.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from ._core import concurrency as core
from ._core.deadline import Deadline, Timeout
from ._holders import DEFAULT_TIMEOUT, DEFAULT_TTL, KeyType, LockState, check_name
from ._sync import concurrency as cc
from ._sync.base import UNSET, ServiceBase
from ._sync.client_api import ConcurrencyClient
from .leases import Lease

__all__ = ["DEFAULT_TIMEOUT", "DEFAULT_TTL", "Lock", "LockMixin"]
_check_name = check_name


class Lock(LockState, cc.LeaseHolder):
    """A distributed lock (python-etcd3-compatible names).

    .. code-block:: python

        with client.lock('my-job', ttl=20) as lock:
            client.transaction(compare=[lock.is_owner()], success=[...], failure=[])

    :param name: the lock's name (str or bytes, not empty).
    :param ttl: seconds the lock survives its holder's death (the lease TTL); the
        lease is kept alive while the lock is held or awaited.
    :param prefix: key prefix (default: the client's ``lock_prefix``, ``/locks``).
    :param timeout: how long ``with lock:`` and ``acquire()`` without arguments wait
        (python-etcd3's 10 s by default; None: forever).
    :param on_lost: called with the lock if it is lost while held (see below).
    :raises ValueError: empty name, ttl <= 0, negative timeout.

    Losing the lock: if the lease under a held lock expires, is revoked, or cannot be
    kept alive for a whole ``ttl`` (etcd unreachable, or this process stopped or
    frozen that long), another holder may take it. Then :attr:`lost` becomes True,
    :meth:`is_acquired` answers False, a WARNING is logged to the ``etcd3`` logger,
    and ``on_lost(lock)`` runs on a client thread (keep it short). Guard writes with
    :meth:`is_owner` in a transaction to be safe even before the news arrives.
    :raises TypeError: wrong types.

    Attributes: ``name``, ``ttl``, ``key`` (while held, this holder's own key
    ``/locks/<name>/<lease hex>``, so ``client.get(lock.key)`` finds it as with
    python-etcd3; otherwise the lock's prefix key ``/locks/<name>``), ``prefix_key``
    (always ``/locks/<name>``), and while held: ``owner_key`` (the own key, as
    bytes), ``revision`` (its create revision, a fencing
    token that grows with every new holder), ``lease`` and ``header`` (the response
    header at acquisition). One Lock object is meant for one holder at a time; make
    one per thread or task.
    """

    lease: Optional[Lease]

    # -- acquire / release ------------------------------------------------------------

    def acquire(self, timeout: Timeout = UNSET) -> bool:
        """Wait for the lock; True once held, False if ``timeout`` passed first.

        :param timeout: seconds to wait (default: the lock's ``timeout``, 10 s);
            ``None`` waits forever, ``0`` tries once.
        :raises ValueError: negative timeout. :raises TypeError: not a number.
        :raises Etcd3Exception: etcd could not be reached (nothing is left behind).

        A Lock object is not re-entrant. Acquiring a lock this object already holds
        changes nothing and answers at once: False with a timeout (as python-etcd3),
        True with ``timeout=None``, where python-etcd3 waited until its own lease
        expired and then took the lock again (this one's lease is kept alive, so that
        wait would never end). Either way the lock is held once, and one
        :meth:`release` frees it. ``with lock:`` refuses to nest (see ``__enter__``).
        """
        if timeout is UNSET:
            timeout = self.timeout
        deadline = Deadline.after(timeout)
        if self.owner_key is not None:
            if self.is_acquired():
                return timeout is None
            self._abandon()
        while True:
            try:
                if self._try_acquire(deadline, once=timeout == 0):
                    return True
            except BaseException:
                self._abandon()
                raise
            if self.lease is not None:  # gave up: timed out
                self._abandon()
                return False
            if deadline.expired:
                return False

    def _try_acquire(self, deadline: Deadline, once: bool) -> bool:
        """One attempt; True when held. Leaves ``self.lease`` set when it timed out,
        None when its key was lost while waiting (try again)."""
        self.lease = self._grant_lease(self.ttl)
        attempt = self._contention(once)

        def created() -> None:
            self.owner_key, self.revision = attempt.key, attempt.revision

        end = cc.contend(self._client, attempt, deadline, created)
        if end.verdict is core.Verdict.HELD:
            self.header = end.header
            return True
        if end.verdict is core.Verdict.LOST:
            self._abandon()
        return False

    def _abandon(self) -> None:
        """Forget our key and revoke our lease (which deletes the key); best effort."""
        cc.revoke_quietly(self._forget())

    def release(self) -> bool:
        """Release the lock; True if this object held it (False if it never did, or
        lost it when its lease expired). Deletes only its own key (fenced on its
        create revision), then revokes its lease.

        :raises Etcd3Exception: etcd could not be reached (the lease then still
            expires after ``ttl``).
        """
        return cc.step_down(self._client, self.owner_key, self.revision, self._abandon)

    def refresh(self) -> Any:
        """Renew the lock's lease now (it is also renewed automatically).

        :raises ValueError: the lock is not held.
        :raises LeaseNotFoundError: the lease expired: the lock was lost.
        """
        if self.lease is None:
            raise self._not_held()
        return self.lease.refresh()

    # -- ownership ------------------------------------------------------------------

    def is_acquired(self) -> bool:
        """True if this object holds the lock now (asks etcd, unless it already knows
        the lock was lost: see :attr:`lost`).

        :raises Etcd3Exception: etcd could not be reached within the client timeout
            (within ``ttl`` seconds when the client has no timeout).
        """
        if self.owner_key is None or not self._lease_alive():
            return False
        return cc.key_create_revision(self._client, self.owner_key,
                                      self._check_timeout()) == self.revision

    # -- context manager --------------------------------------------------------------

    def __enter__(self) -> Lock:
        """Acquire the lock for the ``with`` block.

        :raises LockError: not acquired within the lock's ``timeout``, or this object
            already holds it (a nested ``with`` would release it on its way out).
        """
        if self.owner_key is not None and self.is_acquired():
            raise self._nested_error()
        if not self.acquire():
            raise self._timed_out_error()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


class LockMixin(ServiceBase):
    """Lock methods of :class:`~etcd3.client.Etcd3Client`."""

    #: Default key prefix of locks (python-etcd3's ``/locks``).
    lock_prefix: KeyType = "/locks"

    def lock(self: ConcurrencyClient, name: KeyType, ttl: Optional[int] = 60,
             prefix: Optional[KeyType] = None, *, timeout: Optional[float] = DEFAULT_TIMEOUT,
             on_lost: Optional[Callable[[Lock], None]] = None) -> Lock:
        """A :class:`Lock` called ``name`` (not acquired yet); see :class:`Lock`.

        :raises ValueError: empty name, ttl <= 0, negative timeout.
        """
        return Lock(name, ttl=ttl, etcd_client=self, prefix=prefix, timeout=timeout,
                    on_lost=on_lost)
