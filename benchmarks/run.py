"""Run every benchmark script and print one table: this client vs a bare gRPC stub.

    python benchmarks/run.py                 # full run (several minutes)
    python benchmarks/run.py --quick         # smoke run, small sizes (< 90 s)
    python benchmarks/run.py --chart         # also write benchmarks/results.png
    python benchmarks/run.py --only bulk,latency
    python benchmarks/run.py --peers         # bench_peers.py: the peer clients side by side
    python benchmarks/run.py --markdown      # the table as Markdown, for README.md

Each ``bench_*.py`` runs as a child process with ``--json`` (its progress goes to
stderr as it runs) and starts its own etcd. The runner samples the child's peak RSS
(``VmHWM``: the Python process only, not its etcd), collects the rows, prints the
table with the machine it ran on, and writes ``benchmarks/results.json``. A script
that is missing is skipped with a note; one that fails is reported and the rest run.
Ratios are "times better than the baseline": above 1 this client wins.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

from _common import HERE, describe_machine, format_table, machine, markdown_table, parse_hwm_kb

SCRIPTS = ("bench_latency.py", "bench_threads.py", "bench_bulk.py", "bench_get_prefix.py",
           "bench_codec.py", "bench_watch.py", "bench_aio.py")

#: Smaller sizes for ``--quick``, for scripts without a ``--quick`` flag of their own;
#: only flags that a script's ``--help`` lists are passed.
QUICK_FLAGS: Dict[str, Sequence[str]] = {
    "bench_threads.py": ("--rounds", "1", "--seconds", "0.5", "--latency-ops", "200"),
    "bench_get_prefix.py": ("--keys", "5000", "--repeat", "3"),
    "bench_codec.py": ("--repeat", "3"),
    "bench_watch.py": ("--rounds", "1", "--subscribers", "1,100"),
}


def _help_text(path: str) -> str:
    try:
        return subprocess.run([sys.executable, path, "--help"], capture_output=True,
                              text=True, timeout=60, cwd=HERE).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _quick_args(name: str, path: str) -> List[str]:
    help_text = _help_text(path)
    if "--quick" in help_text:
        return ["--quick"]
    flags = list(QUICK_FLAGS.get(name, ()))
    args: List[str] = []
    for flag, value in zip(flags[::2], flags[1::2]):
        if flag in help_text:
            args += [flag, value]
    return args


class _PeakSampler(threading.Thread):
    """Polls ``/proc/<pid>/status`` for VmHWM (a high-water mark) until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.path = f"/proc/{pid}/status"
        self.peak_kb: Optional[int] = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                with open(self.path) as f:
                    value = parse_hwm_kb(f.read())
            except OSError:
                return
            if value is not None:
                self.peak_kb = max(self.peak_kb or 0, value)
            self.done.wait(0.05)


def run_script(name: str, quick: bool, timeout: float) -> Dict[str, Any]:
    """Run one script; returns {"script", "status", "seconds", "peak_rss_mb", "rows",
    "note"}."""
    path = os.path.join(HERE, name)
    result: Dict[str, Any] = {"script": name, "rows": [], "peak_rss_mb": None,
                              "seconds": 0.0, "status": "ok", "note": ""}
    if not os.path.exists(path):
        result.update(status="skipped", note="script not present")
        return result
    argv = [sys.executable, path, "--json"] + (_quick_args(name, path) if quick else [])
    sys.stderr.write(f"==> {name} {' '.join(argv[3:])}\n")
    sys.stderr.flush()
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=None, text=True, cwd=HERE)
    sampler = _PeakSampler(proc.pid)
    sampler.start()
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, _ = proc.communicate()
        result.update(status="failed", note=f"timed out after {timeout:.0f} s")
    sampler.done.set()
    sampler.join()
    result["seconds"] = time.monotonic() - start
    if sampler.peak_kb is not None:
        result["peak_rss_mb"] = sampler.peak_kb / 1024
    if result["status"] == "ok" and proc.returncode != 0:
        result.update(status="failed", note=f"exit code {proc.returncode}")
    if result["status"] == "ok":
        try:
            rows = json.loads(stdout)
            if not isinstance(rows, list):
                raise ValueError("not a list of rows")
            result["rows"] = [_normalised(dict(r, script=name)) for r in rows]
        except ValueError as error:
            result.update(status="failed", note=f"bad --json output: {error}")
    sys.stderr.write(f"<== {name}: {result['status']} in {result['seconds']:.1f} s"
                     f"{'; ' + result['note'] if result['note'] else ''}\n")
    return result


