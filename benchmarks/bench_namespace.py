"""What a namespace view costs: client CPU per call through ``client.namespace()``
vs the plain client, same calls on the same keys, against an etcd it starts itself.

    python benchmarks/bench_namespace.py [--rounds N] [--calls N] [--json]

Workloads (one thread; rounds interleaved plain/view so a busy moment hits both
alike; medians of the rounds; CPU is this process's time.process_time()):
  get          a single-key get of a 100-byte value
  put          a single-key put
  get_prefix   a 100-key get_prefix (100-byte values)
  txn          a transaction: 1 compare, a put and a get
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Callable, Dict, List

import etcd3
from etcd3.testing import EtcdServer

PREFIX = "bench/"


def _cpu_us_per_call(fn: Callable[[int], Any], calls: int) -> float:
    start = time.process_time()
    for i in range(calls):
        fn(i)
    return (time.process_time() - start) / calls * 1e6


def _workloads(client: Any, key: Callable[[int], str]) -> Dict[str, Callable[[int], Any]]:
    t = client.transactions

    def txn(i: int) -> Any:
        return client.transaction(compare=[t.version(key(i % 100)) > 0],
                                  success=[t.put(key(i % 100), "y"), t.get(key(1))],
                                  failure=[])

    return {
        "get": lambda i: client.get(key(i % 100)),
        "put": lambda i: client.put(key(i % 100), "x" * 100),
        "get_prefix": lambda i: list(client.get_prefix(key(0)[:-2])),
        "txn": txn,
    }


def run(rounds: int, calls: int) -> List[Dict[str, Any]]:
    with EtcdServer(name="bench-namespace") as server:
        client = etcd3.client(host=server.host, port=server.port)
        view = client.namespace(PREFIX)
        for i in range(100):
            client.put(f"{PREFIX}k{i:02d}", "x" * 100)
        plain = _workloads(client, lambda i: f"{PREFIX}k{i:02d}")
        viewed = _workloads(view, lambda i: f"k{i:02d}")
        results: Dict[str, Dict[str, List[float]]] = {
            name: {"plain": [], "view": []} for name in plain}
        for name in plain:
            n = calls // 10 if name == "get_prefix" else calls
            for _ in range(rounds):
                results[name]["plain"].append(_cpu_us_per_call(plain[name], n))
                results[name]["view"].append(_cpu_us_per_call(viewed[name], n))
        client.close()
    rows = []
    for name, by_client in results.items():
        this, base = (statistics.median(by_client["view"]),
                      statistics.median(by_client["plain"]))
        rows.append({"workload": f"namespace view: {name}", "this": round(this, 1),
                     "baseline": round(base, 1), "unit": "client CPU µs/call",
                     "overhead_pct": round((this / base - 1) * 100, 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = run(args.rounds, args.calls)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'workload':32} {'view':>8} {'plain':>8} {'overhead':>9}  (client CPU µs/call)")
    for r in rows:
        print(f"{r['workload']:32} {r['this']:>8} {r['baseline']:>8} "
              f"{r['overhead_pct']:>8}%")


if __name__ == "__main__":
    main()
