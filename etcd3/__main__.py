"""``python -m etcd3``: versions and codec, and optionally a health probe of endpoints.

    python -m etcd3                       # versions, codec implementation
    python -m etcd3 --endpoints 127.0.0.1:2379,127.0.0.1:22379 --health
    python -m etcd3 --endpoints https://10.0.0.1:2379 --health --ca-cert ca.crt \
        --cert-key client.key --cert-cert client.crt --user root   # password: $ETCD3_PASSWORD
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any, Dict, List, Optional


def _versions() -> List[str]:
    import google.protobuf
    import grpc

    from . import __version__, codec

    try:
        from google.protobuf.internal import api_implementation
        backend = api_implementation.Type()
    except Exception:  # pragma: no cover - very old protobuf
        backend = "unknown"
    return [
        f"etcd3 {__version__}",
        f"codec: {codec.IMPLEMENTATION}"
        + (" (forced by ETCD3_NO_EXTENSIONS)" if os.environ.get("ETCD3_NO_EXTENSIONS") else ""),
        f"grpcio {grpc.__version__}",
        f"protobuf {google.protobuf.__version__} ({backend})",
        f"python {platform.python_version()} on {platform.platform()}",
    ]


def _probe(endpoints: List[str], timeout: float, options: Optional[Dict[str, Any]] = None
           ) -> int:
    from . import client, exceptions

    failures = 0
    for endpoint in endpoints:
        started = time.monotonic()
        try:
            with client(endpoints=[endpoint], timeout=timeout, **(options or {})) as etcd:
                etcd.get("health-probe", serializable=True)
                status = etcd.status() if hasattr(etcd, "status") else None
            elapsed = (time.monotonic() - started) * 1000
            version = getattr(status, "version", "?")
            print(f"{endpoint}: healthy (etcd {version}, {elapsed:.1f} ms)")
        except exceptions.Etcd3Exception as error:
            failures += 1
            print(f"{endpoint}: UNHEALTHY: {type(error).__name__}: {error}")
    return 1 if failures else 0


def main(argv: Optional[List[str]] = None) -> int:
    """Print diagnostics; with ``--health``, probe each endpoint (exit 1 if any fails)."""
    parser = argparse.ArgumentParser(prog="python -m etcd3", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", default=os.environ.get("ETCD_ENDPOINTS", ""),
                        help="comma-separated endpoints (default: $ETCD_ENDPOINTS)")
    parser.add_argument("--health", action="store_true", help="probe each endpoint")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per probe")
    parser.add_argument("--ca-cert", help="CA certificate file: connect with TLS")
    parser.add_argument("--cert-key", help="client private key file (mTLS)")
    parser.add_argument("--cert-cert", help="client certificate file (mTLS)")
    parser.add_argument("--user", help="user name, on a cluster with authentication "
                        "(password: --password or $ETCD3_PASSWORD)")
    parser.add_argument("--password", default=os.environ.get("ETCD3_PASSWORD"),
                        help="that user's password (default: $ETCD3_PASSWORD)")
    args = parser.parse_args(argv)
    for line in _versions():
        print(line)
    if args.health:
        endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
        if not endpoints:
            print("--health needs --endpoints or $ETCD_ENDPOINTS", file=sys.stderr)
            return 2
        if (args.cert_key is None) != (args.cert_cert is None):
            print("--cert-key and --cert-cert go together", file=sys.stderr)
            return 2
        if args.user and not args.password:
            print("--user needs --password or $ETCD3_PASSWORD", file=sys.stderr)
            return 2
        options = {name: getattr(args, name) for name in ("ca_cert", "cert_key", "cert_cert")
                   if getattr(args, name) is not None}
        if args.user:
            options.update(user=args.user, password=args.password)
        return _probe(endpoints, args.timeout, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
