"""Endpoints, their gRPC channels, health tracking and picking.

Each endpoint gets ``channels_per_endpoint`` channels, each on its own TCP
connection (a local subchannel pool), so many threads do not queue on one HTTP/2
connection. Calls are spread round-robin over the channels of healthy endpoints; an
endpoint that fails with UNAVAILABLE is ejected for a backoff period (doubling up to
its ``time_retry``) and then probed again by real traffic.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

import grpc

from . import exceptions

#: Options every channel gets (the caller's grpc_options override them).
DEFAULT_CHANNEL_OPTIONS: Tuple[Tuple[str, Any], ...] = (
    # etcd's Go client receives up to 2 GiB; gRPC's 4 MiB default cuts big ranges.
    ("grpc.max_receive_message_length", 2**31 - 1),
    ("grpc.max_send_message_length", 2**31 - 1),
    # Detect a dead or frozen member on an idle-looking connection. etcd refuses
    # pings more frequent than its --grpc-keepalive-min-time (5 s by default).
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 3000),
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


class Endpoint:
    """One etcd member address (python-etcd3-compatible).

    :param host: host name or IP address.
    :param port: client port.
    :param secure: use TLS; ``creds`` (``grpc.ssl_channel_credentials``) is then
        required, as in python-etcd3.
    :param creds: channel credentials for TLS.
    :param time_retry: the longest time, in seconds, a failed endpoint is left
        aside before it is tried again.
    :param opts: extra gRPC channel options for this endpoint.
    :raises ValueError: ``secure`` without ``creds``, or a bad port.
    """

    def __init__(
        self,
        host: str,
        port: int,
        secure: bool = True,
        creds: Optional[grpc.ChannelCredentials] = None,
        time_retry: float = 300.0,
        opts: Optional[Sequence[Tuple[str, Any]]] = None,
    ) -> None:
        if secure and creds is None:
            raise ValueError("Please set TLS credentials for secure connections")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"invalid port {port!r}")
        self.host = host
        self.port = port
        self.netloc = f"[{host}]:{port}" if ":" in host and not host.startswith("[") \
            else f"{host}:{port}"
        self.secure = secure
        self.protocol = "https" if secure else "http"
        self.credentials = creds
        self.time_retry = float(time_retry)
        self.opts = list(opts or ())

    @classmethod
    def from_url(cls, url: str, *, creds: Optional[grpc.ChannelCredentials] = None,
                 time_retry: float = 300.0,
                 opts: Optional[Sequence[Tuple[str, Any]]] = None) -> "Endpoint":
        """An endpoint from ``host:port``, ``http://host:port`` or ``https://host:port``.

        ``https`` uses ``creds`` or, when None, the system's root certificates.
        :raises ValueError: a malformed URL.
        """
        text = url.strip()
        if "://" not in text:
            text = ("https://" if creds is not None else "http://") + text
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https", "unix") or not parts.hostname:
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

    def __str__(self) -> str:
        return f"{self.protocol}://{self.netloc}"

    def __repr__(self) -> str:
        return f"Endpoint({self})"


class EndpointState:
    """An endpoint with its channels and health; owned by :class:`ChannelPool`."""

    __slots__ = ("endpoint", "channels", "failures", "ejected_until", "_next", "callables")

    def __init__(self, endpoint: Endpoint, channels: List[grpc.Channel]) -> None:
        self.endpoint = endpoint
        self.channels = channels
        self.failures = 0
        self.ejected_until = 0.0
        self._next = itertools.count()
        # Per-channel registry of multi-callables: (path, kind) -> callable.
        self.callables: List[dict[Any, Any]] = [{} for _ in channels]

    def pick_index(self) -> int:
        return next(self._next) % len(self.channels)

    @property
    def name(self) -> str:
        return self.endpoint.netloc


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
    """Channels to every endpoint, with failure ejection and fork safety.

    Thread-safe. After ``os.fork()`` the child re-creates its channels on first use
    (gRPC objects must not cross a fork); the parent's are left untouched.
    """

    def __init__(
        self,
        endpoints: Iterable[Endpoint],
        *,
        channels_per_endpoint: int = 1,
        grpc_options: Optional[Sequence[Tuple[str, Any]]] = None,
        min_ejection: float = 0.5,
    ) -> None:
        self.endpoints = list(endpoints)
        if not self.endpoints:
            raise ValueError("at least one etcd endpoint is required")
        if channels_per_endpoint < 1:
            raise ValueError("channels_per_endpoint must be >= 1")
        self.channels_per_endpoint = channels_per_endpoint
        self.options = list(DEFAULT_CHANNEL_OPTIONS) + list(grpc_options or ())
        self.min_ejection = min_ejection
        self._lock = threading.Lock()
        self._closed = False
        self._next = itertools.count()
        self._build()

    def _build(self) -> None:
        self._pid = os.getpid()
        self.states = [
            EndpointState(ep, [ep.make_channel(self.options + [("etcd3.channel", i)])
                               for i in range(self.channels_per_endpoint)])
            for ep in self.endpoints
        ]
        self._healthy: Tuple[EndpointState, ...] = tuple(self.states)

    def _check(self) -> None:
        if self._closed:
            raise exceptions.ClientClosedError("this etcd3 client has been closed")
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._build()

    def pick(self, avoid: Optional[EndpointState] = None) -> EndpointState:
        """An endpoint to send the next call to.

        Healthy endpoints round-robin; ``avoid`` (the one that just failed) is skipped
        when another is available. When every endpoint is ejected, the one whose
        ejection ends first is probed.
        :raises ClientClosedError: the pool is closed.
        """
        self._check()
        healthy = self._healthy
        if healthy:
            state = healthy[next(self._next) % len(healthy)]
            if state is avoid and len(healthy) > 1:
                state = healthy[next(self._next) % len(healthy)]
                if state is avoid:
                    state = healthy[next(self._next) % len(healthy)]
            if state.ejected_until == 0.0 or state.ejected_until <= time.monotonic():
                return state
        return self._pick_slow(avoid)

    def _pick_slow(self, avoid: Optional[EndpointState]) -> EndpointState:
        now = time.monotonic()
        with self._lock:
            self._healthy = tuple(s for s in self.states if s.ejected_until <= now)
            candidates = [s for s in self._healthy if s is not avoid] or list(self._healthy)
            if candidates:
                return candidates[next(self._next) % len(candidates)]
            others = [s for s in self.states if s is not avoid] or self.states
            return min(others, key=lambda s: s.ejected_until)

    def mark_failed(self, state: EndpointState) -> None:
        """Eject ``state`` for a backoff period (grows with consecutive failures)."""
        with self._lock:
            state.failures += 1
            period = min(state.endpoint.time_retry,
                         self.min_ejection * 2 ** min(state.failures - 1, 16))
            state.ejected_until = time.monotonic() + period
            self._healthy = tuple(s for s in self.states if s.ejected_until <= time.monotonic())

    def mark_ok(self, state: EndpointState) -> None:
        """Record a success on ``state`` (re-admits an ejected endpoint)."""
        if state.failures or state.ejected_until:
            with self._lock:
                state.failures = 0
                state.ejected_until = 0.0
                now = time.monotonic()
                self._healthy = tuple(s for s in self.states if s.ejected_until <= now)

    def describe(self) -> str:
        """The endpoints, comma-separated, for error messages."""
        return ", ".join(str(ep) for ep in self.endpoints)

    def close(self) -> None:
        """Close every channel. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            states = self.states if self._pid == os.getpid() else []
        for state in states:
            for channel in state.channels:
                channel.close()

    @property
    def closed(self) -> bool:
        return self._closed
