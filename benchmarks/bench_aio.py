"""The asyncio client side by side, in one run: etcd3.aio vs a bare ``grpc.aio`` stub
(the floor), the threaded client, and aetcd (in a venv of its own).

    python benchmarks/bench_aio.py             # table (a few minutes)
    python benchmarks/bench_aio.py --quick     # smoke run
    python benchmarks/bench_aio.py --json      # rows for run.py

Workloads, each client in a child process of its own (``_peer_driver.py``), rounds
interleaved across clients so that a busy moment hits them alike, medians reported:

* gets and puts with 1, 8 and 64 in flight (tasks on one event loop; threads for
  the threaded client), 100-byte values over 1,000 keys;
* client CPU per call (process CPU time / calls) of etcd3.aio vs the bare stub;
* watch fan-out: 100 and 1,000 subscribers on one prefix, deliveries/s.

Read batching: "aio" and "threaded" batch concurrent reads (the client's default,
against every etcd version); "aio, no batching" turns it off
(``read_batch_in_flight`` larger than any number of reads in flight).
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any, Dict, List, Sequence, Tuple

from _common import Bench, describe_machine, format_table, log, machine, row
from _peers import preload, python_for, run_driver, version_of

IN_FLIGHT = (1, 8, 64)
#: column name -> (driver client, read batching)
CLIENTS: Dict[str, Tuple[str, bool]] = {
    "aio": ("aio", True),
    "aio, no batching": ("aio", False),
    "grpc.aio stub": ("grpc-aio", False),
    "grpc.aio stub + hasleader": ("grpc-aio-hasleader", False),
    "threaded": ("threaded", True),
    "aetcd": ("aetcd", False),
}


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds per figure (default 5; 1 with --quick)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="seconds per get/put round (default 2; 0.5 with --quick)")
    parser.add_argument("--subscribers", default=None,
                        help="watch fan-out sizes, comma-separated (default 100,1000)")
    parser.add_argument("--no-watch", action="store_true", help="skip the watch fan-out")


def _median(values: List[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure_kv(endpoint: str, rounds: int, seconds: float,
               columns: Sequence[str]) -> Dict[Tuple[str, int, str], Dict[str, List[float]]]:
    """{(op, in_flight, column): {"rate": [...], "cpu_us": [...]}}"""
    results: Dict[Tuple[str, int, str], Dict[str, List[float]]] = {}
    for r in range(rounds):
        for op in ("get", "put"):
            for n in IN_FLIGHT:
                for column in columns:
                    client, batching = CLIENTS[column]
                    if op == "put" and column == "aio, no batching":
                        continue  # batching is for reads only: same as "aio"
                    if n == 8 and column == "grpc.aio stub + hasleader":
                        continue  # for the CPU rows (1 and 64 in flight) only
                    out = run_driver(client, endpoint, op, in_flight=n, seconds=seconds,
                                     rounds=1, batching=batching)
                    slot = results.setdefault((op, n, column), {"rate": [], "cpu_us": []})
                    if out is not None:
                        slot["rate"].append(out["rate"])
                        slot["cpu_us"].append(out["cpu_us"])
                log(f"round {r + 1}/{rounds}: {op} x{n} done")
    return results


def measure_watch(endpoint: str, rounds: int, sizes: Sequence[int],
                  columns: Sequence[str]) -> Dict[Tuple[int, str], List[float]]:
    results: Dict[Tuple[int, str], List[float]] = {}
    for r in range(rounds):
        for subscribers in sizes:
            events = max(200, 200_000 // subscribers // 100 * 100)
            for column in columns:
                client, _ = CLIENTS[column]
                out = run_driver(client, endpoint, "watch", in_flight=subscribers,
                                 count=events, rounds=1)
                results.setdefault((subscribers, column), [])
                if out is not None:
                    results[(subscribers, column)].append(out["rate"])
            log(f"round {r + 1}/{rounds}: watch x{subscribers} done")
    return results


def main() -> None:
    bench = Bench("bench_aio", __doc__.split("\n")[0], _args)
    args = bench.args
    rounds = args.rounds or (1 if bench.quick else 5)
    seconds = args.seconds or (0.5 if bench.quick else 2.0)
    sizes = [int(s) for s in (args.subscribers or ("100" if bench.quick else "100,1000"))
             .split(",")]
    columns = [c for c in CLIENTS if python_for(CLIENTS[c][0]) is not None]
    missing = [c for c in CLIENTS if c not in columns]
    if missing:
        log(f"left out (could not be installed): {', '.join(missing)}")
    with bench.server() as server:
        preload(server.endpoint, 0)
        kv = measure_kv(server.endpoint, rounds, seconds, columns)
        watch = ({} if args.no_watch else
                 measure_watch(server.endpoint, rounds, sizes,
                               [c for c in ("aio", "aetcd") if c in columns]))

    def figures(op: str, n: int, column: str, what: str) -> float:
        if op == "put" and column == "aio, no batching":
            column = "aio"  # not measured twice: puts are never batched
        return _median(kv.get((op, n, column), {}).get(what, []))

    def rate(op: str, n: int, column: str) -> float:
        return figures(op, n, column, "rate")

    def cpu(op: str, n: int, column: str) -> float:
        return figures(op, n, column, "cpu_us")

    for op in ("get", "put"):
        for n in IN_FLIGHT:
            extra: Dict[str, Any] = {c: rate(op, n, c) for c in columns}
            threaded = rate(op, n, "threaded")
            notes = (f"{rounds} rounds x {seconds:g} s; threaded: {n} threads; "
                     f"aio/threaded {rate(op, n, 'aio') / threaded:.2f}x"
                     if threaded == threaded and threaded else "")
            bench.add(row(f"{op}, {n} in flight (vs aetcd)", rate(op, n, "aio"),
                          rate(op, n, "aetcd"), "ops/s", higher_is_better=True,
                          notes=notes, **extra))
    for op in ("get", "put"):
        for n in (1, 64):
            ours = "aio, no batching" if op == "get" else "aio"
            bench.add(row(f"client CPU per {op}, {n} in flight (vs grpc.aio stub)",
                          cpu(op, n, ours), cpu(op, n, "grpc.aio stub"), "us/call",
                          higher_is_better=False,
                          notes=("process CPU time / calls; reads unbatched; stub "
                                 "sending require-leader metadata as this client does: "
                                 f"{cpu(op, n, 'grpc.aio stub + hasleader'):.0f} us")))
    for n in (8, 64):
        bench.add(row(f"client CPU per get, {n} in flight, batched (vs threaded, {n} threads)",
                      cpu("get", n, "aio"), cpu("get", n, "threaded"), "us/call",
                      higher_is_better=False,
                      notes=("process CPU time / calls; on a busy machine 64 threads get "
                             "more CPU time from the OS than one event loop")))
    for subscribers in sizes:
        bench.add(row(f"watch fan-out, {subscribers} subscribers (vs aetcd)",
                      _median(watch.get((subscribers, "aio"), [])),
                      _median(watch.get((subscribers, "aetcd"), [])), "deliveries/s",
                      higher_is_better=True,
                      notes=(f"{max(200, 200_000 // subscribers // 100 * 100)} events "
                             "(txns of 100 puts from another process)")))
    if args.json:
        bench.finish()
        return
    print(format_table(bench.rows, ("workload", "this", "baseline", "unit", "ratio",
                                    "notes")))
    print()
    print(_side_by_side(bench.rows, columns))
    print()
    versions = {c: version_of(python_for(CLIENTS[c][0]) or "", "aetcd")
                for c in ("aetcd",) if c in columns}
    print(describe_machine(machine()) + "; " +
          ", ".join(f"{k} {v}" for k, v in versions.items()))


def _side_by_side(rows: Sequence[Dict[str, Any]], columns: Sequence[str]) -> str:
    """get/put rows: one column per client (ops/s)."""
    lines = []
    for r in rows:
        if "in flight (vs aetcd)" in r["workload"]:
            line: Dict[str, Any] = {"workload": r["workload"].replace(" (vs aetcd)", "")}
            for c in columns:
                line[c] = r.get(c, float("nan"))
            lines.append(line)
    return format_table(lines, ["workload", *columns])


if __name__ == "__main__":
    main()
