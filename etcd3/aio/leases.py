"""Leases of the asyncio client: the threaded :mod:`etcd3.leases`' methods, same names,
arguments and results, awaited.

A lease's server-side properties (``remaining_ttl``, ``granted_ttl``, ``keys``) ask
the server, so here they are awaitables: ``await lease.remaining_ttl``. ``id``,
``ttl``, ``expired`` and ``kept_alive`` need no I/O and stay plain attributes.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, List, Optional

import grpc

from .. import exceptions
from .._grpc import errors as _errors
from .._grpc import rpc as _rpc
from .._lease_handle import LeaseHandle, check_ttl, lease_ident
from ..etcdrpc import rpc_pb2 as pb
from ._base import UNSET, AioServiceBase, Timeout
from ._keepalive import AioKeepAliveEngine

__all__ = ["AioLeaseMixin", "Lease"]

log = logging.getLogger("etcd3")


class Lease(LeaseHandle["AioLeaseMixin"]):
    """A granted lease of the asyncio client.

    ``id`` and ``ttl`` (as granted); ``await lease.remaining_ttl``,
    ``await lease.granted_ttl`` and ``await lease.keys`` ask the server each time.
    ``async with lease:`` revokes it on exit (``async with await client.lease(5):``).

    Keepalive: :meth:`keep_alive` makes the client's single keepalive stream renew
    the lease at a third of its TTL until :meth:`stop_keep_alive`, :meth:`revoke` or
    ``await client.close()``. If it cannot be kept alive (the server says it is gone,
    or no renewal succeeded for a whole TTL) :attr:`expired` becomes True and
    ``on_expired(lease)`` runs in the client's event loop; it may be a plain
    function or a coroutine function (then it runs as a task of its own).
    """

    async def _info(self) -> Any:
        return await self._client.get_lease_info(self.id, keys=True)

    async def revoke(self) -> bool:
        """Stop keepalives and revoke the lease (its keys are deleted).

        :raises LeaseNotFoundError: it already expired or was revoked.
        """
        self.stop_keep_alive()
        try:
            await self._client.revoke_lease(self.id)
        finally:
            self._expired = True
        return True

    async def refresh(self) -> List[Any]:
        """Send one keepalive; returns the list of keepalive responses (one).

        :raises LeaseNotFoundError: the lease expired or was revoked.
        """
        return await self._client.refresh_lease(self.id)

    @property
    def remaining_ttl(self) -> Any:
        """``await lease.remaining_ttl``: seconds left before expiry (-1 when it
        expired)."""
        return self._field("TTL")

    @property
    def granted_ttl(self) -> Any:
        """``await lease.granted_ttl``: the TTL the lease was granted with."""
        return self._field("grantedTTL")

    @property
    def keys(self) -> Any:
        """``await lease.keys``: the keys attached to the lease."""
        return self._keys()

    async def _field(self, name: str) -> int:
        return int(getattr(await self._info(), name))

    async def _keys(self) -> List[bytes]:
        return list((await self._info()).keys)

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        """Revoke the lease (one already gone is fine).

        :raises Etcd3Exception: the revoke failed and the block raised nothing
            (otherwise the block's exception, a cancellation included, propagates
            and the failure is logged: the lease expires after its TTL).
        """
        try:
            await self.revoke()
        except exceptions.LeaseNotFoundError:
            pass
        except Exception as error:
            if exc_type is None:
                raise
            log.warning("etcd3: revoking lease %x failed (%s); it expires after its "
                        "TTL", self.id, error)


class AioLeaseMixin(AioServiceBase):
    """Lease methods of :class:`~etcd3.aio.Etcd3Client`."""

    async def lease(self, ttl: int, lease_id: Optional[int] = None, *,
                    keep_alive: bool = False,
                    on_expired: Optional[Callable[[Lease], Any]] = None,
                    timeout: Timeout = UNSET) -> Lease:
        """Grant a lease of ``ttl`` seconds (with a chosen ``lease_id`` if given).

        :param keep_alive: keep it alive in the background (see
            :meth:`Lease.keep_alive`) until revoked or stopped.
        :param on_expired: with ``keep_alive``, called with the lease if it could not
            be kept alive (a plain function or a coroutine function).
        :raises ValueError: ttl <= 0. :raises TypeError: ttl not an int.
        :raises AlreadyExistsError: lease_id is taken.
        """
        request = pb.LeaseGrantRequest(TTL=check_ttl(ttl), ID=lease_id or 0)
        response = await self._call(_rpc.LEASE_GRANT, request, timeout=timeout)
        if response.error:
            raise exceptions.Etcd3Exception(f"lease grant failed: {response.error}")
        lease = Lease(response.ID, response.TTL, etcd_client=self)
        if keep_alive:
            lease.keep_alive(on_expired)
        return lease

    def _keepalive_engine(self) -> AioKeepAliveEngine:
        """The client's keepalive stream engine (created on first use in a loop)."""
        return self._engine("keepalive", lambda: AioKeepAliveEngine(self._transport))

    @property
    def _keepalive(self) -> Optional[AioKeepAliveEngine]:
        """The keepalive engine if a lease was kept alive (in this loop)."""
        engine: Optional[AioKeepAliveEngine]
        engine = self._existing_engine("keepalive")  # type: ignore[assignment]
        return engine if engine is not None and engine.current else None

    # -- the keepalive stream, for Lease (no I/O: plain methods) ------------------------

    def lease_keepalive_start(self, lease: Any,
                              on_expired: Optional[Callable[..., Any]] = None) -> None:
        """Have the keepalive stream renew ``lease`` (what :meth:`Lease.keep_alive`
        does). Call it from the client's event loop.

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

    # -- calls --------------------------------------------------------------------------

    async def revoke_lease(self, lease_id: Any, *, timeout: Timeout = UNSET) -> None:
        """Revoke a lease; the keys attached to it are deleted.

        :raises LeaseNotFoundError: no such lease.
        """
        ident = lease_ident(lease_id)
        self.lease_keepalive_stop(ident)
        await self._call(_rpc.LEASE_REVOKE, pb.LeaseRevokeRequest(ID=ident),
                         timeout=timeout)

    async def refresh_lease(self, lease_id: Any, *,
                            timeout: Timeout = UNSET) -> List[Any]:
        """Send one keepalive for a lease; returns ``[LeaseKeepAliveResponse]``.

        :raises LeaseNotFoundError: the lease expired or was revoked.
        """
        ident = lease_ident(lease_id)
        wait = self._transport.timeout if timeout is UNSET else timeout
        call, state = await self._transport.open_stream(_rpc.LEASE_KEEPALIVE, None,
                                                        timeout=wait)
        try:
            await call.write(pb.LeaseKeepAliveRequest(ID=ident))
            response = await call.read()
        except grpc.RpcError as error:
            self._transport.report_failure(state, error)
            raise _errors.translate(error, context=f"lease {ident}",
                                    endpoint=state.name) from error
        finally:
            call.cancel()
        if response is grpc.aio.EOF or response.TTL <= 0:
            raise exceptions.LeaseNotFoundError(
                f"lease {ident} not found (expired or revoked)")
        return [response]

    async def get_lease_info(self, lease_id: Any, keys: bool = True, *,
                             timeout: Timeout = UNSET) -> Any:
        """The LeaseTimeToLiveResponse (``ID``, ``TTL``, ``grantedTTL``, ``keys``).

        ``TTL`` is -1 when the lease does not exist.
        """
        request = pb.LeaseTimeToLiveRequest(ID=lease_ident(lease_id), keys=keys)
        return await self._call(_rpc.LEASE_TIME_TO_LIVE, request, timeout=timeout)

    async def leases(self, *, timeout: Timeout = UNSET) -> List[Lease]:
        """Every lease that exists on the cluster (``ttl`` is 0: unknown, await
        ``remaining_ttl``)."""
        response = await self._call(_rpc.LEASE_LEASES, pb.LeaseLeasesRequest(),
                                    timeout=timeout)
        return [Lease(item.ID, 0, etcd_client=self) for item in response.leases]
