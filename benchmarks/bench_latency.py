"""Single-thread get and put latency: this client vs a bare gRPC stub, same run.

Each op is timed on its own; the figure is the median over every op of every round
(rounds alternate this client and the stub so drift hits both alike).

    python benchmarks/bench_latency.py [--json] [--quick] [--ops N]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable, List

from _common import Bench, bare_channel, log, median, row

KEY, VALUE = b"/latency/key", b"v" * 100


def latencies(op: Callable[[], Any], count: int) -> List[float]:
    clock = time.perf_counter
    out = []
    for _ in range(count):
        start = clock()
        op()
        out.append(clock() - start)
    return out


def compare(bench: Bench, name: str, this_op: Callable[[], Any],
            bare_op: Callable[[], Any], ops: int) -> None:
    this: List[float] = []
    bare: List[float] = []
    latencies(this_op, 200)  # warm up both paths
    latencies(bare_op, 200)
    for n in range(bench.repeat):
        log(f"bench_latency: {name}, round {n + 1}/{bench.repeat}")
        this += latencies(this_op, ops)
        bare += latencies(bare_op, ops)
    bench.add(row(f"single-thread {name} latency (median)", median(this) * 1e6,
                  median(bare) * 1e6, "us", higher_is_better=False,
                  notes=f"{len(this):,} ops each, 100-byte value"))


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ops", type=int, default=None, help="ops per round")


def main() -> None:
    bench = Bench("bench_latency", __doc__.splitlines()[0], _arguments)
    ops = bench.args.ops or (300 if bench.quick else 2_000)
    import etcd3
    from etcd3.etcdrpc import rpc_pb2 as pb
    from etcd3.etcdrpc import rpc_pb2_grpc

    with bench.server() as server:
        client = etcd3.client(host=server.host, port=server.port)
        stub = rpc_pb2_grpc.KVStub(bare_channel(server.endpoint))
        client.put(KEY, VALUE)
        range_request = pb.RangeRequest(key=KEY)
        compare(bench, "get", lambda: client.get(KEY),
                lambda: stub.Range(range_request).kvs[0].value, ops)
        compare(bench, "put", lambda: client.put(KEY, VALUE),
                lambda: stub.Put(pb.PutRequest(key=KEY, value=VALUE)), ops)
        client.close()
    bench.finish()


if __name__ == "__main__":
    sys.exit(main())
