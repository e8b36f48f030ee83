"""What a lock and an election candidate are in both drivers, apart from their I/O.

:class:`LeaseHolder`: a lease kept alive by the client and the news when it is
lost. :class:`LockState` and :class:`CandidateState`: the names, keys, validation,
ownership compares, messages and reprs of :class:`etcd3.locks.Lock` /
:class:`etcd3.election.Election` and their asyncio twins, which add the calls
(blocking or awaited) on :mod:`etcd3._core.concurrency`.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional, Union

from . import codec, exceptions
from ._core import concurrency as core
from ._core.deadline import check_timeout
from ._core.ops import BaseCompare
from ._lease_handle import check_ttl

log = logging.getLogger("etcd3")

KeyType = Union[str, bytes]

#: python-etcd3's default wait of ``acquire()`` and ``with lock:``.
DEFAULT_TIMEOUT = 10.0

#: Lease TTL of a lock created with ``ttl=None``.
DEFAULT_TTL = 60


def check_name(name: Any, what: str = "lock name") -> bytes:
    """``name`` as bytes.

    :raises TypeError: not str/bytes. :raises ValueError: empty.
    """
    data: bytes = codec.to_bytes(name, what)
    if not data:
        raise ValueError(f"{what} must not be empty")
    return data


class LeaseHolder:
    """What a lock and an election candidate share: a lease kept alive by the client,
    and the news when it is lost.

    When the lease under a held key expires, is revoked, or cannot be kept alive for
    a whole TTL (the keepalive stream's member is gone, or this process was stopped),
    another participant may take over. The holder then learns it: :attr:`lost`
    becomes True, the ownership checks answer False without asking etcd, a WARNING
    is logged, and the ``on_lost(holder)`` callback runs.
    """

    etcd_client: Any
    lease: Any
    ttl: int
    #: What the holder holds, for the warning ("lock 'job'").
    _what: str

    def _init_holder(self, on_lost: Optional[Callable[[Any], Any]]) -> None:
        self.on_lost = on_lost
        self.lost = False

    @property
    def _client(self) -> Any:
        if self.etcd_client is None:
            raise AttributeError(f"this {type(self).__name__} has no etcd_client")
        return self.etcd_client

    def _lease_lost(self, lease: Any) -> None:
        if lease is not self.lease or self.lost:
            return
        self.lost = True
        log.warning("etcd3: %s lost: its lease %x could not be kept alive; another "
                    "holder may have it now", self._what, int(lease.id))
        callback = self.on_lost
        if callback is not None:
            try:
                self._deliver(callback(self))
            except Exception:
                log.exception("etcd3: on_lost callback of %s failed", self._what)

    def _deliver(self, result: Any) -> None:
        """What the ``on_lost`` callback returned (a driver may await it)."""

    def _check_timeout(self) -> Optional[float]:
        """The deadline of an ownership check: the client's timeout, or the lease TTL
        when the client has none (no answer within a TTL means the lease may be
        gone anyway, so the check must not wait forever)."""
        timeout = self._client.timeout
        return float(self.ttl) if timeout is None else timeout

    def _lease_alive(self) -> bool:
        """False when this process knows the lease is gone: lost, revoked, or not
        renewed for a whole TTL (checked locally, without asking etcd)."""
        lease = self.lease
        if lease is None or lease.expired or self.lost:
            return False
        until = self._client.lease_alive_until(lease.id)
        if until is not None and until <= time.monotonic():
            self._lease_lost(lease)
            return False
        return True


class LockState(LeaseHolder):
    """A lock's names, keys and ownership (see :class:`etcd3.locks.Lock`)."""

    def __init__(self, name: KeyType, ttl: Optional[int] = 60,
                 etcd_client: Any = None, prefix: Optional[KeyType] = None, *,
                 timeout: Optional[float] = DEFAULT_TIMEOUT,
                 on_lost: Optional[Callable[[Any], Any]] = None) -> None:
        name_bytes = check_name(name)
        self._init_holder(on_lost)
        check_timeout(timeout)
        self.timeout = timeout
        self.name = name
        self.ttl = check_ttl(DEFAULT_TTL if ttl is None else ttl)
        self.etcd_client = etcd_client
        if prefix is None:
            prefix = getattr(etcd_client, "lock_prefix", "/locks")
        prefix_bytes = codec.to_bytes(prefix, "prefix")
        key_bytes = prefix_bytes + b"/" + name_bytes if prefix_bytes else name_bytes
        self.prefix_key: KeyType = key_bytes.decode() if isinstance(name, str) else key_bytes
        self._prefix = key_bytes + b"/"
        self.lease: Any = None
        self._what = f"lock {name!r}"
        self.owner_key: Optional[bytes] = None
        self.revision: Optional[int] = None
        self.header: Any = None

    @property
    def key(self) -> KeyType:
        """This holder's own key while held, else the lock's prefix key."""
        own = self.owner_key
        if own is None:
            return self.prefix_key
        return own.decode("utf-8", "surrogateescape") if isinstance(self.name, str) else own

    def _contention(self, once: bool) -> core.Contention:
        """An attempt at the lock with the lease just granted."""
        return core.Contention(self._prefix, self.lease.id, first_wins=True, wait=not once)

    def _forget(self) -> Any:
        """Forget the own key; returns the lease to revoke (None if none)."""
        lease, self.lease = self.lease, None
        self.owner_key = self.revision = self.header = None
        return lease

    def is_owner(self) -> BaseCompare:
        """A transaction compare that holds only while this object holds the lock
        (Go's ``Mutex.IsOwner``): guard writes with
        ``client.transaction(compare=[lock.is_owner(), ...], ...)``.

        :raises LockError: the lock is not held.
        """
        if self.owner_key is None or self.revision is None:
            raise exceptions.LockError(f"lock {self.name!r} is not held")
        return core.is_owner(self.owner_key, self.revision)

    def _not_held(self) -> ValueError:
        return ValueError("No lease associated with this lock - have you acquired "
                          "the lock yet?")

    def _nested_error(self) -> exceptions.LockError:
        return exceptions.LockError(
            f"lock {self.name!r} is already held by this Lock object; Lock objects "
            f"are not re-entrant")

    def _timed_out_error(self) -> exceptions.LockError:
        return exceptions.LockError(
            f"could not acquire lock {self.name!r} within {self.timeout} seconds; "
            f"give client.lock(..., timeout=...) to wait longer")

    def __repr__(self) -> str:
        if self.owner_key is None:
            state = "not held"
        elif self.lost:
            state = f"lost, revision={self.revision}"
        else:
            state = f"held, revision={self.revision}"
        return f"Lock(name={self.name!r}, ttl={self.ttl}, {state})"


class CandidateState(LeaseHolder):
    """An election candidate's names and keys (see :class:`etcd3.election.Election`)."""

    def __init__(self, name: KeyType, ttl: int = 60, etcd_client: Any = None, *,
                 on_lost: Optional[Callable[[Any], Any]] = None) -> None:
        self._init_holder(on_lost)
        self._what = f"leadership of election {name!r}"
        self.name = name
        self._prefix = check_name(name, "election name") + b"/"
        self.ttl = check_ttl(ttl)
        self.etcd_client = etcd_client
        self.lease: Any = None
        self.key: Optional[bytes] = None
        self.revision: Optional[int] = None
        self.header: Any = None

    def _contention(self, value: bytes) -> core.Contention:
        """A campaign with the lease just granted."""
        return core.Contention(self._prefix, self.lease.id, value, first_wins=False,
                               wait=True)

    def _created(self, attempt: core.Contention) -> None:
        self.key, self.revision = attempt.key, attempt.revision
        self.header = attempt.created_header

    def _forget(self) -> Any:
        """Forget the candidacy; returns the lease to revoke (None if none)."""
        lease, self.lease = self.lease, None
        self.key = self.revision = None
        return lease

    def _proclamation(self, value: bytes) -> Any:
        """The proclaim transaction.

        :raises NotLeaderError: this candidate does not lead.
        """
        if self.key is None or self.revision is None or self.lease is None:
            raise exceptions.NotLeaderError(f"not the leader of election {self.name!r}")
        return core.proclaim(self.key, self.revision, value, self.lease.id)

    def _no_longer_leader(self) -> exceptions.NotLeaderError:
        return exceptions.NotLeaderError(f"no longer the leader of election {self.name!r} "
                                         "(its lease expired)")

    def __repr__(self) -> str:
        state = f"candidate key={self.key!r}" if self.key else "not campaigning"
        if self.key and self.lost:
            state += ", lost"
        return f"Election(name={self.name!r}, {state})"
