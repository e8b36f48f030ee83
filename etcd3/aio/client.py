"""The asyncio client: :class:`etcd3.Etcd3Client`'s API, awaited.

Same constructor arguments, same method names, arguments and results; a method
that returns a value in the threaded client returns an awaitable of it here, and
one that returns an iterator returns an async iterator. Built on the same cores
(:mod:`etcd3._core`): the same retry rules, failover, token refresh, watch
resume, lock algorithm and codec.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .._client_config import (
    DEFAULT_CHANNELS_PER_ENDPOINT,
    attach_recorder,
    check_credentials,
    resolve_endpoints,
    stats_of,
)
from .._core.watch_options import checked_unreachable_timeout
from .._core.write_batch_policy import checked_in_flight
from .._grpc import rpc as _rpc
from ..pool import Endpoint, EndpointSpec
from ..retry import Retry
from . import _engines
from ._endpoint_sync import AioEndpointSyncer
from ._engines import AioEngines
from ._token import AioTokenProvider
from ._transport import AioTransport
from .auth import AioAuthMixin
from .bulk import AioBulkMixin
from .cache import AioCacheMixin
from .cluster import AioClusterMixin
from .election import AioElectionMixin
from .kv import AioKVMixin
from .leases import AioLeaseMixin
from .locks import AioLockMixin
from .maintenance import AioMaintenanceMixin
from .namespace import KeyType, NamespacedClient
from .stm import AioSTMMixin
from .stubs import AioRawStubsMixin
from .watch import AioWatchMixin

GrpcOptions = Optional[Sequence[Tuple[str, Any]]]

#: The name of the endpoint-sync engine.
_SYNCER = "endpoint-sync"


class Etcd3Client(AioKVMixin, AioLeaseMixin, AioWatchMixin, AioLockMixin, AioElectionMixin,
                  AioSTMMixin, AioAuthMixin, AioClusterMixin, AioMaintenanceMixin,
                  AioBulkMixin, AioCacheMixin, AioRawStubsMixin):
    """An asyncio etcd v3 client with endpoint failover, retries and token refresh.

    Takes :class:`etcd3.Etcd3Client`'s arguments (see there), and
    ``write_batch_in_flight`` (None, the default: off): when that many single-key
    writes (``put``, ``delete`` of one key) are on the wire, further concurrent ones
    queue and go together in one Txn once a call finishes (write coalescing, see
    :mod:`etcd3.aio._write_batch`). Each caller still gets its own response and
    errors; a lone writer is never delayed. Coalesced writes share one revision:
    leave it off if your code uses a write's revision as a unique sequence number.
    Turn it on when many tasks write different keys at once (heartbeats, statuses,
    counters) and throughput matters more than each write's own revision.

    Use it from one event loop at a time; connections are made on the first call,
    in the running loop. ``async with etcd3.aio.client() as client:`` closes it at the end, as does
    ``await client.close()``. A client dropped without either is released when it
    is garbage-collected (its tasks are cancelled, its channels closed), and an
    ``asyncio.run()`` that ends with it open ends promptly.

    :param metrics: True: count calls, retries, ejections, token refreshes, watch
        lag and more, read with :meth:`stats`, and report them to OpenTelemetry's
        global meter provider when ``opentelemetry-api`` is installed; False: record
        nothing; None (the default): as :func:`etcd3.observability.enable` said
        (off unless called). See the observability guide.
    :param meter_provider: an OpenTelemetry ``MeterProvider`` to report metrics to
        (turns ``metrics`` on).
    :param tracer_provider: an OpenTelemetry ``TracerProvider``: each unary call is
        a span (retries are its events).
    :param trace_propagation: send the span's trace context to etcd in gRPC metadata
        (``traceparent``); off by default.
    :raises ValueError: bad endpoints, or only one of user/password given.
    :raises OSError: a certificate file cannot be read.
    """

    def __init__(
        self,
        host: Optional[str] = None,
        port: Optional[int] = None,
        ca_cert: Optional[str] = None,
        cert_key: Optional[str] = None,
        cert_cert: Optional[str] = None,
        timeout: Optional[float] = None,
        user: Optional[str] = None,
        password: Optional[str] = None,
        grpc_options: GrpcOptions = None,
        *,
        endpoints: Optional[Iterable[EndpointSpec]] = None,
        retry: Optional[Retry] = None,
        channels_per_endpoint: int = DEFAULT_CHANNELS_PER_ENDPOINT,
        endpoint_sync_interval: Optional[float] = None,
        read_batch_in_flight: int = 2,
        write_batch_in_flight: Optional[int] = None,
        watch_unreachable_timeout: Optional[float] = None,
        metrics: Optional[bool] = None,
        meter_provider: Any = None,
        tracer_provider: Any = None,
        trace_propagation: bool = False,
    ) -> None:
        check_credentials(user, password)
        resolved = resolve_endpoints(host, port, ca_cert, cert_key, cert_cert, endpoints,
                                     timeout)
        if channels_per_endpoint < 1:
            raise ValueError("channels_per_endpoint must be >= 1")
        if endpoint_sync_interval is not None and endpoint_sync_interval <= 0:
            raise ValueError("endpoint_sync_interval must be > 0 seconds")
        self._endpoint_sync_interval = endpoint_sync_interval
        self.timeout = timeout
        self._watch_unreachable_timeout = checked_unreachable_timeout(
            watch_unreachable_timeout)
        self._read_batch_in_flight = read_batch_in_flight
        self._write_batch_in_flight = checked_in_flight(write_batch_in_flight)
        self.retry = retry if retry is not None else Retry()
        self._engines = AioEngines()
        self._transport = AioTransport(
            list(dict.fromkeys(resolved)),
            channels_per_endpoint=channels_per_endpoint,
            grpc_options=grpc_options,
            retry=self.retry,
            timeout=timeout,
            token_provider=AioTokenProvider(user, password) if user and password else None,
            authenticate_method=_rpc.AUTHENTICATE,
            on_bind=functools.partial(_bound, weakref.ref(self)),
        )
        attach_recorder(self._transport, metrics, meter_provider, tracer_provider,
                        trace_propagation)
        # Nothing the engines or the transport hold refers back to this object, so a
        # client dropped without close() is collected and released.
        self._finalizer = _engines.release_when_dropped(self, self._engines,
                                                        self._transport.close)

    def stats(self) -> Dict[str, Any]:
        """The client's counters now, as a plain dict (see the observability guide):
        ``calls`` (per ``service/method``: count, errors, seconds_sum, seconds_max,
        duration buckets), ``errors`` and ``retries`` (by gRPC status name),
        ``endpoints`` (ejections and readmissions per endpoint),
        ``token_refreshes`` (per endpoint), ``watch`` (watchers, resumes, lag_max,
        queue_depth_max, queue_fill_max), ``keepalive`` (failures, leases_lost),
        ``batches`` (read/write: batches, items, max), ``bulk`` (items per
        operation) and ``enabled``. All zero, with ``enabled`` False, for a client
        made without ``metrics``.
        """
        return stats_of(self._transport)

    @property
    def endpoints(self) -> List[Endpoint]:
        """The endpoints in use now."""
        return self._transport.endpoints

    async def sync_endpoints(self) -> List[Endpoint]:
        """Replace the endpoints with the cluster's members' client URLs now.

        Returns the new endpoint list (learners and members not started yet are
        left out, as etcd's Go client does).
        :raises Etcd3Exception: the member list could not be fetched.
        """
        syncer = self._existing_engine(_SYNCER)
        if not isinstance(syncer, AioEndpointSyncer):
            syncer = AioEndpointSyncer(self._transport, 1.0)
        await syncer.sync_once()
        return self.endpoints

    def _start_endpoint_sync(self) -> None:
        """Start ``endpoint_sync_interval``'s task in this loop, if asked for."""
        interval = self._endpoint_sync_interval
        if interval is not None:
            self._engine(_SYNCER, lambda: AioEndpointSyncer(self._transport, interval)
                         ).ensure_started()

    def namespace(self, prefix: KeyType) -> NamespacedClient:
        """A view of this client where every key lives under ``prefix`` (etcd's Go
        ``namespace``); see :class:`etcd3.aio.namespace.NamespacedClient`.

        :raises TypeError: ``prefix`` is not str or bytes. :raises ValueError: empty.
        """
        return NamespacedClient(self, prefix)

    def __repr__(self) -> str:
        provider = self._transport.token_provider
        auth = f" user={provider.user!r}" if provider else ""
        cls = type(self)
        return (f"<{cls.__module__}.{cls.__qualname__} "
                f"endpoints=[{self._transport.describe()}]{auth}>")

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._transport.closed

    async def close(self) -> None:
        """Stop every task and stream this client started and close its channels.

        Idempotent. Later calls raise :class:`~etcd3.exceptions.ClientClosedError`.
        """
        if self._transport.closed and self._engines.closed:
            return
        self._finalizer.detach()
        try:
            await self._engines.aclose()
        finally:
            await self._transport.aclose()

    async def __aenter__(self) -> Etcd3Client:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


def _bound(ref: weakref.ReferenceType[Etcd3Client]) -> None:
    """The client's transport made its pool in a (new) loop. (Engines of an ended
    loop are forgotten by :meth:`AioEngines.ensure` itself.)"""
    client = ref()
    if client is not None:
        client._start_endpoint_sync()


def client(
    host: Optional[str] = None,
    port: Optional[int] = None,
    ca_cert: Optional[str] = None,
    cert_key: Optional[str] = None,
    cert_cert: Optional[str] = None,
    timeout: Optional[float] = None,
    user: Optional[str] = None,
    password: Optional[str] = None,
    grpc_options: GrpcOptions = None,
    **kwargs: Any,
) -> Etcd3Client:
    """Return an :class:`Etcd3Client` (same arguments as :func:`etcd3.client`)."""
    return Etcd3Client(host=host, port=port, ca_cert=ca_cert, cert_key=cert_key,
                       cert_cert=cert_cert, timeout=timeout, user=user, password=password,
                       grpc_options=grpc_options, **kwargs)
