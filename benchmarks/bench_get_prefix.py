"""End to end: ``get_prefix`` over 20,000 keys with full metadata vs a bare gRPC stub.

    python benchmarks/bench_get_prefix.py [--keys N] [--repeat N] [--json]

Starts its own etcd (etcd3.testing.EtcdServer), loads the keys, then measures the client
process's CPU time (time.process_time, every thread) per key, median of --repeat runs
(the two alternate, after a gc.collect() each):
  this      etcd3: list(client.get_prefix(prefix)) -> (value, KVMetadata) pairs
  baseline  grpc stub with protobuf classes, reading only the values
Both run in the same process against the same server.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from typing import Any, Callable, Dict, List

import grpc

import etcd3
from etcd3 import codec
from etcd3.etcdrpc import rpc_pb2 as pb
from etcd3.etcdrpc import rpc_pb2_grpc
from etcd3.testing import EtcdServer

PREFIX = b"/bench/get_prefix/"


def cpu_per_key_us(fns: List[Callable[[], int]], repeat: int) -> List[float]:
    """Median CPU microseconds per key of each of ``fns``, sampled in turn (so that a
    slow spell of the machine hits every one alike)."""
    for fn in fns:
        fn()  # warm up (channel, caches)
    samples: List[List[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, samples):
            gc.collect()
            start = time.process_time()
            count = fn()
            out.append((time.process_time() - start) / count * 1e6)
    return [statistics.median(out) for out in samples]


def load(client: Any, keys: int) -> None:
    t = client.transactions
    value = b"v" * 64
    for first in range(0, keys, 128):
        client.transaction([], [t.put(PREFIX + b"%08d" % i, value)
                                for i in range(first, min(first + 128, keys))], [])


def run(keys: int, repeat: int) -> List[Dict[str, Any]]:
    with EtcdServer() as server:
        client = etcd3.client(endpoints=[server.endpoint])
        load(client, keys)
        channel = grpc.insecure_channel(
            server.endpoint, options=[("grpc.max_receive_message_length", 2 ** 31 - 1)])
        stub = rpc_pb2_grpc.KVStub(channel)
        end = codec.prefix_range_end(PREFIX)

        def ours() -> int:
            pairs = list(client.get_prefix(PREFIX))
            assert pairs[-1][1].mod_revision > 0
            return len(pairs)

        def bare() -> int:
            response = stub.Range(pb.RangeRequest(key=PREFIX, range_end=end))
            return len([kv.value for kv in response.kvs])

        assert ours() == bare() == keys
        this, baseline = cpu_per_key_us([ours, bare], repeat)
        channel.close()
        client.close()
    return [{"workload": f"get_prefix {keys} keys, CPU per key",
             "this": round(this, 3), "baseline": round(baseline, 3), "unit": "us/key",
             "ratio": round(baseline / this, 2), "higher_is_better": False,
             "notes": f"codec={codec.IMPLEMENTATION}; this returns (value, KVMetadata), "
                      f"baseline reads values only; median of {repeat}"}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args()
    rows = run(args.keys, args.repeat)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    for row in rows:
        print(f"{row['workload']}: etcd3 {row['this']:.3f} {row['unit']}, bare stub "
              f"{row['baseline']:.3f} {row['unit']} -> {row['ratio']:.2f}x ({row['notes']})")


if __name__ == "__main__":
    main()
