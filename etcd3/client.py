"""The client: one object, safe to share between threads, that owns the connections.

:class:`Etcd3Client` is a thin facade: each concern lives in its own mixin module
(kv, leases, watch, locks, election, auth, cluster, maintenance, bulk) and the
transport (pool + retry + token) underneath is shared by all of them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ._client_config import (
    DEFAULT_CHANNELS_PER_ENDPOINT,
    attach_recorder,
    check_credentials,
    resolve_endpoints,
    stats_of,
)
from ._core.write_batch_policy import checked_in_flight
from ._grpc import rpc as _rpc
from ._sync import lifecycle as _lifecycle
from ._sync.lifecycle import Engines
from ._sync.read_batch import ReadBatcher
from ._sync.token import TokenProvider
from ._sync.transport import Transport
from ._sync.write_batch import WriteBatcher
from .auth import AuthMixin
from .bulk import BulkMixin
from .cache import CacheMixin
from .cluster import ClusterMixin
from .election import ElectionMixin
from .etcdrpc import rpc_pb2 as pb
from .kv import KVMixin
from .leases import LeaseMixin
from .locks import LockMixin
from .maintenance import MaintenanceMixin
from .namespace import NamespacedClient
from .pool import (
    ChannelPool,
    Endpoint,
    EndpointSpec,
    EndpointSyncer,
    member_client_urls,
    member_endpoint,
)
from .retry import Retry
from .stm import STMMixin
from .stubs import EtcdTokenCallCredentials, RawStubsMixin
from .watch import WatchMixin, checked_unreachable_timeout

GrpcOptions = Optional[Sequence[Tuple[str, Any]]]



#: The name of the endpoint-sync engine.
_SYNCER = "endpoint-sync"


def _member_client_urls(transport: Transport) -> List[str]:
    return member_client_urls(transport.call(_rpc.MEMBER_LIST, pb.MemberListRequest()))


class Etcd3Client(KVMixin, LeaseMixin, WatchMixin, LockMixin, ElectionMixin, STMMixin,
                  AuthMixin, ClusterMixin, MaintenanceMixin, BulkMixin, CacheMixin,
                  RawStubsMixin):
    """A thread-safe etcd v3 client with endpoint failover, retries and token refresh.

    :param host: etcd host (used when ``endpoints`` is not given).
    :param port: etcd client port.
    :param ca_cert: CA certificate file: connect with TLS.
    :param cert_key: client private key file (mTLS, with ``cert_cert``).
    :param cert_cert: client certificate file (mTLS, with ``cert_key``).
    :param timeout: default deadline, in seconds, of each call, retries included
        (None: no deadline). Every call also takes ``timeout=`` of its own. A call
        past its deadline raises :class:`~etcd3.exceptions.ConnectionTimeoutError`.
    :param user: user name, for a cluster with authentication enabled.
    :param password: that user's password.
    :param grpc_options: extra gRPC channel options, as (name, value) pairs; they
        override :data:`etcd3.pool.DEFAULT_CHANNEL_OPTIONS` (keepalive, message
        limits, reconnect backoff).
    :param endpoints: etcd endpoints, ``"host:port"``, ``"http(s)://host:port"`` or
        :class:`Endpoint`; when neither this nor ``host``/``port`` is given the
        ``ETCD_ENDPOINTS`` environment variable (comma-separated) is used, then
        ``localhost:2379``. A bare ``host:port`` uses TLS when ``ca_cert`` is given.
    :param retry: the :class:`~etcd3.retry.Retry` policy (default: ``Retry()``):
        reads retry on another endpoint, writes only when provably never sent.
    :param channels_per_endpoint: gRPC channels (separate TCP connections) per
        endpoint; more helps many threads (see benchmarks/bench_threads.py).
    :param read_batch_in_flight: single-key reads on the wire at once before further
        concurrent ones are queued and sent together as one read-only transaction
        (linearizable as before; see ``etcd3/_sync/read_batch.py``); a lone reader is never
        delayed, and a large value effectively turns batching off.
    :param write_batch_in_flight: None (the default): off. Otherwise single-key
        writes (``put``, ``delete`` of one key) on the wire at once before further
        concurrent ones are queued and sent together as one transaction without
        compares (see ``etcd3/_sync/write_batch.py``). Each caller still gets its own
        response and errors, a lone writer is never delayed, writes to one key keep
        their order. Coalesced writes share one revision: leave it off if your code
        uses a write's revision as a unique sequence number. Turn it on when many
        threads write different keys at once and throughput matters more.
    :param endpoint_sync_interval: every this many seconds, replace the endpoint list
        with the cluster's member list (None: never, the default). Not run in a
        forked child.
    :param watch_unreachable_timeout: seconds without any reachable etcd member after
        which every watch ends with :class:`~etcd3.exceptions.ConnectionFailedError`
        (its iterator raises it, its callback receives it). None (the default):
        watches keep trying, as etcd's Go client does, and a WARNING is logged after
        10 s. Each watch method also takes ``unreachable_timeout=``.
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

    Failover: a member that fails with UNAVAILABLE (or times out a read) is left
    aside and health-probed until it answers again; calls meanwhile go to the others.
    Connections and the auth token are made on first use.

    Fork: a child process may keep using a client created before ``os.fork()`` as
    if it were new: on first use in the child it opens new channels and starts its
    own watch and keepalive threads (the parent's are left to the parent; watches
    started before the fork raise :class:`~etcd3.exceptions.ForkedWatchError` in the
    child). Endpoint sync does not run in a child. See the prefork guide.

    Lifetime: :meth:`close` (or ``with``) releases everything at once. A client
    dropped without it is released when it is garbage-collected (its threads end,
    its channels close; leases it kept alive then expire after their TTL), and one
    still open at interpreter exit is released without holding the exit up. A watch
    callback or ``on_expired``/``on_lost`` callback that refers to the client keeps
    it alive while registered.
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
        self.timeout = timeout
        self._watch_unreachable_timeout = checked_unreachable_timeout(
            watch_unreachable_timeout)
        self.retry = retry if retry is not None else Retry()
        pool = ChannelPool(resolved, channels_per_endpoint=channels_per_endpoint,
                           grpc_options=grpc_options)
        self._transport = Transport(
            pool,
            retry=self.retry,
            timeout=timeout,
            token_provider=TokenProvider(user, password) if user and password else None,
            authenticate_method=_rpc.AUTHENTICATE,
        )
        attach_recorder(self._transport, metrics, meter_provider, tracer_provider,
                        trace_propagation)
        self._read_batcher = ReadBatcher(self._transport, _rpc.RANGE, _rpc.TXN,
                                         max_in_flight=read_batch_in_flight)
        write_in_flight = checked_in_flight(write_batch_in_flight)
        self._write_batcher = (None if write_in_flight is None else
                               WriteBatcher(self._transport, max_in_flight=write_in_flight))
        self._engines = Engines()
        # Nothing the engines or the transport hold refers back to this object, so a
        # client dropped without close() is collected and released (see _lifecycle).
        self._finalizer = _lifecycle.release_when_dropped(self, self._engines,
                                                          self._transport.close)
        if endpoint_sync_interval is not None:
            self._engine(_SYNCER, lambda: self._new_syncer(endpoint_sync_interval)
                         ).ensure_started()

    @property
    def endpoints(self) -> List[Endpoint]:
        """The endpoints in use now (they change with ``endpoint_sync_interval``)."""
        return list(self._transport.pool.endpoints)

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

    def sync_endpoints(self) -> List[Endpoint]:
        """Replace the endpoints with the cluster's members' client URLs now.

        Returns the new endpoint list. Learners and members not started yet are left
        out, as etcd's Go client does.
        :raises Etcd3Exception: the member list could not be fetched.
        """
        syncer = self._existing_engine(_SYNCER) or self._new_syncer(1.0)
        assert isinstance(syncer, EndpointSyncer)
        syncer.sync_once()
        return self.endpoints

    def _new_syncer(self, interval: float) -> EndpointSyncer:
        # The syncer's thread must not hold the client (see _lifecycle): it gets the
        # transport and the pool only.
        transport = self._transport
        return EndpointSyncer(transport.pool, interval,
                              functools.partial(_member_client_urls, transport),
                              functools.partial(member_endpoint, transport.pool))

    def namespace(self, prefix: Union[str, bytes]) -> NamespacedClient:
        """A view of this client where every key lives under ``prefix`` (etcd's Go
        ``namespace``): keys go in and come back without it, ranges stay inside it.
        The view shares this client's connections and streams; see
        :class:`~etcd3.namespace.NamespacedClient`.

        :raises TypeError: ``prefix`` is not str or bytes. :raises ValueError: empty.
        """
        return NamespacedClient(self, prefix)

    def __repr__(self) -> str:
        user = self._transport.token_provider.user if self._transport.token_provider else None
        auth = f" user={user!r}" if user else ""
        # python-etcd3's repr starts "<etcd3.client.Etcd3Client" (APScheduler checks).
        cls = type(self)
        return (f"<{cls.__module__}.{cls.__qualname__} "
                f"endpoints=[{self._transport.pool.describe()}]{auth}>")

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._transport.closed

    def close(self) -> None:
        """Stop every thread and stream this client started and close its channels.

        Idempotent. Later calls raise :class:`~etcd3.exceptions.ClientClosedError`.
        """
        if self._transport.closed:
            return
        _lifecycle.forget(self._finalizer)
        if self._write_batcher is not None:
            self._write_batcher.close()
        try:
            self._engines.close()
        finally:
            self._transport.close()

    def __enter__(self) -> Etcd3Client:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class MultiEndpointEtcd3Client(Etcd3Client):
    """python-etcd3 master's multi-endpoint client, kept for compatibility.

    Every :class:`Etcd3Client` already fails over between its endpoints and retries
    safely; ``failover=False`` pins this one to the first endpoint, as python-etcd3's.
    """

    def __init__(self, endpoints: Iterable[Endpoint], timeout: Optional[float] = None,
                 user: Optional[str] = None, password: Optional[str] = None,
                 failover: bool = False, **kwargs: Any) -> None:
        chosen = list(endpoints)
        if not failover:
            chosen = chosen[:1]
        super().__init__(endpoints=chosen, timeout=timeout, user=user, password=password,
                         **kwargs)
        self.failover = failover


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
    """Return an :class:`Etcd3Client` (same arguments); python-etcd3's entry point."""
    return Etcd3Client(host=host, port=port, ca_cert=ca_cert, cert_key=cert_key,
                       cert_cert=cert_cert, timeout=timeout, user=user, password=password,
                       grpc_options=grpc_options, **kwargs)


if TYPE_CHECKING:
    from ._sync.client_api import (
        AuthClient,
        ClusterClient,
        ConcurrencyClient,
        KVClient,
        LeaseClient,
    )

    def _has_the_helpers_api(client: Etcd3Client) -> Tuple[
            KVClient, LeaseClient, ConcurrencyClient, AuthClient, ClusterClient]:
        """Lets mypy check that the client is what its helper objects take."""
        return client, client, client, client, client


__all__ = ["Etcd3Client", "MultiEndpointEtcd3Client", "client", "Endpoint",
           "EtcdTokenCallCredentials"]
ClientType = Union[Etcd3Client, MultiEndpointEtcd3Client]
