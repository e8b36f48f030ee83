"""Locks and leader elections, Go-compatible: interoperating with ``etcdctl lock``.

1. ``with etcd.lock(name)``: threads take turns (FIFO, no thundering herd); each
   holder gets a *fencing token* (``lock.revision``) that grows with every holder.
2. The key layout is etcd's Go ``concurrency.Mutex``: ``/locks/<name>/<lease hex>``.
   So ``etcdctl lock /locks/<name>`` waits while Python holds the lock, and Python
   waits while etcdctl holds it.
3. An election: two candidates, an observer following the leader, and a hand-over
   when the leader resigns (Go's ``concurrency.Election``, like ``etcdctl elect``).

Run:  python examples/locks_and_elections.py
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import List, Optional

from _support import etcd_endpoints

import etcd3


def take_turns(etcd: etcd3.Etcd3Client, workers: int = 4) -> None:
    """Each thread increments a shared counter under the lock (read-modify-write)."""
    etcd.put("/demo/counter", "0")
    tokens: List[int] = []

    def work() -> None:
        for _ in range(3):
            with etcd.lock("counter", ttl=10) as lock:
                value = int(etcd.get("/demo/counter")[0])
                etcd.put("/demo/counter", str(value + 1))
                tokens.append(lock.revision)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"counter = {int(etcd.get('/demo/counter')[0])} after {workers} threads x 3 "
          f"increments; fencing tokens increase: {tokens == sorted(tokens)}")


def etcdctl_interop(etcd: etcd3.Etcd3Client, endpoint: str) -> None:
    """Python and ``etcdctl lock`` exclude each other on the same lock."""
    from etcd3.testing import EtcdNotFoundError, find_etcd_binary

    try:
        etcdctl = find_etcd_binary("etcdctl")
    except EtcdNotFoundError:
        print("etcdctl not found: skipping the interop demo")
        return
    base = [etcdctl, f"--endpoints={endpoint}", "lock", "/locks/deploy", "--"]

    with etcd.lock("deploy", ttl=10) as lock:
        print(f"python holds {lock.key!r}; its own key is {lock.owner_key!r}")
        waiter = subprocess.Popen(base + ["echo", "etcdctl got the lock"],
                                  stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        print("etcdctl lock is waiting while python holds it:", waiter.poll() is None)
    output, _ = waiter.communicate(timeout=10)
    print("after python released:", output.strip())

    holder = subprocess.Popen(base + [sys.executable, "-c", "import time; time.sleep(2)"])
    while not list(etcd.get_prefix("/locks/deploy/", keys_only=True)):
        time.sleep(0.05)  # wait for etcdctl's key to appear
    lock = etcd.lock("deploy", ttl=10)
    print("python acquire(timeout=0.3) while etcdctl holds it:", lock.acquire(timeout=0.3))
    print("python acquire(timeout=10) once etcdctl is done:", lock.acquire(timeout=10))
    lock.release()
    holder.wait(timeout=10)


def election(etcd: etcd3.Etcd3Client) -> None:
    """Two candidates; the observer sees the first leader, then the hand-over."""
    alice = etcd.election("scheduler", ttl=10)
    bob = etcd.election("scheduler", ttl=10)
    print("alice elected:", alice.campaign("alice", timeout=5))

    seen: List[bytes] = []
    observer = alice.observe()

    def follow() -> None:
        for value, _meta in observer:
            seen.append(value)
            if value == b"bob":
                return

    follower = threading.Thread(target=follow)
    follower.start()
    bob_won = threading.Event()
    runner = threading.Thread(target=lambda: bob.campaign("bob", timeout=10) and bob_won.set())
    runner.start()
    time.sleep(0.5)
    print("while alice leads, bob waits; leader is", alice.leader()[0])
    alice.proclaim("alice v2")  # update the leader's value without an election
    time.sleep(0.2)
    alice.resign()
    runner.join(timeout=10)
    follower.join(timeout=10)
    observer.cancel()
    print("bob elected after alice resigned:", bob_won.is_set(), "; bob.is_leader():",
          bob.is_leader())
    print("observer saw leaders:", [v.decode() for v in seen])
    bob.resign()


def main(argv: Optional[List[str]] = None) -> int:
    with etcd_endpoints() as endpoints, etcd3.client(endpoints=endpoints,
                                                     timeout=10) as etcd:
        take_turns(etcd)
        etcdctl_interop(etcd, endpoints[0])
        election(etcd)
        etcd.delete_prefix("/demo/")
        print("locks and elections done.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
