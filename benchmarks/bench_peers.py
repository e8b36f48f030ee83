"""Why this client: the same workloads through the Python etcd clients people use,
side by side in one run, against one etcd this script starts.

    python benchmarks/bench_peers.py            # full run (10+ minutes on 2 cores)
    python benchmarks/bench_peers.py --quick    # smoke run (small sizes, 1 round)
    python benchmarks/bench_peers.py --markdown # the table as Markdown
    python benchmarks/bench_peers.py --chart    # also benchmarks/peers.png and .json
    python benchmarks/bench_peers.py --redraw   # the chart again from peers.json
    python benchmarks/run.py --peers            # the same

Peers, each pip-installed into a venv of its own under a cache directory
(``$ETCD3_BENCH_CACHE``, default ``~/.cache/etcd3-bench-peers``) on first use:
python-etcd3 0.12 (with the protobuf 3.x it needs), etcd-sdk-python, aetcd and
etcd-client-py. A peer that fails to install is reported and left out.

Workloads (each client in a child process of its own, see ``_peer_driver.py``;
threads for threaded clients, tasks for asyncio ones; medians of the rounds, which
are interleaved across clients): get and put with 1, 8 and 64 in flight (100-byte
values over 1,000 keys), bulk load of 100,000 keys with each client's best API
(put_many for this client, else 128-put transactions, 4 in flight), get_prefix of
20,000 keys, watch fan-out with 100 subscribers on one prefix. Not part of the test
suite.

Read batching is on for this client (its default), whatever the etcd version.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Any, Dict, List, Optional, Tuple

from _common import Bench, describe_machine, format_table, log, machine, markdown_table
from _peers import PEERS, preload, python_for, run_driver, version_of

#: column -> (driver client, read batching, distribution for the version)
CLIENTS: Dict[str, Tuple[str, bool, str]] = {
    "etcd3.aio (this)": ("aio", True, ""),
    "etcd3 threads (this)": ("threaded", True, ""),
    "aetcd": ("aetcd", False, "aetcd"),
    "etcd-client-py": ("etcd-client-py", False, "etcd-client-py"),
    "python-etcd3": ("python-etcd3", False, "etcd3"),
    "etcd-sdk-python": ("etcd-sdk-python", False, "etcd-sdk-python"),
}


def _args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds (default 3; 1 with --quick)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table as Markdown (for README.md)")
    parser.add_argument("--only", default=None,
                        help="comma-separated column names or driver names to run")
    parser.add_argument("--chart", action="store_true",
                        help="also write benchmarks/peers.png (needs matplotlib) and "
                             "the figures to benchmarks/peers.json")
    parser.add_argument("--redraw", action="store_true",
                        help="only redraw benchmarks/peers.png from peers.json")


HERE = os.path.dirname(os.path.abspath(__file__))
CHART = os.path.join(HERE, "peers.png")
SAVED = os.path.join(HERE, "peers.json")
#: The chart's baseline: the client people move from.
BASELINE = "python-etcd3"


def write_chart(table: List[Dict[str, Any]], columns: List[str], footer: str,
                path: str = CHART) -> bool:
    """Grouped bars: each client's rate per workload, relative to python-etcd3 (log
    scale); False without matplotlib or without the baseline's figures."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.stderr.write("--chart needs matplotlib (pip install matplotlib)\n")
        return False
    if BASELINE not in columns:
        sys.stderr.write(f"--chart needs the {BASELINE} column\n")
        return False
    rows = [r for r in table if r.get(BASELINE, 0) == r.get(BASELINE, 0)
            and r.get(BASELINE, 0) > 0]
    fig, ax = plt.subplots(figsize=(12, 0.55 * len(rows) * len(columns) / 3 + 2))
    height = 0.8 / len(columns)
    palette = ["#1b5e20", "#43a047", "#1565c0", "#6a1b9a", "#9e9e9e", "#ef6c00"]
    for n, column in enumerate(columns):
        ys = [len(rows) - 1 - i + 0.4 - height * (n + 0.5) for i in range(len(rows))]
        ratios = [r[column] / r[BASELINE] if r.get(column, 0) == r.get(column, 0)
                  else 0.0 for r in rows]
        ax.barh(ys, ratios, height=height, color=palette[n % len(palette)], label=column)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks([len(rows) - 1 - i for i in range(len(rows))])
    ax.set_yticklabels([r["workload"] for r in rows], fontsize=8)
    ax.set_xlabel(f"rate relative to {BASELINE} (log scale; longer is faster)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Python etcd clients side by side (bench_peers.py)", fontsize=10)
    fig.text(0.01, 0.005, footer.replace("\n", "; "), fontsize=6, wrap=True)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main() -> None:
    bench = Bench("bench_peers", __doc__.split("\n")[0], _args)
    args = bench.args
    if args.redraw:
        with open(SAVED) as saved:
            data = json.load(saved)
        if write_chart(data["table"], data["columns"], data["footer"]):
            log(f"wrote {CHART}")
        return
    quick = bench.quick
    rounds = args.rounds or (1 if quick else 3)
    seconds = 0.5 if quick else 2.0
    bulk_keys = 5_000 if quick else 100_000
    prefix_keys = 2_000 if quick else 20_000
    subscribers, events = (20, 200) if quick else (100, 2000)
    wanted = [c for c in CLIENTS if args.only is None
              or any(w in (c, CLIENTS[c][0]) for w in args.only.split(","))]
    columns: List[str] = []
    for column in wanted:
        if python_for(CLIENTS[column][0]) is None:
            log(f"{column}: could not be installed; left out")
        else:
            columns.append(column)
    workloads: List[Tuple[str, str, Dict[str, Any]]] = []
    for op in ("get", "put"):
        for n in (1, 8, 64):
            workloads.append((f"{op}, {n} in flight", op,
                              dict(in_flight=n, seconds=seconds)))
    workloads += [
        (f"bulk load {bulk_keys:,} keys", "bulk", dict(count=bulk_keys)),
        (f"get_prefix {prefix_keys:,} keys", "prefix", dict(rounds=3)),
        (f"watch fan-out, {subscribers} subscribers", "watch",
         dict(in_flight=subscribers, count=events)),
    ]
    units = {"get": "ops/s", "put": "ops/s", "bulk": "keys/s", "prefix": "keys/s",
             "watch": "deliveries/s"}
    results: Dict[Tuple[str, str], List[float]] = {}
    with bench.server() as server:
        preload(server.endpoint, prefix_keys)
        for r in range(rounds):
            for name, workload, kwargs in workloads:
                for column in columns:
                    client, batching, _ = CLIENTS[column]
                    out = run_driver(client, server.endpoint, workload,
                                     batching=batching, **kwargs)
                    slot = results.setdefault((name, column), [])
                    if out is not None:
                        slot.append(out["rate"])
                log(f"round {r + 1}/{rounds}: {name} done")
    table: List[Dict[str, Any]] = []
    for name, workload, _ in workloads:
        line: Dict[str, Any] = {"workload": name, "unit": units[workload]}
        for column in columns:
            values = results.get((name, column), [])
            line[column] = statistics.median(values) if values else float("nan")
        table.append(line)
        bench.rows.append(dict(line, this=line.get(columns[0], float("nan")),
                               baseline=float("nan"), ratio=float("nan"),
                               higher_is_better=True, notes="ops/s; see columns"))
    versions = []
    for column in columns:
        distribution = CLIENTS[column][2]
        if distribution:
            python: Optional[str] = python_for(CLIENTS[column][0])
            versions.append(f"{column} {version_of(python or '', distribution)}")
    failed = [c for c in CLIENTS if c in wanted and c not in columns]
    footer = (describe_machine(machine()) + "\npeers: " + ", ".join(versions)
              + (f"\nnot installed: {', '.join(failed)}" if failed else "")
              + f"\n{rounds} round(s), medians; {' '.join(PEERS)} from PyPI")
    if args.chart:
        with open(SAVED, "w") as saved:
            json.dump({"table": table, "columns": columns, "footer": footer}, saved,
                      indent=1)
        if write_chart(table, columns, footer):
            log(f"wrote {CHART} and {SAVED}")
    if args.json:
        bench.finish()
        return
    cols = ["workload", *columns, "unit"]
    print(markdown_table(table, cols) if args.markdown else format_table(table, cols))
    print()
    print(footer)


if __name__ == "__main__":
    main()
