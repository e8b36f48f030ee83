"""Leases: grant, revoke, refresh, inspect."""

from __future__ import annotations

import threading
from typing import Any, Callable, List, Optional

from . import exceptions
from ._grpc import rpc as _rpc
from ._lease_handle import LeaseHandle, check_ttl, lease_ident
from ._sync.base import UNSET, ServiceBase, Timeout
from ._sync.client_api import LeaseClient
from ._sync.keepalive import KeepAliveEngine
from .etcdrpc import rpc_pb2 as pb


class Lease(LeaseHandle[LeaseClient]):
    """A granted lease (python-etcd3-compatible).

    ``id`` and ``ttl`` (as granted); ``remaining_ttl``, ``granted_ttl`` and ``keys``
    ask the server each time. As a context manager it revokes the lease on exit.

    Keepalive: :meth:`keep_alive` makes the client's single keepalive stream renew
    the lease at a third of its TTL until :meth:`stop_keep_alive`, :meth:`revoke` or
    ``client.close()``. If it cannot be kept alive (the server says it is gone, or no
    renewal succeeded for a whole TTL) :attr:`expired` becomes True and the
    ``on_expired(lease)`` callback, if any, runs (on a client thread; keep it short).
    """

    def _get_lease_info(self) -> Any:
        return self._client.get_lease_info(self.id, keys=True)

    def revoke(self) -> bool:
        """Stop keepalives and revoke the lease (its keys are deleted).

        :raises LeaseNotFoundError: it already expired or was revoked.
        """
        self.stop_keep_alive()
        try:
            self._client.revoke_lease(self.id)
        finally:
            self._expired = True
        return True

    def refresh(self) -> List[Any]:
        """Send one keepalive; returns the list of keepalive responses (one).

        :raises LeaseNotFoundError: the lease expired or was revoked.
        """
        return list(self._client.refresh_lease(self.id))

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

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.revoke()
        except exceptions.LeaseNotFoundError:
            pass


_check_ttl = check_ttl


class LeaseMixin(ServiceBase):
    """Lease methods of :class:`~etcd3.client.Etcd3Client`."""

    def lease(self, ttl: int, lease_id: Optional[int] = None, *,
              keep_alive: bool = False,
              on_expired: Optional[Callable[[Lease], None]] = None,
              timeout: Timeout = UNSET) -> Lease:
        """Grant a lease of ``ttl`` seconds (with a chosen ``lease_id`` if given).

        :param keep_alive: keep it alive in the background (see
            :meth:`Lease.keep_alive`) until revoked or stopped.
        :param on_expired: with ``keep_alive``, called with the lease if it could not
            be kept alive.
        :raises ValueError: ttl <= 0. :raises AlreadyExistsError: lease_id is taken.
        """
        request = pb.LeaseGrantRequest(TTL=_check_ttl(ttl), ID=lease_id or 0)
        response = self._call(_rpc.LEASE_GRANT, request, timeout=timeout)
        if response.error:
            raise exceptions.Etcd3Exception(f"lease grant failed: {response.error}")
        lease = Lease(response.ID, response.TTL, etcd_client=self)
        if keep_alive:
            lease.keep_alive(on_expired)
        return lease

    def _keepalive_engine(self) -> KeepAliveEngine:
        """The client's keepalive stream engine (created on first use)."""
        return self._engine("keepalive", lambda: KeepAliveEngine(self._transport))

    @property
    def _keepalive(self) -> Optional[KeepAliveEngine]:
        """The keepalive engine if a lease was kept alive (in this process)."""
        return self._existing_engine("keepalive")  # type: ignore[return-value]

    # -- the keepalive stream, for Lease (internal; see etcd3._sync.client_api) ---------

    def lease_keepalive_start(self, lease: Lease,
                              on_expired: Optional[Callable[[Lease], None]] = None) -> None:
        """Have the keepalive stream renew ``lease`` (what :meth:`Lease.keep_alive`
        does).

        :raises ClientClosedError: the client is closed.

        :meta private:
        """
        self._keepalive_engine().add(lease, on_expired)

    def lease_keepalive_stop(self, lease_id: int) -> bool:
        """Stop renewing the lease ``lease_id``; True if it was being renewed.

        :meta private:
        """
        engine = self._keepalive
        return engine is not None and engine.remove(lease_id)

    def lease_keepalive_active(self, lease_id: int) -> bool:
        """True while the keepalive stream renews the lease ``lease_id``.

        :meta private:
        """
        engine = self._keepalive
        return engine is not None and engine.is_kept_alive(lease_id)

    def lease_alive_until(self, lease_id: int) -> Optional[float]:
        """The ``time.monotonic()`` up to which the lease ``lease_id`` is known to
        live (its last renewal plus its TTL), or None when it is not kept alive.

        :meta private:
        """
        engine = self._keepalive
        return None if engine is None else engine.alive_until(lease_id)

    def revoke_lease(self, lease_id: Any, *, timeout: Timeout = UNSET) -> None:
        """Revoke a lease; the keys attached to it are deleted.

        :raises LeaseNotFoundError: no such lease.
        """
        ident = lease_ident(lease_id)
        self.lease_keepalive_stop(ident)
        request = pb.LeaseRevokeRequest(ID=ident)
        self._call(_rpc.LEASE_REVOKE, request, timeout=timeout)

    def refresh_lease(self, lease_id: Any, *, timeout: Timeout = UNSET) -> List[Any]:
        """Send one keepalive for a lease; returns ``[LeaseKeepAliveResponse]``.

        :raises LeaseNotFoundError: the lease expired or was revoked.
        """
        ident = lease_ident(lease_id)
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
            from ._grpc import errors as _errors
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
                       timeout: Timeout = UNSET) -> Any:
        """The LeaseTimeToLiveResponse (``ID``, ``TTL``, ``grantedTTL``, ``keys``).

        ``TTL`` is -1 when the lease does not exist.
        """
        request = pb.LeaseTimeToLiveRequest(ID=lease_ident(lease_id),
                                            keys=keys)
        return self._call(_rpc.LEASE_TIME_TO_LIVE, request, timeout=timeout)

    def leases(self, *, timeout: Timeout = UNSET) -> List[Lease]:
        """Every lease that exists on the cluster (``ttl`` is 0: unknown, ask
        ``remaining_ttl``)."""
        response = self._call(_rpc.LEASE_LEASES, pb.LeaseLeasesRequest(), timeout=timeout)
        return [Lease(item.ID, 0, etcd_client=self) for item in response.leases]
