"""Watch fan-out: S subscribers on one prefix, coalesced vs one server watch each.

One writer (a separate process, so its CPU is not counted) commits transactions of
100 puts; S callback subscribers of one client watch the prefix. Measured per round:
event deliveries per second (events x subscribers, from the first commit to the last
callback) and the client process's CPU time per delivery (``time.process_time``).
"this" = coalesced (one shared server watch), "baseline" = every subscriber with its
own server watch (``_watch_coalesce = False``), both in the same run. Median of
``--rounds`` rounds.

    python benchmarks/bench_watch.py [--json] [--rounds 3] [--subscribers 1,100,1000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import threading
import time
from typing import Any, Dict, List, Tuple

import etcd3
from etcd3.testing import EtcdServer

PREFIX = "/bench/"
OPS_PER_TXN = 100
#: deliveries per round are about S x events; keep each round short.
TARGET_DELIVERIES = 200_000
MAX_TXNS = 100


def writer_main(endpoint: str, commands: Any, done: Any) -> None:
    """The writer process: for each command ``n``, commit ``n`` transactions."""
    client = etcd3.client(endpoints=[endpoint])
    value = b"v" * 64
    ops = [client.transactions.put(f"{PREFIX}{i:03d}", value) for i in range(OPS_PER_TXN)]
    while True:
        count = commands.get()
        if count is None:
            break
        for _ in range(count):
            client.transaction([], ops)
        done.put(count)
    client.close()


def txns_for(subscribers: int) -> int:
    return max(1, min(MAX_TXNS, TARGET_DELIVERIES // (subscribers * OPS_PER_TXN)))


def run_round(endpoint: str, subscribers: int, coalesce: bool, commands: Any,
              done: Any) -> Tuple[float, float]:
    """(deliveries per second, CPU microseconds per delivery) of one round."""
    client = etcd3.client(endpoints=[endpoint])
    client._watch_coalesce = coalesce
    delivered = [0]
    finished = threading.Event()
    txns = txns_for(subscribers)
    expected = subscribers * txns * OPS_PER_TXN

    def callback(response: Any) -> None:
        delivered[0] += len(response.events)
        if delivered[0] >= expected:
            finished.set()

    try:
        for _ in range(subscribers):
            client.add_watch_prefix_callback(PREFIX, callback)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        commands.put(txns)
        if not finished.wait(120):
            raise RuntimeError(f"only {delivered[0]} of {expected} deliveries arrived")
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        done.get(timeout=30)
        return expected / wall, cpu / expected * 1e6
    finally:
        client.close()


def measure(endpoint: str, counts: List[int], rounds: int) -> List[Dict[str, Any]]:
    ctx = multiprocessing.get_context("spawn")
    commands, done = ctx.Queue(), ctx.Queue()
    writer = ctx.Process(target=writer_main, args=(endpoint, commands, done), daemon=True)
    writer.start()
    rows: List[Dict[str, Any]] = []
    try:
        for coalesce in (True, False):  # warm-up (imports, connections), discarded
            run_round(endpoint, 1, coalesce, commands, done)
        for subscribers in counts:
            results: Dict[bool, List[Tuple[float, float]]] = {True: [], False: []}
            for index in range(rounds):
                # Interleaved, alternating which goes first: same conditions for both.
                for coalesce in ((True, False) if index % 2 == 0 else (False, True)):
                    results[coalesce].append(
                        run_round(endpoint, subscribers, coalesce, commands, done))
            rate = {c: statistics.median(r[0] for r in results[c]) for c in results}
            cpu = {c: statistics.median(r[1] for r in results[c]) for c in results}
            note = (f"S={subscribers} callbacks, {txns_for(subscribers)} txns x "
                    f"{OPS_PER_TXN} puts per round, median of {rounds}; writer in its "
                    "own process")
            rows.append({"workload": f"watch fan-out S={subscribers}: deliveries/s",
                         "this": round(rate[True], 1), "baseline": round(rate[False], 1),
                         "unit": "deliveries/s", "ratio": round(rate[True] / rate[False], 2),
                         "higher_is_better": True, "notes": note})
            rows.append({"workload": f"watch fan-out S={subscribers}: client CPU/delivery",
                         "this": round(cpu[True], 3), "baseline": round(cpu[False], 3),
                         "unit": "us CPU/delivery", "ratio": round(cpu[True] / cpu[False], 3),
                         "higher_is_better": False, "notes": note})
    finally:
        commands.put(None)
        writer.join(10)
        if writer.is_alive():
            writer.kill()
    return rows


def print_table(rows: List[Dict[str, Any]]) -> None:
    print(f"{'workload':48} {'coalesced':>12} {'own watch':>12}  {'unit':16} {'ratio':>7}")
    for row in rows:
        print(f"{row['workload']:48} {row['this']:>12} {row['baseline']:>12}  "
              f"{row['unit']:16} {row['ratio']:>7}")


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--subscribers", default="1,100,1000",
                        help="comma-separated subscriber counts")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.subscribers.split(",")]
    with EtcdServer(name="bench-watch") as server:
        rows = measure(server.endpoint, counts, args.rounds)
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
