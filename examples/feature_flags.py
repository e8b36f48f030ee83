"""Feature flags served from a local cache of an etcd prefix.

Every request of a service checks a few flags; asking etcd each time would cost a
round trip per check. ``client.cache_prefix("/flags/")`` lists the prefix once, then
follows it with a watch: a flag check is a dictionary lookup (no I/O), every read
reflects one etcd revision, and an admin's change shows up within milliseconds.

The example: flags are written as JSON, a :class:`Flags` object reads them through
the cache (a listener logs each change), an admin flips a flag and waits until the
cache has it (read-your-writes), two flags change together in one transaction (a
snapshot never shows one without the other), and — when the example runs its own
etcd — the server is killed and restarted: ``cache.stale_since`` says since when
the flags may be old, and the cache catches up by itself.
Run:  python examples/feature_flags.py
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Optional

from _support import etcd_server

import etcd3
from etcd3.cache import CacheUpdate, PrefixCache

PREFIX = "/flags/"


class Flags:
    """Flag lookups for request handlers: no I/O, one revision per read."""

    def __init__(self, cache: PrefixCache) -> None:
        self.cache = cache

    def value(self, name: str, default: Any = None) -> Any:
        raw, _meta = self.cache.get(PREFIX + name)
        return default if raw is None else json.loads(raw)

    def enabled(self, name: str) -> bool:
        return self.cache.get(PREFIX + name)[0] == b"true"  # the hot path: no parsing


def log_change(update: CacheUpdate) -> None:
    kind = "resync" if update.resync else "change"
    names = ", ".join(f"{e.key.decode()[len(PREFIX):]}={e.value.decode() or '<deleted>'}"
                      for e in update.events)
    # One write per line: listeners run on a client thread, next to the main one.
    sys.stdout.write(f"  [{kind} @ revision {update.revision}] {names}\n")


def main() -> None:
    with etcd_server() as (endpoints, server), \
            etcd3.client(endpoints=endpoints, timeout=10) as etcd:
        etcd.delete_prefix(PREFIX)
        etcd.put(PREFIX + "new-checkout", json.dumps(False))
        etcd.put(PREFIX + "max-items", json.dumps(20))

        with etcd.cache_prefix(PREFIX) as cache:
            flags = Flags(cache)
            cache.add_listener(log_change)
            print(f"cache loaded: {len(cache)} flags at revision {cache.revision}")

            started = time.perf_counter()
            checks = 200_000
            for _ in range(checks):
                flags.enabled("new-checkout")
            elapsed = time.perf_counter() - started
            print(f"{checks:,} flag checks in {elapsed:.2f} s "
                  f"({checks / elapsed:,.0f}/s, no etcd round trip)")

            # An admin turns the flag on; wait until the cache has that revision.
            revision = etcd.put(PREFIX + "new-checkout", json.dumps(True)).header.revision
            cache.wait_for_revision(revision, timeout=10)
            print("new-checkout enabled:", flags.enabled("new-checkout"))

            # Two flags that must change together: one transaction, one revision.
            t = etcd.transactions
            etcd.transaction(compare=[], success=[
                t.put(PREFIX + "payments-v2", json.dumps(True)),
                t.put(PREFIX + "max-items", json.dumps(50))])
            revision = etcd.get_response(PREFIX + "max-items").header.revision
            cache.wait_for_revision(revision, timeout=10)
            snap = cache.snapshot()  # both reads at one revision
            payments, items = (snap.get(PREFIX + name)[0] for name in ("payments-v2",
                                                                       "max-items"))
            print(f"snapshot @ {snap.revision}: payments-v2={payments!r} max-items={items!r}")
            print("all flags:", {m.key.decode()[len(PREFIX):]: json.loads(v)
                                 for v, m in cache.get_prefix()})

            if server is not None:
                outage(etcd, cache, server)
            print("feature flags done.")


def outage(etcd: Any, cache: PrefixCache, server: Any) -> None:
    """Kill etcd: the flags stay readable, ``stale_since`` says how old they may be."""
    server.kill()
    deadline = time.monotonic() + 15
    since: Optional[float] = None
    while since is None and time.monotonic() < deadline:
        since = cache.stale_since
        time.sleep(0.05)
    print(f"etcd killed: flags still served from the cache "
          f"(new-checkout={Flags(cache).enabled('new-checkout')}); "
          f"stale for {time.monotonic() - (since or time.monotonic()):.1f} s so far")
    server.start()
    revision = etcd.put(PREFIX + "new-checkout", json.dumps(False)).header.revision
    cache.wait_for_revision(revision, timeout=20)
    print(f"etcd restarted: stale_since={cache.stale_since}, "
          f"new-checkout={Flags(cache).enabled('new-checkout')}")


if __name__ == "__main__":
    main()
