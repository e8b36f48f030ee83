"""What a lease handle is in both drivers: its id and TTL, the keepalive switches
and the expiry flag (none of which does I/O). :class:`etcd3.leases.Lease` and
:class:`etcd3.aio.leases.Lease` add the calls, blocking or awaited."""

from __future__ import annotations

from typing import Any, Callable, Generic, Optional, Protocol, TypeVar


class KeepAliveSwitch(Protocol):
    """The client methods that drive a lease's keepalive (no I/O in either driver)."""

    def lease_keepalive_start(self, lease: Any,
                              on_expired: Optional[Callable[..., Any]]) -> None:
        """Have the keepalive stream renew ``lease``."""

    def lease_keepalive_stop(self, lease_id: int) -> bool:
        """Stop renewing a lease; True if it was renewed."""

    def lease_keepalive_active(self, lease_id: int) -> bool:
        """True while the keepalive stream renews the lease."""


C = TypeVar("C", bound=KeepAliveSwitch)
L = TypeVar("L", bound="LeaseHandle[Any]")


def check_ttl(ttl: Any) -> int:
    """``ttl`` if it is a positive int number of seconds.

    :raises TypeError: not an int (bool and float included). :raises ValueError: <= 0.
    """
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise TypeError(f"ttl must be an int number of seconds, not {type(ttl).__name__}")
    if ttl <= 0:
        raise ValueError("ttl must be > 0 seconds")
    return ttl


def lease_ident(lease: Any) -> int:
    """The id of a lease given as a lease object or an int."""
    return int(getattr(lease, "id", lease))


class LeaseHandle(Generic[C]):
    """A granted lease: ``id``, ``ttl`` (as granted), its keepalive switches and
    :attr:`expired`."""

    def __init__(self, lease_id: int, ttl: int, etcd_client: Optional[C] = None) -> None:
        self.id = lease_id
        self.ttl = ttl
        self.etcd_client = etcd_client
        self._expired = False

    @property
    def _client(self) -> C:
        if self.etcd_client is None:
            raise AttributeError(f"this {type(self).__name__} has no etcd_client")
        return self.etcd_client

    def keep_alive(self: L, on_expired: Optional[Callable[[L], Any]] = None) -> L:
        """Keep this lease alive in the background; returns the lease itself.

        :param on_expired: called with the lease if it could not be kept alive.
        :raises ClientClosedError: the client was closed.
        """
        self._expired = False
        self._client.lease_keepalive_start(self, on_expired)
        return self

    def stop_keep_alive(self) -> bool:
        """Stop background keepalives (the lease then expires after its TTL);
        True if it was being kept alive."""
        return self._client.lease_keepalive_stop(self.id)

    @property
    def kept_alive(self) -> bool:
        """True while the keepalive stream renews this lease."""
        return self._client.lease_keepalive_active(self.id)

    @property
    def expired(self) -> bool:
        """True once this lease is known to be gone: revoked through this object, or
        reported by the keepalive stream as not renewable. (Without keepalive, ask
        ``remaining_ttl``.)"""
        return self._expired

    def __repr__(self) -> str:
        return f"Lease(id={self.id}, ttl={self.ttl})"
