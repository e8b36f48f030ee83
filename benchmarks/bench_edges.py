"""Production edges, measured: a hung member, and short deadlines on etcd 3.5.0-3.5.4.

    python benchmarks/bench_edges.py hung  [--seconds 15] [--threads 8] [--timeout 5]
    python benchmarks/bench_edges.py crash [--seconds 15] [--threads 8]

``hung``: a 3-member cluster; the client reaches member 0 through a
:class:`etcd3.testing.FaultProxy`. Threads call ``get()`` for ``--seconds`` with every
member working, then for ``--seconds`` with the proxy in ``"stall"`` (member 0 keeps
its connection and answers HTTP/2 pings but no RPC). Prints gets/s of both phases,
the ratio, failed gets and when member 0 was ejected.

``crash``: threads call ``get()`` with 2-8 ms timeouts against a 3-member cluster for
``--seconds`` (etcd 3.5.0-3.5.4 panic when a read-only Txn's context ends while it is
applied); prints gets served, failures by type, and which members are still alive.
"""

from __future__ import annotations

import argparse
import collections
import logging
import random
import sys
import threading
import time
from typing import Any, Counter, Dict, List

import etcd3
from etcd3.testing import EtcdCluster, FaultProxy


def _phase(client: Any, threads: int, seconds: float, timeout: Any = None
           ) -> Dict[str, Any]:
    stop = time.monotonic() + seconds
    done = [0] * threads
    errors: Counter[str] = collections.Counter()

    def worker(n: int) -> None:
        rng = random.Random(n)
        while time.monotonic() < stop:
            try:
                if timeout is None:
                    client.get(f"/edge/{n % 4}")
                else:
                    client.get(f"/edge/{n % 4}", timeout=rng.uniform(*timeout))
                done[n] += 1
            except etcd3.exceptions.Etcd3Exception as error:
                errors[type(error).__name__] += 1

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - started
    return {"gets": sum(done), "rate": sum(done) / elapsed, "errors": dict(errors),
            "elapsed": elapsed}


def hung(args: argparse.Namespace) -> None:
    with EtcdCluster(3) as cluster, FaultProxy(cluster.members[0].endpoint) as proxy:
        endpoints = [proxy.endpoint] + cluster.endpoints[1:]
        with etcd3.client(endpoints=endpoints, timeout=args.timeout) as client:
            for n in range(4):
                client.put(f"/edge/{n}", "v")
            before = _phase(client, args.threads, args.seconds)
            state = client._transport.pool.states[0]
            ejected_at: List[float] = []

            def watch_ejection() -> None:
                while not ejected_at and time.monotonic() < stall_end:
                    if state.ejected:
                        ejected_at.append(time.monotonic() - stall_start)
                    time.sleep(0.005)

            stall_start = time.monotonic()
            stall_end = stall_start + args.seconds + 1
            proxy.mode = "stall"
            watcher = threading.Thread(target=watch_ejection)
            watcher.start()
            during = _phase(client, args.threads, args.seconds)
            watcher.join()
    print(f"etcd {cluster.version}, codec {etcd3.codec.IMPLEMENTATION}, "
          f"{args.threads} threads, timeout={args.timeout}")
    print(f"all members working: {before['rate']:8.0f} gets/s  errors {before['errors']}")
    print(f"member 0 hung:       {during['rate']:8.0f} gets/s  errors {during['errors']}")
    print(f"throughput kept: {100 * during['rate'] / before['rate']:.0f} %; member 0 "
          + (f"ejected {ejected_at[0]:.2f} s after it hung" if ejected_at
             else "never ejected"))


def crash(args: argparse.Namespace) -> None:
    with EtcdCluster(3) as cluster:
        with etcd3.client(endpoints=cluster.endpoints, timeout=5) as client:
            for n in range(4):
                client.put(f"/edge/{n}", "v")
            result = _phase(client, args.threads, args.seconds, timeout=(0.002, 0.008))
        time.sleep(1)
        alive = [m.name for m in cluster.members if m.running]
    print(f"etcd {cluster.version}, codec {etcd3.codec.IMPLEMENTATION}, "
          f"{args.threads} threads, get(timeout=2..8 ms) for {args.seconds:.0f} s")
    print(f"gets served: {result['gets']}; failures: {result['errors']}")
    print(f"members alive at the end: {len(alive)} of 3 {alive}")


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=("hung", "crash"))
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("-v", action="store_true", help="log etcd3 at INFO")
    args = parser.parse_args(argv)
    if args.v:
        logging.basicConfig(level=logging.INFO)
    {"hung": hung, "crash": crash}[args.case](args)


if __name__ == "__main__":
    main(sys.argv[1:])
