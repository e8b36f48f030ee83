"""Helpers shared by every ``benchmarks/bench_*.py`` script and ``run.py``.

A bench script::

    from _common import Bench, bare_channel, row

    bench = Bench("bench_x", "what it measures")      # parses --json / --quick
    with bench.server() as server:                      # a fresh etcd of its own
        t_this = bench.median(lambda: work(client))     # seconds, median of repeats
        t_bare = bench.median(lambda: work(stub))
    bench.add(row("get latency", this, bare, "us", higher_is_better=False))
    bench.finish()      # table on stdout, or the JSON rows with --json

Row contract (what ``run.py`` reads): ``{"workload", "this", "baseline", "unit",
"ratio", "higher_is_better", "notes"}`` plus optional extras such as
``"peak_rss_mb"``. ``ratio`` is always "times better than the baseline" (> 1 means
this client wins), whichever direction the unit goes.

Peak RSS of one workload: run it in a child process (``child_rss``) that prints its
own ``ru_maxrss`` (``self_peak_rss_mb``), so the figure is that workload's alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TextIO

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, ROOT)

#: Channel options a bare stub needs to receive big ranges (the client sets these).
BARE_CHANNEL_OPTIONS = (("grpc.max_receive_message_length", 2**31 - 1),
                        ("grpc.max_send_message_length", 2**31 - 1))


def log(message: str) -> None:
    """Progress on stderr (stdout is kept for the table or the JSON rows)."""
    sys.stderr.write(f"  {message}\n")
    sys.stderr.flush()


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def row(workload: str, this: float, baseline: float, unit: str, *,
        higher_is_better: bool, notes: str = "", **extra: Any) -> Dict[str, Any]:
    """One result row; ``ratio`` > 1 means this client beats the baseline."""
    if this and baseline:
        ratio = this / baseline if higher_is_better else baseline / this
    else:
        ratio = float("nan")
    result = {"workload": workload, "this": float(this), "baseline": float(baseline),
              "unit": unit, "ratio": ratio, "higher_is_better": higher_is_better,
              "notes": notes}
    result.update(extra)
    return result


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def format_table(rows: Sequence[Dict[str, Any]], columns: Sequence[str] = (
        "workload", "this", "baseline", "unit", "ratio", "peak_rss_mb", "notes")) -> str:
    """A plain-text table of ``rows`` (missing cells shown as ``-``)."""
    columns = [c for c in columns if any(c in r for r in rows)]
    cells = [[_fmt(r.get(c, "-")) if c != "ratio" else
              (_fmt(r[c]) + "x" if isinstance(r.get(c), float) and r[c] == r[c] else "-")
              for c in columns] for r in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
           "  ".join("-" * w for w in widths)]
    for line in cells:
        out.append("  ".join(
            v.rjust(w) if columns[i] in ("this", "baseline", "ratio", "peak_rss_mb")
            else v.ljust(w) for i, (v, w) in enumerate(zip(line, widths))))
    return "\n".join(out)


def markdown_table(rows: Sequence[Dict[str, Any]], columns: Sequence[str] = (
        "workload", "this", "baseline", "unit", "ratio", "peak_rss_mb", "notes")) -> str:
    """``rows`` as a GitHub-flavoured Markdown table (for the README)."""
    columns = [c for c in columns if any(c in r for r in rows)]
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if c in ("this", "baseline", "ratio", "peak_rss_mb")
                            else "---" for c in columns) + "|"]
    for r in rows:
        cells = []
        for c in columns:
            value = r.get(c, "-")
            text = _fmt(value) + ("x" if c == "ratio" and isinstance(value, float)
                                  and value == value else "")
            cells.append(text.replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def self_peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (children excluded)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def child_rss(argv: Sequence[str], timeout: float = 600) -> Dict[str, Any]:
    """Run ``python argv...`` (a child that prints one JSON object, including its own
    ``peak_rss_mb``, as its last stdout line) and return that object."""
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=HERE)
    if proc.returncode != 0:
        raise RuntimeError(f"child {argv} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bare_channel(endpoint: str) -> Any:
    """An insecure gRPC channel to ``endpoint`` with no client library in between."""
    import grpc

    return grpc.insecure_channel(endpoint, options=list(BARE_CHANNEL_OPTIONS))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return "?"


def machine(etcd_version: Optional[str] = None) -> Dict[str, Any]:
    """What the numbers were measured on."""
    from etcd3 import codec

    if etcd_version is None:
        try:
            from etcd3.testing import find_etcd_binary

            out = subprocess.run([find_etcd_binary("etcd"), "--version"],
                                 capture_output=True, text=True, timeout=30).stdout
            match = re.search(r"etcd Version:\s*(\S+)", out)
            etcd_version = match.group(1) if match else "?"
        except Exception:
            etcd_version = "?"
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "grpcio": _version("grpcio"),
        "protobuf": _version("protobuf"),
        "etcd": etcd_version,
        "codec": codec.IMPLEMENTATION,
    }


def describe_machine(info: Dict[str, Any]) -> str:
    return (f"{info['cpu']}, {info['cores']} cores, {info['os']}; Python {info['python']}, "
            f"grpcio {info['grpcio']}, protobuf {info['protobuf']}, etcd {info['etcd']}, "
            f"codec {info['codec']}")


class Bench:
    """Argument parsing, a private etcd, and output for one bench script."""

    def __init__(self, name: str, description: str,
                 add_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None,
                 argv: Optional[Sequence[str]] = None) -> None:
        parser = argparse.ArgumentParser(prog=name, description=description)
        parser.add_argument("--json", action="store_true",
                            help="print the result rows as JSON on stdout")
        parser.add_argument("--quick", action="store_true",
                            help="small sizes and few repeats (a smoke run)")
        parser.add_argument("--repeat", type=int, default=None,
                            help="repeats per measurement (median is reported)")
        if add_arguments is not None:
            add_arguments(parser)
        self.args = parser.parse_args(argv)
        self.name = name
        self.quick: bool = self.args.quick
        self.repeat: int = self.args.repeat or (1 if self.quick else 5)
        self.rows: List[Dict[str, Any]] = []

    @contextlib.contextmanager
    def server(self, extra_args: Sequence[str] = ()) -> Iterator[Any]:
        """A fresh single-member etcd (temporary data dir) for this script."""
        from etcd3.testing import EtcdServer

        log(f"{self.name}: starting etcd")
        with EtcdServer(name=f"bench-{os.getpid()}", extra_args=extra_args) as server:
            yield server

    def median(self, fn: Callable[[], Any], repeat: Optional[int] = None,
               setup: Optional[Callable[[], Any]] = None) -> float:
        """Median seconds of ``repeat`` calls of ``fn`` (``setup`` runs untimed before
        each)."""
        times = []
        for _ in range(repeat or self.repeat):
            if setup is not None:
                setup()
            times.append(timed(fn))
        return median(times)

    def add(self, result: Dict[str, Any]) -> None:
        self.rows.append(result)
        log(f"{self.name}: {result['workload']}: {_fmt(result['this'])} vs "
            f"{_fmt(result['baseline'])} {result['unit']} ({_fmt(result['ratio'])}x)")

    def finish(self, out: TextIO = sys.stdout) -> None:
        """Print the rows: JSON with ``--json``, else a table and the machine."""
        if self.args.json:
            json.dump(self.rows, out)
            out.write("\n")
        else:
            out.write(format_table(self.rows) + "\n\n" + describe_machine(machine()) + "\n")
        out.flush()


def parse_hwm_kb(status_text: str) -> Optional[int]:
    """``VmHWM`` (peak RSS, kB) from a ``/proc/<pid>/status`` text."""
    match = re.search(r"^VmHWM:\s+(\d+)\s+kB", status_text, re.MULTILINE)
    return int(match.group(1)) if match else None
