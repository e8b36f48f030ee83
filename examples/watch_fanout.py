"""A watch fan-out server: many subscribers on one prefix, one server watch, resume.

Typical of a config or presence service that pushes every change under a prefix to
many local consumers. Here 200 callback subscribers and 10 iterator subscribers
watch ``/fanout/``; the client *coalesces* identical watches, so etcd serves ONE
watcher on ONE stream (read from etcd's own ``/metrics``). Callbacks run on the
client's dispatcher thread and iterators have their own queues, so a slow consumer
never stalls the network reader.

When the example runs its own etcd it then kills and restarts it mid-stream: the
client reopens the stream and resumes every watch from the revision after the last
event delivered, so each subscriber sees every event exactly once, in order.
Run:  python examples/watch_fanout.py
"""

from __future__ import annotations

import argparse
import re
import threading
import time
import urllib.request
from collections import defaultdict
from typing import Dict, List, Optional

from _support import etcd_server, show_etcd3_logs

import etcd3
from etcd3.events import PutEvent

PREFIX = "/fanout/"


def server_watchers(server: object) -> str:
    """etcd's own count of watchers and watch streams (its Prometheus metrics)."""
    url = getattr(server, "client_url", None)
    if not url:
        return "n/a (ETCD_ENDPOINTS set)"
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    found = dict(re.findall(r"^etcd_debugging_mvcc_(watcher|watch_stream)_total (\d+)",
                            text, re.M))
    return f"{found.get('watcher', '?')} watcher(s) on {found.get('watch_stream', '?')} stream(s)"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callbacks", type=int, default=200)
    parser.add_argument("--iterators", type=int, default=10)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args(argv)
    show_etcd3_logs()  # shows the stream being resumed

    with etcd_server() as (endpoints, server), \
            etcd3.client(endpoints=endpoints, timeout=10) as etcd:
        etcd.delete_prefix(PREFIX)
        received: Dict[str, List[bytes]] = defaultdict(list)
        guard = threading.Lock()

        def make_callback(name: str):  # one closure per subscriber
            def on_response(response: object) -> None:
                if isinstance(response, BaseException):  # the watch ended in error
                    print(f"{name}: watch ended: {response!r}")
                    return
                with guard:
                    received[name].extend(e.key for e in response.events
                                          if isinstance(e, PutEvent))
            return on_response

        watch_ids = [etcd.add_watch_prefix_callback(PREFIX, make_callback(f"callback-{n}"))
                     for n in range(args.callbacks)]
        iterators = [etcd.watch_prefix(PREFIX) for _ in range(args.iterators)]

        def consume(name: str, events, expected: int) -> None:
            for event in events:
                with guard:
                    received[name].append(event.key)
                    if len(received[name]) == expected:
                        return

        consumers = [threading.Thread(target=consume, args=(f"iterator-{n}", events,
                                                            args.events), daemon=True)
                     for n, (events, _cancel) in enumerate(iterators)]
        for thread in consumers:
            thread.start()
        subscribers = args.callbacks + args.iterators
        print(f"{subscribers} subscribers on {PREFIX!r}; etcd serves "
              f"{server_watchers(server)}")

        half = args.events // 2
        for n in range(half):
            etcd.put(f"{PREFIX}{n:04d}", f"value {n}")
        if server is not None:
            print("killing etcd mid-stream, then restarting it...")
            server.kill()
            time.sleep(0.5)
            server.start()
        for n in range(half, args.events):
            etcd.put(f"{PREFIX}{n:04d}", f"value {n}")

        expected = [f"{PREFIX}{n:04d}".encode() for n in range(args.events)]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with guard:
                if (len(received) == subscribers
                        and all(len(keys) >= args.events for keys in received.values())):
                    break
            time.sleep(0.05)
        for thread in consumers:
            thread.join(timeout=5)
        for watch_id in watch_ids:
            etcd.cancel_watch(watch_id)
        for _events, cancel in iterators:
            cancel()
        etcd.delete_prefix(PREFIX)

    exact = sum(1 for keys in received.values() if keys == expected)
    print(f"{exact} of {subscribers} subscribers received all {args.events} events "
          "exactly once, in order")
    return 0 if exact == subscribers else 1


if __name__ == "__main__":
    raise SystemExit(main())
