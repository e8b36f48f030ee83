"""The constructor arguments both clients take (threaded and asyncio), checked once."""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional

import grpc

from ._core.deadline import check_timeout
from .pool import Endpoint, EndpointSpec, credentials_from_files

#: Channels per endpoint unless told otherwise (chosen by benchmarks/bench_threads.py).
DEFAULT_CHANNELS_PER_ENDPOINT = 2


def _parse_env_endpoints(value: str) -> List[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def check_credentials(user: Optional[str], password: Optional[str]) -> None:
    """:raises ValueError: only one of ``user``/``password``, or an empty one."""
    if (user is None) != (password is None) or user == "" or password == "":
        raise ValueError("if using authentication credentials, both user and "
                         "password must be specified")


def resolve_endpoints(host: Optional[str], port: Optional[int], ca_cert: Optional[str],
                      cert_key: Optional[str], cert_cert: Optional[str],
                      endpoints: Optional[Iterable[EndpointSpec]],
                      timeout: Optional[float]) -> List[Endpoint]:
    """The endpoints a client connects to (see :class:`etcd3.Etcd3Client`'s
    parameters), with TLS credentials read from the certificate files.

    :raises ValueError: bad endpoints or certificate arguments.
    :raises TypeError: ``timeout`` is not a number of seconds.
    :raises OSError: a certificate file cannot be read.
    """
    check_timeout(timeout, zero_ok=False)
    creds: Optional[grpc.ChannelCredentials] = None
    if ca_cert is not None or cert_key is not None or cert_cert is not None:
        creds = credentials_from_files(ca_cert, cert_key, cert_cert)
    specs: List[EndpointSpec]
    if endpoints is not None:
        specs = [endpoints] if isinstance(endpoints, (str, Endpoint)) else list(endpoints)
    elif host is None and port is None and os.environ.get("ETCD_ENDPOINTS"):
        specs = list(_parse_env_endpoints(os.environ["ETCD_ENDPOINTS"]))
    else:
        specs = [Endpoint(host or "localhost", 2379 if port is None else port,
                          secure=creds is not None, creds=creds)]
    if not specs:
        raise ValueError("no etcd endpoint given")
    return [spec if isinstance(spec, Endpoint) else Endpoint.from_url(spec, creds=creds)
            for spec in specs]


def attach_recorder(transport: Any, metrics: Optional[bool], meter_provider: Any,
                    tracer_provider: Any, trace_propagation: bool) -> None:
    """Give ``transport`` (and its pool and token provider) the recorder the
    ``metrics`` arguments ask for (see :mod:`etcd3.observability`), or none.

    :raises ImportError: a provider is given but ``opentelemetry-api`` is missing.
    """
    from .observability import recorder_for

    recorder = recorder_for(metrics, meter_provider, tracer_provider, trace_propagation)
    transport.recorder = recorder
    if transport.token_provider is not None:
        transport.token_provider.recorder = recorder
    # The threaded transport's pool exists now; the asyncio one makes its pool in
    # the event loop later and hands the recorder on then.
    pool = transport.__dict__.get("pool")
    if pool is not None:
        pool.recorder = recorder


def stats_of(transport: Any) -> Dict[str, Any]:
    """``client.stats()``: the recorder's snapshot, with ``enabled``."""
    from ._core.stats import Stats

    recorder = transport.recorder
    if recorder is None:
        snapshot = Stats(_NoLock()).snapshot()
        snapshot["enabled"] = False
        return snapshot
    snapshot = Stats.snapshot(recorder)
    snapshot["enabled"] = True
    return snapshot


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None
