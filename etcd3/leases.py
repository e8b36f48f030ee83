"""Leases: grant, revoke, refresh, inspect."""

from __future__ import annotations

import threading
from typing import Any, List, Optional

from . import _rpc, exceptions
from ._base import UNSET, ServiceBase
from .etcdrpc import rpc_pb2 as pb


class Lease:
    """A granted lease (python-etcd3-compatible).

    ``id`` and ``ttl`` (as granted); ``remaining_ttl``, ``granted_ttl`` and ``keys``
    ask the server each time. As a context manager it revokes the lease on exit.
    """

    def __init__(self, lease_id: int, ttl: int, etcd_client: Any = None) -> None:
        self.id = lease_id
        self.ttl = ttl
        self.etcd_client = etcd_client

    def _get_lease_info(self) -> Any:
        return self.etcd_client.get_lease_info(self.id, keys=True)

    def revoke(self) -> bool:
        """Revoke the lease (its keys are deleted).

        :raises LeaseNotFoundError: it already expired or was revoked.
        """
        self.etcd_client.revoke_lease(self.id)
        return True

    def refresh(self) -> List[Any]:
        """Send one keepalive; returns the list of keepalive responses (one).

        :raises LeaseNotFoundError: the lease expired or was revoked.
        """
        return list(self.etcd_client.refresh_lease(self.id))

    @property
    def remaining_ttl(self) -> int:
        """Seconds left before expiry (-1 when it expired)."""
        return int(self._get_lease_info().TTL)

    @property
    def granted_ttl(self) -> int:
        """The TTL the lease was granted with."""
        return int(self._get_lease_info().grantedTTL)

    @property
    def keys(self) -> List[bytes]:
        """Keys attached to the lease."""
        return list(self._get_lease_info().keys)

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.revoke()
        except exceptions.LeaseNotFoundError:
            pass

    def __repr__(self) -> str:
        return f"Lease(id={self.id}, ttl={self.ttl})"


def _check_ttl(ttl: Any) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise TypeError(f"ttl must be an int number of seconds, not {type(ttl).__name__}")
    if ttl <= 0:
        raise ValueError("ttl must be > 0 seconds")
    return ttl


class LeaseMixin(ServiceBase):
    """Lease methods of :class:`~etcd3.client.Etcd3Client`."""

    def lease(self, ttl: int, lease_id: Optional[int] = None, *,
              timeout: Any = UNSET) -> Lease:
        """Grant a lease of ``ttl`` seconds (with a chosen ``lease_id`` if given).

        :raises ValueError: ttl <= 0. :raises AlreadyExistsError: lease_id is taken.
        """
        request = pb.LeaseGrantRequest(TTL=_check_ttl(ttl), ID=lease_id or 0)
        response = self._call(_rpc.LEASE_GRANT, request, timeout=timeout)
        if response.error:
            raise exceptions.Etcd3Exception(f"lease grant failed: {response.error}")
        return Lease(response.ID, response.TTL, etcd_client=self)

    def revoke_lease(self, lease_id: Any, *, timeout: Any = UNSET) -> None:
        """Revoke a lease; the keys attached to it are deleted.

        :raises LeaseNotFoundError: no such lease.
        """
        request = pb.LeaseRevokeRequest(ID=int(getattr(lease_id, "id", lease_id)))
        self._call(_rpc.LEASE_REVOKE, request, timeout=timeout)

    def refresh_lease(self, lease_id: Any, *, timeout: Any = UNSET) -> List[Any]:
        """Send one keepalive for a lease; returns ``[LeaseKeepAliveResponse]``.

        :raises LeaseNotFoundError: the lease expired or was revoked.
        """
        ident = int(getattr(lease_id, "id", lease_id))
        request = pb.LeaseKeepAliveRequest(ID=ident)
        deadline_timeout = self._transport.timeout if timeout is UNSET else timeout
        result: List[Any] = []
        done = threading.Event()

        def requests() -> Any:
            yield request
            done.wait(deadline_timeout if deadline_timeout is not None else 60.0)

        call, state = self._transport.open_stream(_rpc.LEASE_KEEPALIVE, requests(),
                                                  timeout=deadline_timeout)
        try:
            for response in call:
                result.append(response)
                break
        except Exception as error:
            from . import _errors
            self._transport.report_failure(state, error)
            raise _errors.translate(error, context=f"lease {ident}",
                                    endpoint=state.name) from error
        finally:
            done.set()
            call.cancel()
        if not result or result[0].TTL <= 0:
            raise exceptions.LeaseNotFoundError(
                f"lease {ident} not found (expired or revoked)")
        return result

    def get_lease_info(self, lease_id: Any, keys: bool = True, *,
                       timeout: Any = UNSET) -> Any:
        """The LeaseTimeToLiveResponse (``ID``, ``TTL``, ``grantedTTL``, ``keys``).

        ``TTL`` is -1 when the lease does not exist.
        """
        request = pb.LeaseTimeToLiveRequest(ID=int(getattr(lease_id, "id", lease_id)),
                                            keys=keys)
        return self._call(_rpc.LEASE_TIME_TO_LIVE, request, timeout=timeout)

    def leases(self, *, timeout: Any = UNSET) -> List[Lease]:
        """Every lease that exists on the cluster (``ttl`` is 0: unknown, ask
        ``remaining_ttl``)."""
        response = self._call(_rpc.LEASE_LEASES, pb.LeaseLeasesRequest(), timeout=timeout)
        return [Lease(item.ID, 0, etcd_client=self) for item in response.leases]
