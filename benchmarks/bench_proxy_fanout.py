"""Watch fan-out across processes: P client processes x S subscribers each on one
prefix, straight to etcd vs through etcd's gRPC proxy.

Each process holds one client whose S callback subscribers share one server watch
(in-process coalescing); through the proxy, the P processes' watches are coalesced
once more into one watch on etcd. A writer process commits transactions of 100 puts.
Measured per round: deliveries per second over all processes (events x subscribers,
from the first commit to the last process's last callback), and the watchers etcd
itself holds for them (``etcd_debugging_mvcc_watcher_total`` from its /metrics,
less those it held before the round) and the CPU time etcd spent while the events
went out. Median of
``--rounds`` rounds.

    python benchmarks/bench_proxy_fanout.py [--processes 10] [--subscribers 100]
        [--txns 5] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import statistics
import sys
import time
import urllib.request
from typing import Any, Dict, List, Tuple

from _common import describe_machine, machine

import etcd3
from etcd3.testing import EtcdProxy, EtcdServer

PREFIX = "/fanout/"
OPS_PER_TXN = 100


def subscriber_main(endpoint: str, subscribers: int, expected: int, ready: Any,
                    results: Any) -> None:
    """One client process: ``subscribers`` callbacks on PREFIX; reports when the
    last of ``expected`` deliveries arrived (wall clock)."""
    import threading
    client = etcd3.client(endpoints=[endpoint], timeout=30)
    delivered = [0]
    finished = threading.Event()
    lock = threading.Lock()

    def callback(response: Any) -> None:
        with lock:
            delivered[0] += len(response.events)
            if delivered[0] >= expected:
                finished.set()

    for _ in range(subscribers):
        client.add_watch_prefix_callback(PREFIX, callback)
    ready.put(True)
    ok = finished.wait(180)
    results.put((time.time() if ok else None, delivered[0]))
    client.close()


def etcd_watchers(server: EtcdServer) -> int:
    """The watchers etcd holds now (its own /metrics)."""
    with urllib.request.urlopen(f"{server.client_url}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    match = re.search(r"^etcd_debugging_mvcc_watcher_total (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else -1


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_round(server: EtcdServer, endpoint: str, processes: int, subscribers: int,
              txns: int) -> Tuple[float, int, float]:
    """(deliveries per second, watchers on etcd, etcd's CPU ms while the events were
    sent) for one round through ``endpoint``."""
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    before = etcd_watchers(server)  # the proxy's own (it watches for its leader)
    expected = subscribers * txns * OPS_PER_TXN
    children = [ctx.Process(target=subscriber_main,
                            args=(endpoint, subscribers, expected, ready, results))
                for _ in range(processes)]
    for child in children:
        child.start()
    try:
        for _ in children:
            ready.get(timeout=120)
        time.sleep(0.5)  # every create confirmed on etcd's side too
        watchers = etcd_watchers(server) - before
        writer = etcd3.client(endpoints=[server.endpoint])
        value = b"v" * 64
        ops = [writer.transactions.put(f"{PREFIX}{i:03d}", value)
               for i in range(OPS_PER_TXN)]
        assert server.pid is not None
        etcd_cpu = cpu_seconds(server.pid)
        start = time.time()
        for _ in range(txns):
            writer.transaction([], ops)
        writer.close()
        ends: List[float] = []
        for _ in children:
            end, count = results.get(timeout=240)
            if end is None:
                raise RuntimeError(f"a process got {count} of {expected} deliveries")
            ends.append(end)
        etcd_cpu = cpu_seconds(server.pid) - etcd_cpu
        return processes * expected / (max(ends) - start), watchers, etcd_cpu * 1000
    finally:
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--txns", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: List[Dict[str, Any]] = []
    with EtcdServer(name="bench-proxy") as server, \
            EtcdProxy([server.endpoint]) as proxy:
        figures: Dict[str, List[Tuple[float, int, float]]] = {"direct": [], "proxy": []}
        for _ in range(args.rounds):  # interleaved, so load changes hit both
            for name, endpoint in (("direct", server.endpoint), ("proxy", proxy.endpoint)):
                figures[name].append(run_round(server, endpoint, args.processes,
                                               args.subscribers, args.txns))
                sys.stderr.write(f"  {name}: {figures[name][-1]}\n")
        info = machine(server.version)
    for name in ("direct", "proxy"):
        rate = statistics.median(r for r, _, _ in figures[name])
        watchers = max(w for _, w, _ in figures[name])
        etcd_ms = statistics.median(c for _, _, c in figures[name])
        rows.append({"path": name, "deliveries_per_s": round(rate),
                     "etcd_watchers": watchers, "etcd_cpu_ms": round(etcd_ms),
                     "processes": args.processes,
                     "subscribers_per_process": args.subscribers})
    if args.json:
        print(json.dumps({"machine": info, "rows": rows}, indent=2))
        return
    print(describe_machine(info))
    print(f"{args.processes} processes x {args.subscribers} subscribers, "
          f"{args.txns} txns of {OPS_PER_TXN} puts, median of {args.rounds} rounds")
    for row in rows:
        print(f"  {row['path']:>6}: {row['deliveries_per_s']:>10,} deliveries/s, "
              f"{row['etcd_watchers']} watchers on etcd, etcd CPU {row['etcd_cpu_ms']} ms")


if __name__ == "__main__":
    main()
