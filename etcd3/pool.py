"""Endpoints, their gRPC channels, health tracking and picking.

Each endpoint gets ``channels_per_endpoint`` channels, each on its own TCP
connection (a local subchannel pool), so many threads do not queue on one HTTP/2
connection. Calls are spread round-robin over the channels of healthy endpoints.

An endpoint whose call fails with UNAVAILABLE (or whose read attempt times out) is
*ejected*: no call is sent to it for a backoff period (0.5 s, doubling per failed
probe, capped by the endpoint's ``time_retry``). When the period ends, a probe is sent
on each of its channels; only when all pass is the endpoint re-admitted. So real
traffic, writes in particular, never goes to a member that is still down, frozen,
hung or cut off from its cluster. When every endpoint is ejected, calls go to them
anyway (round-robin), so a cluster that comes back is used at once.

The probe is a real etcd call that only a working member can answer: a
*linearizable* Range of the key ``health`` (count only, as ``etcdctl endpoint
health`` does), sent with the require-leader metadata ``hasleader: true`` and a short
deadline (``probe_timeout``, 1 s). A member without a leader refuses it ("etcdserver:
no leader"); a member cut off from the leader cannot complete the read index a
linearizable read needs; a hung member does not answer in time. gRPC's
``grpc.health.v1.Health/Check`` proves none of this (etcd answers SERVING while it
has no leader, and an etcd gRPC proxy answers it UNIMPLEMENTED). The probe carries no
auth token: etcd checks permissions only after the read index, so "user name is
empty" or "permission denied" also prove a working member.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)
from urllib.parse import urlsplit

import grpc

from . import exceptions
from ._sync import forksafe as _forksafe

if TYPE_CHECKING:
    from ._core.stats import Stats

log = logging.getLogger("etcd3")

#: Options every channel gets (the caller's grpc_options override them).
DEFAULT_CHANNEL_OPTIONS: Tuple[Tuple[str, Any], ...] = (
    # etcd's Go client receives up to 2 GiB; gRPC's 4 MiB default cuts big ranges.
    ("grpc.max_receive_message_length", 2**31 - 1),
    ("grpc.max_send_message_length", 2**31 - 1),
    # Detect a dead or frozen member while calls are in flight on its connection.
    # etcd answers pings more frequent than its --grpc-keepalive-min-time (5 s by
    # default) with GOAWAY "too_many_pings", hence 6 s; a frozen member is noticed
    # after about 6 + 3 s.
    ("grpc.keepalive_time_ms", 6000),
    ("grpc.keepalive_timeout_ms", 3000),
    # gRPC core times keepalive pings out after grpc.http2.ping_timeout_ms (60 s by
    # default), not keepalive_timeout_ms alone: without this a frozen member goes
    # unnoticed for a minute.
    ("grpc.http2.ping_timeout_ms", 3000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect quickly to a member that comes back.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    # Retries are ours (see etcd3.retry); gRPC's own would repeat writes.
    ("grpc.enable_retries", 0),
    ("grpc.use_local_subchannel_pool", 1),
)

#: The longest ejection when the endpoint's ``time_retry`` is not set.
DEFAULT_MAX_EJECTION = 5.0

#: gRPC metadata asking etcd to refuse the call when the member has no leader (Go's
#: ``clientv3.WithRequireLeader``): "etcdserver: no leader" (UNAVAILABLE) instead of a
#: stale answer, or a stream that stays open and silent.
REQUIRE_LEADER = ("hasleader", "true")

_PROBE_PATH = "/etcdserverpb.KV/Range"
#: RangeRequest{key: "health", count_only: true}: linearizable (serializable unset).
_PROBE_REQUEST = b"\x0a\x06health\x48\x01"
#: Probe failures that say nothing came back from a working member.
_PROBE_FAILURES = frozenset((grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                             grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN,
                             grpc.StatusCode.INTERNAL))


class Endpoint:
    """One etcd member address (python-etcd3-compatible).

    :param host: host name or IP address.
    :param port: client port.
    :param secure: use TLS; ``creds`` (``grpc.ssl_channel_credentials``) is then
        required, as in python-etcd3.
    :param creds: channel credentials for TLS.
    :param time_retry: the longest time, in seconds, a failed endpoint is left
        aside before it is probed again (None: 5 s).
    :param opts: extra gRPC channel options for this endpoint.
    :raises ValueError: ``secure`` without ``creds``, or a bad port.
    """

    def __init__(
        self,
        host: str,
        port: int,
        secure: bool = True,
        creds: Optional[grpc.ChannelCredentials] = None,
        time_retry: Optional[float] = None,
        opts: Optional[Sequence[Tuple[str, Any]]] = None,
    ) -> None:
        if secure and creds is None:
            raise ValueError("Please set TLS credentials for secure connections")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"invalid port {port!r}")
        if time_retry is not None and time_retry <= 0:
            raise ValueError("time_retry must be > 0 seconds")
        self.host = host
        self.port = port
        self.netloc = f"[{host}]:{port}" if ":" in host and not host.startswith("[") \
            else f"{host}:{port}"
        self.secure = secure
        self.protocol = "https" if secure else "http"
        self.credentials = creds
        self.time_retry = DEFAULT_MAX_EJECTION if time_retry is None else float(time_retry)
        self.opts = list(opts or ())

    @classmethod
    def from_url(cls, url: str, *, creds: Optional[grpc.ChannelCredentials] = None,
                 time_retry: Optional[float] = None,
                 opts: Optional[Sequence[Tuple[str, Any]]] = None) -> Endpoint:
        """An endpoint from ``host:port``, ``http://host:port`` or ``https://host:port``.

        A bare ``host:port`` uses TLS when ``creds`` is given. ``https`` uses
        ``creds`` or, when None, the system's root certificates.
        :raises ValueError: a malformed URL.
        """
        text = url.strip()
        if "://" not in text:
            text = ("https://" if creds is not None else "http://") + text
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"invalid etcd endpoint {url!r}; expected host:port or "
                             "http(s)://host:port")
        try:
            port = parts.port or 2379
        except ValueError as error:
            raise ValueError(f"invalid port in etcd endpoint {url!r}") from error
        secure = parts.scheme == "https"
        if secure and creds is None:
            creds = grpc.ssl_channel_credentials()
        return cls(parts.hostname, port, secure=secure, creds=creds if secure else None,
                   time_retry=time_retry, opts=opts)

    def make_channel(self, options: Sequence[Tuple[str, Any]]) -> grpc.Channel:
        """A new gRPC channel to this endpoint."""
        merged = dict(options)
        merged.update(dict(self.opts))
        opts = list(merged.items())
        if self.secure:
            assert self.credentials is not None
            return grpc.secure_channel(self.netloc, self.credentials, options=opts)
        return grpc.insecure_channel(self.netloc, options=opts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Endpoint):
            return NotImplemented
        return (self.netloc, self.secure) == (other.netloc, other.secure)

    def __hash__(self) -> int:
        return hash((self.netloc, self.secure))

    def __str__(self) -> str:
        return f"{self.protocol}://{self.netloc}"

    def __repr__(self) -> str:
        return f"Endpoint({self})"


class EndpointState:
    """An endpoint with its channels and health; owned by :class:`ChannelPool`."""

    __slots__ = ("endpoint", "channels", "failures", "ejected_until", "probing", "_next",
                 "callables", "name", "version", "version_pending")

    def __init__(self, endpoint: Endpoint, channels: List[grpc.Channel]) -> None:
        self.endpoint = endpoint
        self.channels = channels
        self.name = endpoint.netloc
        self.failures = 0
        self.ejected_until = 0.0
        self.probing = False
        # The server's version (e.g. (3, 5, 1)) once a Status call told it; None until
        # then and again after the endpoint was ejected (it may have been restarted
        # as another version).
        self.version: Optional[Tuple[int, ...]] = None
        self.version_pending = 0.0  # no Status call for the version before this time
        self._next = itertools.count()
        # Per-channel registry of multi-callables: (path, kind) -> callable.
        self.callables: List[dict[Any, Any]] = [{} for _ in channels]

    def pick_index(self) -> int:
        """The channel for the next call (round-robin)."""
        return next(self._next) % len(self.channels)

    @property
    def ejected(self) -> bool:
        return self.ejected_until != 0.0

    def close(self) -> None:
        for channel in self.channels:
            channel.close()

    def __repr__(self) -> str:
        status = "ejected" if self.ejected else "healthy"
        return f"<EndpointState {self.endpoint} {status} failures={self.failures}>"


def credentials_from_files(ca_cert: Optional[str], cert_key: Optional[str] = None,
                           cert_cert: Optional[str] = None) -> grpc.ChannelCredentials:
    """TLS channel credentials from PEM files (CA, and client key/cert for mTLS).

    :raises ValueError: only one of ``cert_key``/``cert_cert`` given.
    :raises OSError: a file cannot be read.
    """
    if (cert_key is None) != (cert_cert is None):
        raise ValueError("to use a client certificate, give both cert_key and cert_cert")

    def read(path: Optional[str]) -> Optional[bytes]:
        if path is None:
            return None
        with open(path, "rb") as handle:
            return handle.read()

    return grpc.ssl_channel_credentials(read(ca_cert), read(cert_key), read(cert_cert))


EndpointSpec = Union[str, Endpoint]


class ChannelPool:
    """Channels to every endpoint, with failure ejection, probing and fork safety.

    Thread-safe. After ``os.fork()`` the child re-creates its channels on first use
    (gRPC objects must not cross a fork); the parent's are left untouched.

    :param channels_per_endpoint: channels (TCP connections) per endpoint.
    :param grpc_options: extra channel options, overriding :data:`DEFAULT_CHANNEL_OPTIONS`.
    :param min_ejection: the first ejection period, in seconds.
    :param probe_timeout: seconds a health probe may take before the endpoint is
        considered still down.
    """

    #: Told of ejections and re-admissions (see :mod:`etcd3.observability`).
    recorder: Optional[Stats] = None

    def __init__(
        self,
        endpoints: Iterable[Endpoint],
        *,
        channels_per_endpoint: int = 1,
        grpc_options: Optional[Sequence[Tuple[str, Any]]] = None,
        min_ejection: float = 0.5,
        probe_timeout: float = 1.0,
    ) -> None:
        self.endpoints = list(dict.fromkeys(endpoints))
        if not self.endpoints:
            raise ValueError("at least one etcd endpoint is required")
        if channels_per_endpoint < 1:
            raise ValueError("channels_per_endpoint must be >= 1")
        self.channels_per_endpoint = channels_per_endpoint
        self.options = list(DEFAULT_CHANNEL_OPTIONS) + list(grpc_options or ())
        self.min_ejection = min_ejection
        self.probe_timeout = probe_timeout
        self._lock = threading.Lock()
        self._closed = False
        self._next = itertools.count()
        self._retired: List[EndpointState] = []
        self._pid = os.getpid()
        _forksafe.register(self)
        self.states = [self._new_state(ep) for ep in self.endpoints]
        self._healthy: Tuple[EndpointState, ...] = tuple(self.states)
        self._probe_at = float("inf")

    def _new_state(self, endpoint: Endpoint) -> EndpointState:
        return EndpointState(endpoint, [
            endpoint.make_channel(self.options + [("etcd3.channel", i)])
            for i in range(self.channels_per_endpoint)])

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # channels are replaced on the next call

    def _check(self) -> None:
        if self._closed:
            raise exceptions.ClientClosedError("this etcd3 client has been closed")
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    # The parent's channels belong to the parent: drop, never close.
                    self._pid = os.getpid()
                    self._retired = []
                    self.states = [self._new_state(ep) for ep in self.endpoints]
                    self._healthy = tuple(self.states)
                    self._probe_at = float("inf")

    # -- picking ----------------------------------------------------------------------

    def pick(self, avoid: Optional[EndpointState] = None) -> EndpointState:
        """An endpoint to send the next call to.

        Healthy endpoints round-robin; ``avoid`` (the one that just failed) is skipped
        when another is available. When every endpoint is ejected, they are tried
        round-robin all the same.
        :raises ClientClosedError: the pool is closed.
        """
        if self._closed or self._pid != os.getpid():
            self._check()
        if self._probe_at <= time.monotonic():
            self._start_due_probes()
        healthy = self._healthy
        count = len(healthy)
        if count:
            index = next(self._next) % count
            state = healthy[index]
            if state is avoid and count > 1:
                state = healthy[(index + 1) % count]
            return state
        states = self.states
        index = next(self._next) % len(states)
        state = states[index]
        if state is avoid and len(states) > 1:
            state = states[(index + 1) % len(states)]
        return state

    def has_untried(self, tried: Sequence[str]) -> bool:
        """True when a healthy endpoint is left whose name is not in ``tried``."""
        return any(state.name not in tried for state in self._healthy)

    def preferred(self) -> EndpointState:
        """The first healthy endpoint (else the first endpoint): a stable choice, for
        callers that pair one endpoint's channel with that endpoint's auth token.

        :raises ClientClosedError: the pool is closed.
        """
        if self._closed or self._pid != os.getpid():
            self._check()
        healthy = self._healthy
        return healthy[0] if healthy else self.states[0]

    def _refresh_healthy(self) -> None:
        # Called with the lock held.
        self._healthy = tuple(s for s in self.states if not s.ejected)
        waiting = [s.ejected_until for s in self.states if s.ejected and not s.probing]
        self._probe_at = min(waiting, default=float("inf"))

    # -- health -----------------------------------------------------------------------

    def mark_failed(self, state: EndpointState) -> None:
        """Eject ``state`` (no-op when it already is): no call goes to it until a
        health probe succeeds."""
        if state.ejected:
            return
        with self._lock:
            if state.ejected:
                return
            self._eject(state)
        log.info("etcd3: endpoint %s ejected after a failure", state.endpoint)
        if self.recorder is not None:
            self.recorder.ejected(state.name)

    def _eject(self, state: EndpointState) -> None:
        state.failures += 1
        period = min(state.endpoint.time_retry,
                     self.min_ejection * 2 ** min(state.failures - 1, 16))
        state.ejected_until = time.monotonic() + period
        self._refresh_healthy()

    def mark_ok(self, state: EndpointState) -> None:
        """Record a success on ``state`` (re-admits an ejected endpoint)."""
        if state.failures or state.ejected:
            with self._lock:
                readmitted = state.ejected
                if readmitted:
                    state.version = None
                    state.version_pending = 0.0
                state.failures = 0
                state.ejected_until = 0.0
                self._refresh_healthy()
            if readmitted:
                log.info("etcd3: endpoint %s is back", state.endpoint)
            if self.recorder is not None:
                self.recorder.readmitted(state.name)

    def _start_due_probes(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [s for s in self.states
                   if s.ejected and not s.probing and s.ejected_until <= now]
            for state in due:
                state.probing = True
            self._refresh_healthy()
        for state in due:
            self._probe(state)

    def _probe(self, state: EndpointState) -> None:
        """Probe every channel of ``state`` without blocking (see the module docstring);
        re-admit it when all pass, else eject it again for a longer period."""
        pending = [len(state.channels)]
        failed = [False]
        guard = threading.Lock()

        def done(ok: bool) -> None:
            with guard:
                failed[0] = failed[0] or not ok
                pending[0] -= 1
                if pending[0]:
                    return
            self._probe_finished(state, not failed[0])

        for channel in state.channels:
            self._probe_channel(channel, done)

    def check(self, state: EndpointState, done: Callable[[bool], None]) -> None:
        """Probe one channel of ``state`` as a health probe does, without blocking;
        ``done(ok)`` is told the outcome (on a gRPC thread). For liveness checks that
        cannot use the stream they watch (etcd's gRPC proxy ignores progress requests).
        """
        self._probe_channel(state.channels[0], done)

    def _probe_channel(self, channel: grpc.Channel, done: Callable[[bool], None]) -> None:
        def finished(call: Any) -> None:
            try:
                call.result()
                ok = True
            except grpc.RpcError:
                # Any etcd answer given after the read index (e.g. "user name is
                # empty", "permission denied") comes from a working member.
                ok = call.code() not in _PROBE_FAILURES
            except Exception:
                ok = False
            done(ok)

        try:
            probe = channel.unary_unary(_PROBE_PATH, request_serializer=_identity,
                                        response_deserializer=_identity)
            call = probe.future(_PROBE_REQUEST, timeout=self.probe_timeout,
                                metadata=(REQUIRE_LEADER,), wait_for_ready=True)
        except Exception:  # the channel was closed meanwhile
            done(False)
            return
        call.add_done_callback(finished)

    def _probe_finished(self, state: EndpointState, ok: bool) -> None:
        with self._lock:
            state.probing = False
            if self._closed or state not in self.states:
                return
            readmitted = ok and state.ejected
            if readmitted:
                state.version = None  # it may have been restarted as another version
                state.version_pending = 0.0
            if ok:
                state.failures = 0
                state.ejected_until = 0.0
                self._refresh_healthy()
            else:
                self._eject(state)
        if readmitted:
            log.info("etcd3: endpoint %s is back", state.endpoint)
            if self.recorder is not None:
                self.recorder.readmitted(state.name)

    # -- membership -------------------------------------------------------------------

    def set_endpoints(self, endpoints: Sequence[Endpoint]) -> None:
        """Replace the endpoint list (endpoint auto-sync); kept endpoints keep their
        channels and health. Channels of removed endpoints are closed on the next
        change or at :meth:`close`, so calls in flight on them can finish.
        :raises ValueError: an empty list.
        """
        wanted = list(dict.fromkeys(endpoints))
        if not wanted:
            raise ValueError("at least one etcd endpoint is required")
        with self._lock:
            if self._closed or wanted == self.endpoints:
                return
            current = {s.endpoint: s for s in self.states}
            to_close, self._retired = self._retired, []
            states = []
            for endpoint in wanted:
                state = current.pop(endpoint, None)
                states.append(state if state is not None else self._new_state(endpoint))
            self._retired = list(current.values())
            self.endpoints = wanted
            self.states = states
            self._refresh_healthy()
        for state in to_close:
            state.close()
        log.info("etcd3: endpoints are now %s", self.describe())

    def describe(self) -> str:
        """The endpoints, comma-separated, for error messages."""
        return ", ".join(str(ep) for ep in self.endpoints)

    def close(self) -> None:
        """Close every channel. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            states = self.states + self._retired if self._pid == os.getpid() else []
            self._retired = []
        for state in states:
            state.close()

    @property
    def closed(self) -> bool:
        return self._closed


def _identity(data: bytes) -> bytes:
    return data


def member_client_urls(response: Any) -> List[str]:
    """The client URLs of a MemberListResponse's started voting members (learners
    and members not started yet are left out, as etcd's Go client does)."""
    return [url for member in response.members
            if member.name and not member.isLearner for url in member.clientURLs]


def member_endpoint(pool: ChannelPool, url: str) -> Endpoint:
    """An endpoint for a member's client URL, with the pool's TLS credentials."""
    creds = None
    if url.startswith("https://"):
        creds = next((ep.credentials for ep in pool.endpoints if ep.secure), None)
    return Endpoint.from_url(url, creds=creds)


def endpoints_from_urls(urls: Sequence[str], make: Callable[[str], Endpoint]
                        ) -> List[Endpoint]:
    """``make(url)`` of each non-empty URL; a malformed one is logged and left out."""
    endpoints = []
    for url in urls:
        if not url:
            continue
        try:
            endpoints.append(make(url))
        except ValueError:
            log.warning("etcd3: ignoring member URL %r", url)
    return endpoints


class EndpointSyncer:
    """A thread that refreshes a pool's endpoints from the cluster's member list.

    ``fetch()`` returns the members' client URLs (it runs the MemberList RPC through
    the transport); ``make(url)`` turns one into an :class:`Endpoint`. A failed fetch
    is logged and tried again next round; the list is never emptied.
    """

    def __init__(self, pool: ChannelPool, interval: float,
                 fetch: Callable[[], Sequence[str]],
                 make: Callable[[str], Endpoint]) -> None:
        if interval <= 0:
            raise ValueError("endpoint_sync_interval must be > 0 seconds")
        self._pool = pool
        self._interval = interval
        self._fetch = fetch
        self._make = make
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        """Start the thread (once; again in a forked child)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            if self._stop.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._run, name="etcd3-endpoint-sync",
                                            daemon=True)
            self._thread.start()

    def sync_once(self) -> None:
        """Fetch the member list and update the pool now."""
        endpoints = endpoints_from_urls(self._fetch(), self._make)
        if endpoints:
            self._pool.set_endpoints(endpoints)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sync_once()
            except exceptions.ClientClosedError:
                return
            except Exception as error:  # keep the old list; try next round
                log.warning("etcd3: endpoint sync failed: %s", error)

    def stop(self) -> None:
        """Stop the thread and wait for it. Idempotent."""
        self.close(wait=True)

    def close(self, wait: bool = True) -> None:
        """Stop the thread (``wait``: and wait for it). Idempotent."""
        self._stop.set()
        thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread() \
                and thread.is_alive():
            thread.join()

    def abandon_after_fork(self) -> None:
        """In a forked child: the thread is the parent's; never run here."""
        self._stop.set()
        self._lock = threading.Lock()
