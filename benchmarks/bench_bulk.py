"""Bulk loading and paged reads: this client vs a bare gRPC stub, same run, own etcd.

* put_many of 100,000 x 100-byte values vs a hand-written pipelined loop of 128-op
  transactions on a bare ``rpc_pb2_grpc.KVStub`` (futures, 4 in flight), and vs a
  loop of single bare ``Put`` calls (timed on a sample, per item).
* get_prefix over 1,000,000 keys (loaded with put_many): peak RSS of a process
  iterating with ``page_size=10000``, without it, and of a bare stub doing one Range.
  Each runs in a child process of its own, so each figure is that workload's alone.
  (10,000 rather than 1,000 per page: etcd 3.5 counts every key after the page for
  each paged request, etcd-io/etcd#16510, so 1M keys at 1,000 a page take ~90 s.)

    python benchmarks/bench_bulk.py [--json] [--quick] [--keys N] [--prefix-keys N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from typing import Any, Deque, Dict, Iterator, Tuple

from _common import Bench, bare_channel, child_rss, log, median, row, self_peak_rss_mb, timed

VALUE = b"v" * 100
OPS, WINDOW, PAGE = 128, 4, 10_000


def _items(prefix: str, count: int) -> Iterator[Tuple[bytes, bytes]]:
    for i in range(count):
        yield f"{prefix}{i:08d}".encode(), VALUE


def bare_pipelined_load(stub: Any, prefix: str, count: int) -> None:
    """The hand-written baseline: 128-op Txns, 4 futures in flight, oldest awaited."""
    from etcd3.etcdrpc import rpc_pb2 as pb

    pending: Deque[Any] = deque()
    ops = []
    for key, value in _items(prefix, count):
        ops.append(pb.RequestOp(request_put=pb.PutRequest(key=key, value=value)))
        if len(ops) == OPS:
            if len(pending) >= WINDOW:
                pending.popleft().result()
            pending.append(stub.Txn.future(pb.TxnRequest(success=ops)))
            ops = []
    if ops:
        pending.append(stub.Txn.future(pb.TxnRequest(success=ops)))
    for future in pending:
        future.result()


def bare_single_puts(stub: Any, prefix: str, count: int) -> None:
    from etcd3.etcdrpc import rpc_pb2 as pb

    for key, value in _items(prefix, count):
        stub.Put(pb.PutRequest(key=key, value=value))


def bench_put_many(bench: Bench, client: Any, stub: Any, keys: int, sample: int) -> float:
    """Adds the put_many rows; returns put_many's items/s."""
    wipe = lambda: client.delete_prefix("/bulk/")  # noqa: E731
    this_times, bare_times = [], []
    for n in range(max(3, bench.repeat) if not bench.quick else 1):
        log(f"bench_bulk: put_many vs pipelined stub, round {n + 1}")
        wipe()
        this_times.append(timed(lambda: client.put_many(_items("/bulk/", keys))))
        wipe()
        bare_times.append(timed(lambda: bare_pipelined_load(stub, "/bulk/", keys)))
    this_rate, bare_rate = keys / median(this_times), keys / median(bare_times)
    bench.add(row(f"put_many {keys:,} x 100 B vs pipelined 128-op txn stub", this_rate,
                  bare_rate, "items/s", higher_is_better=True,
                  notes=f"ops_per_txn={OPS}, window={WINDOW} on both sides"))
    wipe()
    single = bench.median(lambda: bare_single_puts(stub, "/single/", sample), repeat=3)
    bench.add(row(f"put_many {keys:,} x 100 B vs loop of single Put", this_rate,
                  sample / single, "items/s", higher_is_better=True,
                  notes=f"single bare-stub Put timed on {sample:,} items, per item"))
    client.delete_prefix("/single/")
    return this_rate


