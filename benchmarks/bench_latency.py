"""Single-thread get and put latency: this client vs a bare gRPC stub, same run.

Each op is timed on its own; the figure is the median over every op of every round
(rounds alternate this client and the stub so drift hits both alike).

    python benchmarks/bench_latency.py [--json] [--quick] [--ops N]
    python benchmarks/bench_latency.py --python-overhead   # this client's own share

``--python-overhead`` times get and put with each channel's gRPC callable swapped
for one that returns a real response captured beforehand: what is left is this
client's own Python per call (encode, retry plan, endpoint pick, fork gate, decode
hand-off), to set against gRPC's cost of a whole call.
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
    parser.add_argument("--python-overhead", action="store_true",
                        help="this client's own Python per call (gRPC swapped out)")


def python_overhead(bench: Bench, client: Any, stub: Any, ops: int) -> None:
    """Rows: microseconds of this client's Python per get and put (best of the
    rounds), beside one whole call of the bare stub."""
    from etcd3._grpc import rpc
    from etcd3.etcdrpc import rpc_pb2 as pb

    transport = client._transport
    state = transport.pool.states[0]
    answers = {rpc.RANGE.key: client.get_response(KEY), rpc.PUT.key: client.put(KEY, VALUE)}
    real = {(index, method.key): transport._callable(state, method, index)
            for index in range(len(state.channels)) for method in (rpc.RANGE, rpc.PUT)}

    def swap(canned: bool) -> None:
        for (index, key), fn in real.items():
            state.callables[index][key] = (
                (lambda request, timeout=None, metadata=None, answer=answers[key]: answer)
                if canned else fn)

    range_request = pb.RangeRequest(key=KEY)
    put_request = pb.PutRequest(key=KEY, value=VALUE)
    cases = (("get", lambda: client.get(KEY), lambda: stub.Range(range_request)),
             ("put", lambda: client.put(KEY, VALUE), lambda: stub.Put(put_request)))
    try:
        for name, this_op, bare_op in cases:
            swap(True)
            latencies(this_op, 1000)  # warm up
            best = min(sum(latencies(this_op, ops)) / ops for _ in range(bench.repeat))
            swap(False)
            whole = median(latencies(bare_op, ops))
            bench.add(row(f"{name}: this client's own Python per call", best * 1e6,
                          whole * 1e6, "us", higher_is_better=False,
                          notes="gRPC swapped out (best of the rounds); baseline: "
                                "one whole call of a bare KVStub (median)"))
    finally:
        swap(False)


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
        if bench.args.python_overhead:
            python_overhead(bench, client, stub, ops)
            client.close()
            bench.finish()
            return
        range_request = pb.RangeRequest(key=KEY)
        compare(bench, "get", lambda: client.get(KEY),
                lambda: stub.Range(range_request).kvs[0].value, ops)
        compare(bench, "put", lambda: client.put(KEY, VALUE),
                lambda: stub.Put(pb.PutRequest(key=KEY, value=VALUE)), ops)
        client.close()
    bench.finish()


if __name__ == "__main__":
    sys.exit(main())
