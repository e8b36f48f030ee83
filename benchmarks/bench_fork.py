"""Forks of a busy parent: how many children crash, with etcd3's fork gate and
without it, in the same run, against an etcd this script starts.

The parent has threads looping get+put, a watch receiving their events and a
kept-alive lease; each child uses the client it inherited (put, get, a watch of
its own, a lock) and exits. Children killed by a signal are counted as crashes.

    python benchmarks/bench_fork.py --forks 50 --rounds 3

Each side runs in a fresh interpreter (``--side gate|nogate`` runs one side).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Dict

import etcd3
from etcd3._sync import forksafe as _forksafe
from etcd3.testing import EtcdServer


def _child(client: etcd3.Etcd3Client) -> None:
    signal.alarm(60)
    me = str(os.getpid())
    client.put("/child/" + me, "v")
    assert client.get("/child/" + me)[0] == b"v"
    events, cancel = client.watch("/child-watch/" + me)
    client.put("/child-watch/" + me, "w")
    assert next(events).value == b"w"
    cancel()
    with client.lock("fork-" + me, ttl=5) as lock:
        assert lock.is_acquired()


def one_side(endpoint: str, forks: int, gate: bool) -> Dict[str, int]:
    """Fork ``forks`` children of a busy parent; returns outcome -> count."""
    _forksafe.GATE.enabled = gate
    client = etcd3.client(endpoints=[endpoint], timeout=10)
    stop = threading.Event()

    def busy(i: int) -> None:
        while not stop.is_set():
            try:
                client.get(f"/busy/{i}")
                client.put(f"/busy/{i}", "x")
            except etcd3.exceptions.Etcd3Exception:
                pass

    for i in range(4):
        threading.Thread(target=busy, args=(i,), daemon=True).start()
    events, cancel = client.watch_prefix("/busy/")
    threading.Thread(target=lambda: [None for _ in events], daemon=True).start()
    client.lease(5, keep_alive=True)
    outcomes: Dict[str, int] = {}
    for _ in range(forks):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _child(client)
            except BaseException:
                code = 3
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        outcome = ("crashed" if os.WIFSIGNALED(status)
                   else "ok" if os.WEXITSTATUS(status) == 0 else "failed")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    stop.set()
    cancel()
    client.close()
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forks", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--side", choices=("gate", "nogate"))
    parser.add_argument("--endpoint")
    args = parser.parse_args()
    if args.side:
        print(json.dumps(one_side(args.endpoint, args.forks, args.side == "gate")))
        return
    totals = {"gate": {"ok": 0, "crashed": 0, "failed": 0},
              "nogate": {"ok": 0, "crashed": 0, "failed": 0}}
    with EtcdServer() as server:
        for _ in range(args.rounds):
            for side in ("nogate", "gate"):
                out = subprocess.run(
                    [sys.executable, __file__, "--side", side, "--forks", str(args.forks),
                     "--endpoint", server.endpoint],
                    capture_output=True, text=True, timeout=600).stdout
                for key, count in json.loads(out.strip().splitlines()[-1]).items():
                    totals[side][key] += count
    print(f"{args.rounds} rounds x {args.forks} forks of a busy parent (etcd "
          f"{server.version}):")
    for side, label in (("nogate", "without the fork gate"), ("gate", "with the fork gate")):
        counts = totals[side]
        total = sum(counts.values())
        print(f"  {label:22}: {counts['crashed']:3d} crashed, {counts['failed']:3d} failed, "
              f"{counts['ok']:3d} ok of {total} ({100 * counts['crashed'] / total:.1f} % "
              "crashed)")


if __name__ == "__main__":
    main()
