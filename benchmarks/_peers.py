"""Peer clients in venvs of their own, and running one workload through any client.

Each peer is installed with pip into ``<cache>/<name>`` (default cache:
``$ETCD3_BENCH_CACHE`` or ``~/.cache/etcd3-bench-peers``), once; a failed install is
reported and that peer is left out. Every workload runs in a child process
(``_peer_driver.py``) so that each client's figures, process CPU included, are its
own; this repository's clients run with this checkout's Python and code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import venv
from typing import Any, Dict, List, Optional, Sequence

from _common import HERE, ROOT, log

#: pip requirements of each peer (python-etcd3 0.12's generated code needs protobuf
#: 3.x; etcd-sdk-python does not declare the protobuf it needs).
PEERS: Dict[str, Sequence[str]] = {
    "aetcd": ("aetcd",),
    "etcd-client-py": ("etcd-client-py",),
    "python-etcd3": ("etcd3==0.12.0", "protobuf<3.21"),
    "etcd-sdk-python": ("etcd-sdk-python", "protobuf"),
}
#: This repository's clients (run from this checkout).
OURS = ("aio", "threaded", "grpc-aio", "grpc-aio-hasleader")
DRIVER = os.path.join(HERE, "_peer_driver.py")


def cache_dir() -> str:
    return os.environ.get("ETCD3_BENCH_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "etcd3-bench-peers")


def ensure_peer(name: str) -> Optional[str]:
    """The Python of ``name``'s venv (installed on first use), or None (reported)
    when it cannot be installed."""
    home = os.path.join(cache_dir(), name)
    python = os.path.join(home, "bin", "python")
    marker = os.path.join(home, ".installed")
    wanted = " ".join(PEERS[name])
    try:
        with open(marker) as f:
            if f.read() == wanted:
                return python
    except OSError:
        pass
    log(f"installing {name} ({wanted}) into {home}")
    try:
        venv.create(home, with_pip=True, clear=True)
        proc = subprocess.run([python, "-m", "pip", "install", "-q", *PEERS[name]],
                              capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as error:
        log(f"{name}: install failed: {error}")
        return None
    if proc.returncode != 0:
        log(f"{name}: pip install failed:\n{proc.stderr[-1500:]}")
        return None
    with open(marker, "w") as f:
        f.write(wanted)
    return python


def python_for(client: str) -> Optional[str]:
    return sys.executable if client in OURS else ensure_peer(client)


def version_of(python: str, distribution: str) -> str:
    # Not from this checkout's directory: python-etcd3's distribution is "etcd3" too,
    # and the checkout's metadata would answer for it.
    proc = subprocess.run([python, "-c", "import importlib.metadata as m; "
                           f"print(m.version({distribution!r}))"],
                          capture_output=True, text=True, timeout=60,
                          cwd=tempfile.gettempdir())
    return proc.stdout.strip() or "?"


def run_driver(client: str, endpoint: str, workload: str, *, in_flight: int = 1,
               seconds: float = 2.0, rounds: int = 1, count: int = 0,
               batching: bool = True, timeout: float = 600
               ) -> Optional[Dict[str, Any]]:
    """One workload through one client in a child process: the driver's JSON result,
    or None (logged) when the client is missing or the run failed."""
    python = python_for(client)
    if python is None:
        return None
    argv: List[str] = [python, DRIVER, "--client", client, "--endpoint", endpoint,
                       "--workload", workload, "--in-flight", str(in_flight),
                       "--seconds", str(seconds), "--rounds", str(rounds),
                       "--count", str(count)]
    if not batching:
        argv.append("--no-batching")
    env = dict(os.environ)
    env["ETCD3_BENCH_ROOT"] = ROOT
    if client not in OURS:  # a peer must not see this checkout (python-etcd3 is "etcd3")
        env.pop("PYTHONPATH", None)
    cwd = cache_dir() if client not in OURS else HERE
    if workload == "watch":
        return _run_watch(argv, env, cwd, rounds, count, timeout, f"{client} watch")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              cwd=cwd, env=env)
    except subprocess.TimeoutExpired:
        log(f"{client} {workload} x{in_flight}: timed out")
        return None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        log(f"{client} {workload} x{in_flight}: failed:\n{proc.stderr[-1500:]}")
        return None
    return json.loads(lines[-1])  # type: ignore[no-any-return]


#: Puts per transaction the watch writer commits (distinct keys: one event each).
WATCH_OPS_PER_TXN = 100


def _run_watch(argv: List[str], env: Dict[str, str], cwd: str, rounds: int,
               events: int, timeout: float, what: str) -> Optional[Dict[str, Any]]:
    """The watch workload: for each round, once the driver's subscribers are in
    place (it prints READY), tell it to start and commit ``events`` events from this
    process (transactions of 100 puts), so the writer's CPU is not the client's."""
    import etcd3

    prefix = f"/bench/watch/{os.getpid()}/"
    argv = argv + ["--prefix", prefix]
    endpoint = argv[argv.index("--endpoint") + 1]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        with etcd3.client(endpoints=[endpoint]) as writer:
            value = b"v" * 100
            for r in range(rounds):
                if proc.stdout.readline().strip() != "READY":
                    break
                ops = [writer.transactions.put(f"{prefix}{r}/{i}", value)
                       for i in range(WATCH_OPS_PER_TXN)]
                proc.stdin.write("GO\n")
                proc.stdin.flush()
                for _ in range(0, events, WATCH_OPS_PER_TXN):
                    writer.transaction([], ops)
        out, err = proc.communicate(timeout=timeout)
    except (subprocess.TimeoutExpired, OSError) as error:
        proc.kill()
        out, err = proc.communicate()
        log(f"{what}: {error}")
        return None
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("{"):
        log(f"{what}: failed:\n{err[-1500:]}")
        return None
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def preload(endpoint: str, prefix_keys: int) -> None:
    """The keys the get and get_prefix workloads read (100-byte values)."""
    import etcd3

    with etcd3.client(endpoints=[endpoint]) as client:
        client.put_many((b"/bench/k/%d" % i, b"v" * 100) for i in range(1000))
        if prefix_keys:
            client.put_many((b"/bench/prefix/%07d" % i, b"v" * 100)
                            for i in range(prefix_keys))