def _normalised(r: Dict[str, Any]) -> Dict[str, Any]:
    """Recompute ``ratio`` as "times better than the baseline" from this/baseline and
    ``higher_is_better`` (scripts differ on lower-is-better units); a script's own
    different figure is kept as ``script_ratio``."""
    try:
        this, baseline = float(r["this"]), float(r["baseline"])
        ratio = this / baseline if r.get("higher_is_better", True) else baseline / this
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return r
    given = r.get("ratio")
    if isinstance(given, (int, float)) and abs(given - ratio) > 0.02 * max(ratio, 1e-9):
        r["script_ratio"] = given
    r["ratio"] = ratio
    return r


def _table_rows(results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    for result in results:
        for r in result["rows"]:
            shown = dict(r)
            if "peak_rss_mb" not in shown and result["peak_rss_mb"] is not None:
                shown["peak_rss_mb"] = result["peak_rss_mb"]  # the script's, whole run
            rows.append(shown)
        if result["status"] != "ok":
            rows.append({"workload": f"{result['script']}: {result['status']}",
                         "notes": result["note"]})
    return rows


def write_chart(rows: List[Dict[str, Any]], info: Dict[str, Any], path: str) -> bool:
    """A bar chart of the ratios (log scale, 1.0 marked); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.stderr.write("--chart needs matplotlib (pip install matplotlib)\n")
        return False
    data = [(r["workload"], r["ratio"]) for r in rows
            if isinstance(r.get("ratio"), float) and r["ratio"] == r["ratio"] and r["ratio"] > 0]
    if not data:
        return False
    labels = [d[0] if len(d[0]) <= 70 else d[0][:67] + "..." for d in data][::-1]
    ratios = [d[1] for d in data][::-1]
    fig, ax = plt.subplots(figsize=(11, 0.38 * len(data) + 1.6))
    colors = ["#2e7d32" if r >= 1 else "#c62828" for r in ratios]
    ax.barh(range(len(ratios)), ratios, color=colors)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(ratios)))
    ax.set_yticklabels(labels, fontsize=8)
    for y, r in enumerate(ratios):
        ax.text(r, y, f" {r:.2f}x", va="center", fontsize=7)
    ax.set_xlabel("times better than the bare gRPC stub baseline (log scale; > 1: this "
                  "client wins)")
    ax.set_title(f"etcd3 benchmarks: {info['cpu']}, {info['cores']} cores, "
                 f"Python {info['python']}, etcd {info['etcd']}, codec {info['codec']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (< 90 s)")
    parser.add_argument("--chart", action="store_true", help="write results.png")
    parser.add_argument("--only", default="",
                        help="comma-separated script names (e.g. bulk,latency)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per script (default 900, quick 120)")
    parser.add_argument("--output", default=os.path.join(HERE, "results.json"))
    parser.add_argument("--markdown", action="store_true",
                        help="print the table as Markdown (for README.md)")
    parser.add_argument("--peers", action="store_true",
                        help="run bench_peers.py instead (peer clients side by side)")
    args = parser.parse_args(argv)
    if args.peers:
        peers = [sys.executable, os.path.join(HERE, "bench_peers.py")]
        peers += ["--quick"] * args.quick + ["--markdown"] * args.markdown
        return subprocess.run(peers, cwd=HERE).returncode
    scripts = list(SCRIPTS)
    if args.only:
        wanted = {w.strip().replace("bench_", "").replace(".py", "")
                  for w in args.only.split(",") if w.strip()}
        scripts = [s for s in scripts if s[len("bench_"):-len(".py")] in wanted]
    timeout = args.timeout or (120.0 if args.quick else 900.0)
    started = time.time()
    results = [run_script(name, args.quick, timeout) for name in scripts]
    info = machine()
    rows = _table_rows(results)
    print((markdown_table if args.markdown else format_table)(rows))
    print()
    print("Machine: " + describe_machine(info))
    print(f"Ratio: times better than the baseline (> 1: this client wins). "
          f"peak_rss_mb: the workload's own child process, else the script's whole run. "
          f"Total {time.time() - started:.0f} s{' (--quick)' if args.quick else ''}.")
    report = {"command": "python benchmarks/run.py" + (" --quick" if args.quick else ""),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
              "seconds": time.time() - started, "quick": args.quick, "machine": info,
              "scripts": [{k: v for k, v in r.items() if k != "rows"} for r in results],
              "rows": [row for r in results for row in r["rows"]]}
    with open(args.output, "w") as f:
        json.dump(report, f, indent=1)
    sys.stderr.write(f"wrote {args.output}\n")
    if args.chart:
        chart = os.path.join(os.path.dirname(args.output), "results.png")
        if write_chart(report["rows"], info, chart):
            sys.stderr.write(f"wrote {chart}\n")
    return 1 if any(r["status"] == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
