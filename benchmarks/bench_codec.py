"""Codec micro-benchmarks: compiled vs pure vs generated protobuf (upb) doing the same job.

    python benchmarks/bench_codec.py [--repeat N] [--json]

Workloads (medians of --repeat runs, same process):
  range-20k   decode a 20,000-key RangeResponse into (value, KVMetadata) pairs
  watch-1k    decode a 1,000-event WatchResponse into PutEvent/DeleteEvent objects
  put-100k    encode 100,000 PutRequests
  txn-128     encode 200 TxnRequests of 128 ops (1 compare) from client.transactions ops
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import statistics
import time
from typing import Any, Callable, Dict, List

from etcd3 import events, transactions
from etcd3._core import ops as ops_module
from etcd3.etcdrpc import kv_pb2
from etcd3.etcdrpc import rpc_pb2 as pb
from etcd3.results import KVMetadata

PURE = importlib.import_module("etcd3._core.codec_py")
COMPILED = importlib.import_module("etcd3._speedups._codec")


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def range_bytes() -> bytes:
    message = pb.RangeResponse(header=pb.ResponseHeader(cluster_id=2 ** 60, member_id=7,
                                                        revision=123456, raft_term=3),
                               count=20000)
    for i in range(20000):
        message.kvs.add(key=b"/bench/key/%08d" % i, value=b"v" * 64,
                        create_revision=100000 + i, mod_revision=100000 + i, version=1)
    return message.SerializeToString()


def watch_bytes() -> bytes:
    message = pb.WatchResponse(header=pb.ResponseHeader(revision=99), watch_id=1)
    for i in range(1000):
        kv = kv_pb2.KeyValue(key=b"/w/%06d" % i, value=b"x" * 32, create_revision=10 + i,
                             mod_revision=10 + i, version=1)
        message.events.add(type=i % 2, kv=kv)
    return message.SerializeToString()


def workloads() -> Dict[str, Dict[str, Callable[[], Any]]]:
    rng = range_bytes()
    watch = watch_bytes()
    # As the client does (etcd3._grpc.rpc.WATCH): the event classes' layout, built once.
    compiled_layout = COMPILED.event_layout(events.PutEvent, events.DeleteEvent)
    pure_layout = PURE.event_layout(events.PutEvent, events.DeleteEvent)
    keys = [b"/bench/put/%08d" % i for i in range(100000)]
    value = b"v" * 64
    t = transactions.Transactions()
    ops = [t.put(b"/txn/%04d" % i, b"v" * 32) for i in range(128)]
    compare = [t.version(b"/txn/0000") > 0]

    def upb_range() -> Any:
        response = pb.RangeResponse.FromString(rng)
        header = response.header
        return [(kv.value, KVMetadata.from_pb(kv, header)) for kv in response.kvs]

    def upb_watch() -> Any:
        return [events.event_from_pb(e) for e in pb.WatchResponse.FromString(watch).events]

    def put_with(encode: Callable[..., bytes]) -> Callable[[], Any]:
        return lambda: [encode(key, value, 0, False) for key in keys]

    def txn_with(module: Any) -> Callable[[], Any]:
        def run() -> Any:
            for _ in range(200):
                module.encode_txn_request(*ops_module.txn_fields(compare, ops, ()))
        return run

    def upb_txn() -> Any:
        # The same request built as generated protobuf messages.
        for _ in range(200):
            request = pb.TxnRequest()
            for item in compare:
                request.compare.append(pb.Compare(key=item.key, result=item.op,
                                                  target=item.target, version=item.value))
            for op in ops:
                request.success.add().request_put.CopyFrom(pb.PutRequest(
                    key=op.key, value=op.value, lease=op.lease, prev_kv=op.prev_kv))
            request.SerializeToString()

    return {
        "range-20k": {
            "compiled": lambda: COMPILED.range_pairs(COMPILED.decode_range_response(rng).kvs),
            "pure": lambda: PURE.range_pairs(PURE.decode_range_response(rng).kvs),
            "upb": upb_range},
        "watch-1k": {
            "compiled": lambda: COMPILED.decode_watch_response(watch, compiled_layout).events,
            "pure": lambda: PURE.decode_watch_response(watch, pure_layout).events,
            "upb": upb_watch},
        "put-100k": {
            "compiled": put_with(COMPILED.encode_put_request),
            "pure": put_with(PURE.encode_put_request),
            "upb": lambda: [pb.PutRequest(key=key, value=value).SerializeToString()
                            for key in keys]},
        "txn-128": {"compiled": txn_with(COMPILED), "pure": txn_with(PURE),
                    "upb": upb_txn},
    }


def run(repeat: int) -> List[Dict[str, Any]]:
    rows = []
    for name, variants in workloads().items():
        times = {label: median_ms(fn, repeat if label != "pure" else max(3, repeat // 3))
                 for label, fn in variants.items()}
        for baseline in ("upb", "pure"):
            rows.append({"workload": f"{name} compiled vs {baseline}",
                         "this": round(times["compiled"], 3),
                         "baseline": round(times[baseline], 3), "unit": "ms",
                         "ratio": round(times[baseline] / times["compiled"], 2),
                         "higher_is_better": False,
                         "notes": f"median of {repeat}; target >= "
                                  f"{3 if baseline == 'upb' else 5}x"})
        rows.append({"workload": f"{name} pure vs upb", "this": round(times["pure"], 3),
                     "baseline": round(times["upb"], 3), "unit": "ms",
                     "ratio": round(times["upb"] / times["pure"], 2),
                     "higher_is_better": False, "notes": "the fallback codec"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args()
    rows = run(args.repeat)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'workload':<32}{'this':>10}{'baseline':>10}  unit{'ratio':>8}")
    for row in rows:
        print(f"{row['workload']:<32}{row['this']:>10.2f}{row['baseline']:>10.2f}  "
              f"{row['unit']:<4}{row['ratio']:>7.2f}x")


if __name__ == "__main__":
    main()
