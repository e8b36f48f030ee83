"""The watch-backed cache (``client.cache_prefix``): reads, lag, load and memory.

    python benchmarks/bench_cache.py [--keys N] [--seconds S] [--rate R] [--json]

Starts its own etcd and loads ``--keys`` keys (64-byte values) under one prefix, then:

- ``cache.get`` lookups/s on one thread, vs ``dict.get`` on a plain dict of bytes;
- 8 reader threads doing ``cache.get`` while a writer process (16 threads) puts into
  the prefix as fast as it can, vs the same 8 readers with no writer (lookups/s, all
  threads; the writer's rate with and without the readers is in the notes);
- the lag from a put's acknowledgement (in a writer process, 16 threads, ``--rate``
  puts/s) to its visibility in the cache (a listener timestamps each applied
  revision; both read CLOCK_MONOTONIC): p50 and p99 in ms, vs the put latency;
- the initial load of the prefix: seconds and peak RSS of ``cache_prefix`` vs
  ``list(client.get_prefix(prefix))``, each in a child process of its own;
- bytes per cached key (RSS growth / keys, in that child) vs a plain
  ``{key: value}`` dict of the same bytes.

``--keys 1000000`` is the issue's figure (several minutes); the default runs in well
under two minutes on 2 cores.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List

from _common import Bench, child_rss, log, parse_hwm_kb, row

import etcd3

PREFIX = "/bench/cache/"
LAG_PREFIX = "/bench/lag/"
VALUE = b"v" * 64


def key(i: int) -> bytes:
    return b"%s%08d" % (PREFIX.encode(), i)


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource

    return pages * resource.getpagesize()


def child(mode: str, endpoint: str, keys: int) -> None:
    """One workload in this (child) process; prints a JSON object as its last line."""
    client = etcd3.client(endpoints=[endpoint], timeout=600)
    client.get("/warm-up")
    gc.collect()
    before = current_rss_bytes()
    out: Dict[str, Any] = {}
    start = time.perf_counter()
    if mode == "cache":
        cache = client.cache_prefix(PREFIX, timeout=600)
        out["seconds"] = time.perf_counter() - start
        keys = len(cache)  # the writer workloads added a few hundred
    elif mode == "get_prefix":
        pairs = list(client.get_prefix(PREFIX))
        out["seconds"] = time.perf_counter() - start
        keys = len(pairs)
    else:  # a plain dict of the same bytes (fresh objects, as the cache holds)
        plain = {key(i): bytes(bytearray(VALUE)) for i in range(keys)}
        out["seconds"] = time.perf_counter() - start
        assert len(plain) == keys
    gc.collect()
    out["bytes_per_key"] = (current_rss_bytes() - before) / keys
    with open("/proc/self/status") as f:  # ru_maxrss would count the parent's
        out["peak_rss_mb"] = (parse_hwm_kb(f.read()) or 0) / 1024
    print(json.dumps(out), flush=True)


def lookups_per_s(fn: Any, names: List[bytes], seconds: float) -> float:
    n = len(names)
    done = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        for i in range(0, 10000):
            fn(names[i % n])
        done += 10000
    return done / (time.perf_counter() - start)


def writer_child(endpoint: str, prefix: str, rate: float, seconds: float) -> None:
    """Put into ``prefix`` from 16 threads for ``seconds`` (at ``rate`` puts/s in all;
    0: as fast as they can); prints the acks ``[revision, perf_counter]`` (the clock
    is CLOCK_MONOTONIC, shared with the parent) and the put latencies."""
    writer = etcd3.client(endpoints=[endpoint], timeout=60)
    writer.get("/warm-up")
    acks: List[Any] = []
    latencies: List[float] = []
    lock = threading.Lock()
    writers = 16
    deadline = time.perf_counter() + seconds

    def write(slot: int) -> None:
        i = 0
        start = time.perf_counter()
        while True:
            now = time.perf_counter()
            due = start + i * writers / rate if rate else now
            if due > deadline or now > deadline:
                return
            if due > now:
                time.sleep(due - now)
            sent = time.perf_counter()
            revision = writer.put(f"{prefix}{slot}/{i % 100}", VALUE).header.revision
            acked = time.perf_counter()
            with lock:
                acks.append((revision, acked))
                latencies.append(acked - sent)
            i += 1

    threads = [threading.Thread(target=write, args=(s,)) for s in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    print(json.dumps({"acks": acks, "latencies": latencies,
                      "rate": len(acks) / seconds}), flush=True)


def run_writer(endpoint: str, prefix: str, rate: float, seconds: float) -> Any:
    return subprocess.Popen([sys.executable, __file__, "--child", "writer", "--endpoint",
                             endpoint, "--prefix", prefix, "--rate", str(rate),
                             "--seconds", str(seconds)],
                            stdout=subprocess.PIPE, text=True)


def writer_result(proc: Any) -> Dict[str, Any]:
    out, _ = proc.communicate(timeout=120)
    result: Dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def threaded_lookups(cache: Any, names: List[bytes], threads: int, seconds: float
                     ) -> float:
    counts = [0] * threads
    stop = threading.Event()

    def read(slot: int) -> None:
        get = cache.get
        n = len(names)
        done = 0
        while not stop.is_set():
            for i in range(2000):
                get(names[(i * 7919 + slot) % n])
            done += 2000
        counts[slot] = done

    workers = [threading.Thread(target=read, args=(s,)) for s in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - start)


def pct(values: List[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def lag(client: Any, endpoint: str, rate: float, seconds: float) -> Dict[str, float]:
    """Put-ack -> visible-in-cache lag (ms) at ``rate`` puts/s from a writer process."""
    cache = client.cache_prefix(LAG_PREFIX, timeout=30)
    visible: Dict[int, float] = {}
    cache.add_listener(lambda update: visible.setdefault(update.revision,
                                                         time.perf_counter()))
    result = writer_result(run_writer(endpoint, LAG_PREFIX, rate, seconds))
    acks = result["acks"]
    cache.wait_for_revision(max(r for r, _ in acks), timeout=30)
    time.sleep(0.1)  # the listener of the last revision
    lags = [max(visible[r] - t, 0.0) * 1000 for r, t in acks if r in visible]
    latencies = [x * 1000 for x in result["latencies"]]
    cache.close()
    return {"rate": result["rate"], "p50": pct(lags, 0.5), "p99": pct(lags, 0.99),
            "put_p50": pct(latencies, 0.5), "put_p99": pct(latencies, 0.99),
            "seen": len(lags)}


def main() -> None:
    def add_arguments(parser: Any) -> None:
        parser.add_argument("--keys", type=int, default=100_000)
        parser.add_argument("--seconds", type=float, default=3.0)
        parser.add_argument("--rate", type=float, default=2000.0)
        parser.add_argument("--child", default=None, help=argparse_hidden())
        parser.add_argument("--endpoint", default=None, help=argparse_hidden())
        parser.add_argument("--prefix", default=None, help=argparse_hidden())

    bench = Bench("bench_cache", "the watch-backed cache", add_arguments)
    args = bench.args
    if args.child == "writer":
        writer_child(args.endpoint, args.prefix, args.rate, args.seconds)
        return
    if args.child:
        child(args.child, args.endpoint, args.keys)
        return
    keys = 10_000 if bench.quick else args.keys
    seconds = 1.0 if bench.quick else args.seconds
    with bench.server() as server:
        client = etcd3.client(endpoints=[server.endpoint], timeout=60)
        log(f"bench_cache: loading {keys:,} keys")
        client.put_many((key(i), VALUE) for i in range(keys))
        cache = client.cache_prefix(PREFIX, timeout=120)
        names = [key(i) for i in range(keys)]
        plain = dict(cache.items())
        get_rate = lookups_per_s(cache.get, names, seconds)
        dict_rate = lookups_per_s(plain.get, names, seconds)
        bench.add(row("cache.get, 1 thread", get_rate, dict_rate, "lookups/s",
                      higher_is_better=True, notes="baseline: dict.get on a plain dict"))
        quiet = threaded_lookups(cache, names, 8, seconds)
        alone = writer_result(run_writer(server.endpoint, PREFIX + "w/", 0, seconds))
        applied = [0]
        cache.add_listener(lambda update: applied.__setitem__(0, applied[0] + 1))
        proc = run_writer(server.endpoint, PREFIX + "w/", 0, seconds + 1)
        time.sleep(0.5)
        busy = threaded_lookups(cache, names, 8, seconds)
        during = writer_result(proc)
        bench.add(row("cache.get, 8 threads + writer", busy, quiet, "lookups/s",
                      higher_is_better=True,
                      notes=f"baseline: the same readers, no writer; the writer process: "
                            f"{during['rate']:,.0f} puts/s (alone: {alone['rate']:,.0f}), "
                            f"{applied[0]:,} revisions applied"))
        cache.close()
        measured = lag(client, server.endpoint, args.rate, seconds)
        bench.add(row("put ack -> visible in cache, p50", measured["p50"],
                      measured["put_p50"], "ms", higher_is_better=False,
                      notes=f"{measured['rate']:,.0f} puts/s; baseline: put latency p50"))
        bench.add(row("put ack -> visible in cache, p99", measured["p99"],
                      measured["put_p99"], "ms", higher_is_better=False,
                      notes=f"{measured['seen']:,} puts; baseline: put latency p99"))
        client.close()
        base = [__file__, "--endpoint", server.endpoint, "--keys", str(keys)]
        loads = {mode: child_rss([*base, "--child", mode])
                 for mode in ("cache", "get_prefix", "dict")}
        bench.add(row(f"initial load of {keys:,} keys", loads["cache"]["seconds"],
                      loads["get_prefix"]["seconds"], "s", higher_is_better=False,
                      notes="baseline: list(client.get_prefix(prefix))",
                      peak_rss_mb=loads["cache"]["peak_rss_mb"],
                      baseline_peak_rss_mb=loads["get_prefix"]["peak_rss_mb"]))
        bench.add(row("bytes per cached key", loads["cache"]["bytes_per_key"],
                      loads["dict"]["bytes_per_key"], "B", higher_is_better=False,
                      notes=f"baseline: {{key: value}} dict of bytes; 21 B keys, "
                            f"{len(VALUE)} B values"))
    bench.finish()


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