def bench_prefix_rss(bench: Bench, client: Any, endpoint: str, keys: int,
                     rate: float) -> None:
    budget = 60.0
    if keys / rate > budget:
        fitted = int(rate * budget) // 1000 * 1000
        log(f"bench_bulk: {keys:,} keys would take {keys / rate:.0f} s to load; "
            f"using {fitted:,} (fits in ~{budget:.0f} s)")
        keys = fitted
    log(f"bench_bulk: loading {keys:,} keys for get_prefix")
    load = timed(lambda: client.put_many(_items("/rss/", keys)))
    log(f"bench_bulk: loaded in {load:.1f} s")
    results: Dict[str, Dict[str, Any]] = {}
    for mode in ("idle", "paged", "unpaged", "bare"):
        log(f"bench_bulk: get_prefix child process: {mode}")
        results[mode] = child_rss([__file__, "--rss-child", mode, "--endpoint", endpoint,
                                   "--expect", str(keys)])
    label = f"{keys / 1e6:g}M" if keys >= 1_000_000 else f"{keys:,}"
    idle = results["idle"]["peak_rss_mb"]
    bench.add(row(f"get_prefix {label} keys page_size={PAGE}: peak RSS vs bare one Range",
                  results["paged"]["peak_rss_mb"], results["bare"]["peak_rss_mb"], "MB",
                  higher_is_better=False, peak_rss_mb=results["paged"]["peak_rss_mb"],
                  notes=f"without page_size: {results['unpaged']['peak_rss_mb']:.0f} MB; "
                        f"process that only connects: {idle:.0f} MB"))
    bench.add(row(f"get_prefix {label} keys without page_size: peak RSS vs bare one Range",
                  results["unpaged"]["peak_rss_mb"], results["bare"]["peak_rss_mb"], "MB",
                  higher_is_better=False, peak_rss_mb=results["unpaged"]["peak_rss_mb"]))
    bench.add(row(f"get_prefix {label} keys page_size={PAGE}: keys/s vs bare one Range",
                  keys / results["paged"]["seconds"], keys / results["bare"]["seconds"],
                  "keys/s", higher_is_better=True,
                  notes="bare = one Range, values only; this = (value, KVMetadata) pairs"))
    # No clean-up: the server goes with the script, and one DeleteRange of a million
    # keys can outlast etcd's own request timeout on a busy 2-core machine.


def rss_child(mode: str, endpoint: str, expect: int) -> None:
    """One get_prefix workload; prints its own peak RSS as JSON."""
    import json

    import etcd3
    from etcd3.etcdrpc import rpc_pb2 as pb
    from etcd3.etcdrpc import rpc_pb2_grpc

    host, port = endpoint.rsplit(":", 1)
    client = etcd3.client(host=host, port=int(port))
    client.get("/warm-up")
    start = time.perf_counter()
    count = 0
    if mode == "paged":
        for _ in client.get_prefix("/rss/", page_size=PAGE):
            count += 1
    elif mode == "unpaged":
        for _ in client.get_prefix("/rss/"):
            count += 1
    elif mode == "bare":
        stub = rpc_pb2_grpc.KVStub(bare_channel(endpoint))
        response = stub.Range(pb.RangeRequest(key=b"/rss/", range_end=b"/rss0"))
        values = [kv.value for kv in response.kvs]  # read what a caller would read
        count = len(values)
        del values
        del response
    seconds = time.perf_counter() - start
    if mode != "idle" and count != expect:
        raise SystemExit(f"{mode}: read {count} keys, expected {expect}")
    print(json.dumps({"mode": mode, "keys": count, "seconds": seconds,
                      "peak_rss_mb": self_peak_rss_mb()}))
    client.close()


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keys", type=int, default=None,
                        help="items per put_many run (default 100,000)")
    parser.add_argument("--prefix-keys", type=int, default=None,
                        help="keys for the get_prefix RSS workload (default 1,000,000)")
    parser.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)


def main() -> None:
    bench = Bench("bench_bulk", __doc__.splitlines()[0], _arguments)
    args = bench.args
    if args.rss_child:
        rss_child(args.rss_child, args.endpoint, args.expect)
        return
    keys = args.keys or (20_000 if bench.quick else 100_000)
    prefix_keys = args.prefix_keys or (50_000 if bench.quick else 1_000_000)
    sample = 1_000 if bench.quick else 5_000
    import etcd3
    from etcd3.etcdrpc import rpc_pb2_grpc

    with bench.server(["--quota-backend-bytes=8589934592"]) as server:
        client = etcd3.client(host=server.host, port=server.port)
        stub = rpc_pb2_grpc.KVStub(bare_channel(server.endpoint))
        client.put("/warm-up", "x")
        rate = bench_put_many(bench, client, stub, keys, sample)
        bench_prefix_rss(bench, client, server.endpoint, prefix_keys, rate)
        client.close()
    bench.finish()


if __name__ == "__main__":
    sys.exit(main())
