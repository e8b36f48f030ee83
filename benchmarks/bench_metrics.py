"""What metrics and traces cost: client CPU per single-thread get, side by side.

One etcd, one process, five clients: metrics off (the default) twice (the two
differ only by noise: that row is the noise floor), ``metrics=True``
(``client.stats()`` counters; OpenTelemetry's global meter provider, not set here,
so its instruments are no-ops), ``meter_provider=`` an OpenTelemetry SDK provider
with a Prometheus reader (what the observability guide sets up), and
``tracer_provider=`` an SDK provider whose spans go to an exporter that drops them.
Each round runs every client once, in a shuffled order, so drift hits all alike;
each figure is the median over rounds of the process CPU time
(``time.process_time``: this thread, gRPC's threads) per get, and of the wall time
per get, plus the median over rounds of each client's CPU over "off"'s in the same
round (the paired ratio).

"Off" costs two ``is None`` tests per call: the last row times them alone.

    python benchmarks/bench_metrics.py [--json] [--quick] [--ops N] [--repeat R]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from typing import Any, Dict, List, Sequence, Tuple

from _common import Bench, log, median, row

KEY, VALUE = b"/metrics/key", b"v" * 100


class _DropSpans:
    """A span exporter that keeps nothing (the span is still built and ended)."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _clients(server: Any) -> List[Tuple[str, Any]]:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    import etcd3

    meters = MeterProvider(metric_readers=[PrometheusMetricReader()])
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(_DropSpans()))  # type: ignore[arg-type]
    where = {"host": server.host, "port": server.port}
    return [
        ("off", etcd3.client(**where)),
        ("off again (the noise floor)", etcd3.client(**where)),
        ("metrics=True", etcd3.client(**where, metrics=True)),
        ("meter_provider (SDK + Prometheus reader)",
         etcd3.client(**where, meter_provider=meters)),
        ("tracer_provider (SDK, spans dropped)",
         etcd3.client(**where, tracer_provider=tracers)),
    ]


def _round(client: Any, ops: int) -> Tuple[float, float]:
    """(CPU seconds, wall seconds) per get over ``ops`` gets."""
    get = client.get
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(ops):
        get(KEY)
    return (time.process_time() - cpu) / ops, (time.perf_counter() - wall) / ops


def _off_hooks_ns() -> float:
    """Nanoseconds the hooks of a client without metrics add to one call."""
    import timeit

    class Holder:
        recorder = None

    holder = Holder()

    def hooks() -> None:
        recorder = holder.recorder
        if recorder is not None:
            pass
        if recorder is not None:
            pass

    number = 200_000
    return min(timeit.repeat(hooks, number=number, repeat=5)) / number * 1e9


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ops", type=int, default=None, help="gets per client per round")


def main() -> None:
    bench = Bench("bench_metrics", __doc__.splitlines()[0], _arguments)
    ops = bench.args.ops or (300 if bench.quick else 200)
    rounds = bench.args.repeat or (3 if bench.quick else 81)
    with bench.server() as server:
        clients = _clients(server)
        clients[0][1].put(KEY, VALUE)
        for _, client in clients:  # warm up every path (and learn the version)
            _round(client, 200)
        cpu: Dict[str, List[float]] = {name: [] for name, _ in clients}
        wall: Dict[str, List[float]] = {name: [] for name, _ in clients}
        shuffle = random.Random(7).shuffle
        for n in range(rounds):
            log(f"bench_metrics: round {n + 1}/{rounds}")
            order = list(clients)
            shuffle(order)
            for name, client in order:
                c, w = _round(client, ops)
                cpu[name].append(c)
                wall[name].append(w)
        for _, client in clients:
            client.close()
    off_cpu, off_wall = median(cpu["off"]), median(wall["off"])
    for name, _ in clients[1:]:
        # Each round's clients ran back to back: the ratio within a round cancels
        # the drift between rounds.
        paired = median([this / off for this, off in zip(cpu[name], cpu["off"])])
        bench.add(row(f"get client CPU, {name} vs off", median(cpu[name]) * 1e6,
                      off_cpu * 1e6, "us/op", higher_is_better=False,
                      notes=f"median of {rounds} rounds x {ops:,} gets, 1 thread; "
                            f"median paired ratio {paired:.3f}",
                      paired_ratio=paired))
        bench.add(row(f"get wall time, {name} vs off", median(wall[name]) * 1e6,
                      off_wall * 1e6, "us/op", higher_is_better=False, notes=""))
    bench.add(row("hooks of a client without metrics, per call", _off_hooks_ns(),
                  off_cpu * 1e9, "ns", higher_is_better=False,
                  notes="baseline: a whole get's client CPU"))
    bench.finish()


if __name__ == "__main__":
    sys.exit(main())
