"""Threads doing gets through one etcd3 client vs the same threads on a bare gRPC
channel (``rpc_pb2_grpc.KVStub`` on ``grpc.insecure_channel``), in the same run,
against an etcd this script starts. Also single-thread get/put latency.

    python benchmarks/bench_threads.py            # table
    python benchmarks/bench_threads.py --json     # rows for the benchmark runner
    python benchmarks/bench_threads.py --cpu      # client CPU per call, 1/8/64 threads

``--cpu`` measures where a single call's time goes: get and put at 1, 8 and 64
threads through this client (read batching and write coalescing left at their
defaults) and through a bare stub, interleaved round by round, reporting calls per
second and the client process's CPU time per call (``time.process_time``: every
thread, gRPC's included). The difference is what this client adds; the bare figure
is gRPC's own cost.

Each figure is the median of ``--rounds`` timed rounds; the whole run is bounded
(about 40 s with the defaults).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from typing import Callable, Dict, List, Sequence, Tuple

import grpc

import etcd3
from etcd3.client import DEFAULT_CHANNELS_PER_ENDPOINT
from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc
from etcd3.testing import EtcdServer

KEY = b"/bench/key"
POOL_SIZES = (1, 2, 4, 8)
THREAD_COUNTS = (8, 32)


def throughput(op: Callable[[], object], threads: int, seconds: float) -> float:
    """Calls per second of ``op`` run by ``threads`` threads for ``seconds``."""
    stop = threading.Event()
    counts = [0] * threads
    start_barrier = threading.Barrier(threads + 1)

    def worker(n: int) -> None:
        start_barrier.wait()
        done = 0
        while not stop.is_set():
            op()
            done += 1
        counts[n] = done

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for worker_thread in workers:
        worker_thread.start()
    start_barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for worker_thread in workers:
        worker_thread.join()
    return sum(counts) / (time.perf_counter() - started)


def throughput_cpu(op: Callable[[], object], threads: int, seconds: float
                   ) -> Tuple[float, float]:
    """(calls per second, client CPU microseconds per call) of ``op`` run by
    ``threads`` threads for ``seconds``."""
    cpu = time.process_time()
    started = time.perf_counter()
    rate = throughput(op, threads, seconds)
    calls = rate * (time.perf_counter() - started)
    return rate, (time.process_time() - cpu) / max(calls, 1) * 1e6


def run_cpu(rounds: int, seconds: float, thread_counts: Sequence[int]
            ) -> List[Dict[str, object]]:
    """Rows: this client vs a bare stub, get and put, at each thread count."""
    value = b"v" * 100
    rows: List[Dict[str, object]] = []
    with EtcdServer() as server:
        channel = grpc.insecure_channel(server.endpoint)
        stub = rpc_pb2_grpc.KVStub(channel)
        client = etcd3.client(endpoints=[server.endpoint])
        client.put(KEY, value)
        range_request = rpc_pb2.RangeRequest(key=KEY)
        put_request = rpc_pb2.PutRequest(key=KEY, value=value)
        ops = {("get", "this"): lambda: client.get(KEY),
               ("get", "bare"): lambda: stub.Range(range_request).kvs[0].value,
               ("put", "this"): lambda: client.put(KEY, value),
               ("put", "bare"): lambda: stub.Put(put_request)}
        for op in ops.values():
            throughput(op, 1, 0.2)  # warm up both paths
        results: Dict[Tuple[int, str, str], List[Tuple[float, float]]] = {}
        for _ in range(rounds):
            for threads in thread_counts:
                for key, op in ops.items():
                    results.setdefault((threads, *key), []).append(
                        throughput_cpu(op, threads, seconds))
        client.close()
        channel.close()
    for threads in thread_counts:
        for name in ("get", "put"):
            this = results[(threads, name, "this")]
            bare = results[(threads, name, "bare")]
            this_cpu = statistics.median(c for _, c in this)
            bare_cpu = statistics.median(c for _, c in bare)
            rows.append({
                "workload": f"{name}, {threads} thread{'s' if threads > 1 else ''}, "
                            "client CPU per call",
                "this": round(this_cpu, 1), "baseline": round(bare_cpu, 1),
                "unit": "us/call", "ratio": round(bare_cpu / this_cpu, 3),
                "higher_is_better": False,
                "notes": f"{statistics.median(r for r, _ in this):,.0f} vs "
                         f"{statistics.median(r for r, _ in bare):,.0f} calls/s; "
                         "baseline: bare KVStub",
            })
    return rows


def latency_us(op: Callable[[], object], count: int) -> float:
    """Mean microseconds per call of ``op`` in one thread."""
    started = time.perf_counter()
    for _ in range(count):
        op()
    return (time.perf_counter() - started) / count * 1e6


def median_of(rounds: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(rounds))


def run(rounds: int, seconds: float, latency_ops: int) -> List[Dict[str, object]]:
    rows: List[Dict[str, object]] = []
    with EtcdServer() as server:
        channel = grpc.insecure_channel(server.endpoint)
        stub = rpc_pb2_grpc.KVStub(channel)
        stub.Put(rpc_pb2.PutRequest(key=KEY, value=b"v" * 64))
        request = rpc_pb2.RangeRequest(key=KEY)

        def bare_get() -> object:
            return stub.Range(request)

        def bare_put() -> object:
            return stub.Put(rpc_pb2.PutRequest(key=KEY, value=b"v" * 64))

        clients = {size: etcd3.client(endpoints=[server.endpoint],
                                      channels_per_endpoint=size) for size in POOL_SIZES}
        for client in clients.values():
            client.get(KEY)  # connect
        per_size: Dict[int, Dict[int, float]] = {size: {} for size in POOL_SIZES}
        for threads in THREAD_COUNTS:
            base = median_of(rounds, lambda n=threads: throughput(bare_get, n, seconds))
            for size, client in clients.items():
                def get(c: etcd3.Etcd3Client = client) -> object:
                    return c.get(KEY)

                per_size[size][threads] = median_of(
                    rounds, lambda op=get, n=threads: throughput(op, n, seconds))
            for size in POOL_SIZES:
                this = per_size[size][threads]
                rows.append({
                    "workload": f"get, {threads} threads, channels_per_endpoint={size}"
                                + (" (default)" if size == DEFAULT_CHANNELS_PER_ENDPOINT
                                   else ""),
                    "this": round(this, 1), "baseline": round(base, 1), "unit": "ops/s",
                    "ratio": round(this / base, 3), "higher_is_better": True,
                    "notes": "baseline: KVStub on one grpc.insecure_channel, same threads",
                })
        default = clients[DEFAULT_CHANNELS_PER_ENDPOINT]
        for name, mine, bare in (
                ("get latency, 1 thread", lambda: default.get(KEY), bare_get),
                ("put latency, 1 thread", lambda: default.put(KEY, b"v" * 64), bare_put)):
            bare_us = median_of(rounds, lambda op=bare: latency_us(op, latency_ops))
            mine_us = median_of(rounds, lambda op=mine: latency_us(op, latency_ops))
            rows.append({"workload": name, "this": round(mine_us, 1),
                         "baseline": round(bare_us, 1), "unit": "us/op",
                         "ratio": round(mine_us / bare_us, 3), "higher_is_better": False,
                         "notes": f"mean of {latency_ops} sequential calls; "
                                  "baseline: bare KVStub"})
        for client in clients.values():
            client.close()
        channel.close()
    return rows


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0, help="per round")
    parser.add_argument("--latency-ops", type=int, default=1000)
    parser.add_argument("--cpu", action="store_true",
                        help="client CPU per call vs a bare stub at --threads")
    parser.add_argument("--threads", default="1,8,64",
                        help="thread counts for --cpu (comma-separated)")
    args = parser.parse_args(argv)
    if args.cpu:
        rows = run_cpu(args.rounds, args.seconds,
                       [int(n) for n in args.threads.split(",")])
    else:
        rows = run(args.rounds, args.seconds, args.latency_ops)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'workload':58} {'this':>10} {'baseline':>10} {'unit':>8} {'ratio':>7}  notes")
    for row in rows:
        print(f"{row['workload']:58} {row['this']:>10} {row['baseline']:>10} "
              f"{row['unit']:>8} {row['ratio']:>7}  {row['notes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
