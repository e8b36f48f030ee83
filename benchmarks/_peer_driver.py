"""One client, one workload, in a process of its own; prints one JSON line.

Run by ``bench_aio.py`` and ``bench_peers.py`` with the Python of the client's own
venv (peers) or of this checkout (this client, the bare stubs), so every figure,
including process CPU per call, is that client's alone::

    python _peer_driver.py --client aetcd --endpoint 127.0.0.1:2379 \\
        --workload get --in-flight 64 --seconds 2 --rounds 3

Clients: ``aio`` (etcd3.aio), ``threaded`` (etcd3), ``grpc-aio`` (bare grpc.aio
KVStub), ``aetcd``, ``python-etcd3`` (etcd3 0.12), ``etcd-sdk-python``,
``etcd-client-py``. Workloads: ``get`` / ``put`` (N in flight: tasks for asyncio
clients, threads for threaded ones, over keys ``/bench/k/0..999`` with 100-byte
values), ``bulk`` (load N keys with the client's best API), ``prefix`` (get_prefix of
the keys under ``/bench/prefix/``), ``watch`` (N subscribers on one prefix; the
driver prints READY, the harness answers with a line on stdin and writes the events
from its own process; deliveries/s from that line until every subscriber has them).
The driver imports nothing from this repository unless it runs one of its clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

KEYS = 1000
VALUE = b"v" * 100
GET_PREFIX = b"/bench/prefix/"
ASYNC_CLIENTS = ("aio", "grpc-aio", "grpc-aio-hasleader", "aetcd", "etcd-client-py")
BULK_CHUNK = 128  # etcd's default --max-txn-ops
BULK_IN_FLIGHT = 4


def key(n: int) -> bytes:
    return b"/bench/k/%d" % (n % KEYS)


# -- clients ------------------------------------------------------------------------


def _this_on_path() -> None:
    root = os.environ.get("ETCD3_BENCH_ROOT")
    if root and root not in sys.path:
        sys.path.insert(0, root)


#: read_batch_in_flight for this client with batching off: never that many reads.
NO_BATCHING = 1_000_000


class AsyncClient:
    """get/put/bulk/prefix/watch for one asyncio client."""

    def __init__(self, name: str, endpoint: str, batching: bool) -> None:
        # grpc-aio-hasleader: the bare stub sending etcd's require-leader metadata
        # with each call, as this client does.
        self.metadata = (("hasleader", "true"),) if name == "grpc-aio-hasleader" else None
        name = "grpc-aio" if name == "grpc-aio-hasleader" else name
        self.name = name
        self.endpoint = endpoint
        self.batching = batching
        self.version = "?"

    async def open(self) -> None:
        host, port = self.endpoint.rsplit(":", 1)
        if self.name == "aio":
            _this_on_path()
            import etcd3
            import etcd3.aio

            self.version = etcd3.__version__
            self.c = etcd3.aio.client(
                endpoints=[self.endpoint],
                read_batch_in_flight=2 if self.batching else NO_BATCHING)
            await self.c.put("/bench/warm", "")  # binds the pool
        elif self.name == "grpc-aio":
            _this_on_path()
            import grpc
            import grpc.aio

            from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc
            self.pb = rpc_pb2
            self.version = "grpcio " + grpc.__version__
            self.channel = grpc.aio.insecure_channel(self.endpoint, options=[
                ("grpc.max_receive_message_length", 2**31 - 1)])
            self.c = rpc_pb2_grpc.KVStub(self.channel)
            self.watch_stub = rpc_pb2_grpc.WatchStub(self.channel)
        elif self.name == "aetcd":
            from importlib.metadata import version

            import aetcd

            self.version = version("aetcd")
            self.c = aetcd.Client(host=host, port=int(port))
            await self.c.connect()
        elif self.name == "etcd-client-py":
            from importlib.metadata import version

            import etcd_client

            self.version = version("etcd-client-py")
            self.outer = etcd_client.Client([f"http://{self.endpoint}"])
            self.ctx = self.outer.connect()
            self.c = await self.ctx.__aenter__()
        else:
            raise SystemExit(f"unknown asyncio client {self.name}")

    async def close(self) -> None:
        if self.name == "aio":
            await self.c.close()
        elif self.name == "grpc-aio":
            await self.channel.close()
        elif self.name == "aetcd":
            await self.c.close()
        elif self.name == "etcd-client-py":
            await self.ctx.__aexit__(None, None, None)

    async def get(self, k: bytes) -> Any:
        if self.name == "grpc-aio":
            return await self.c.Range(self.pb.RangeRequest(key=k), metadata=self.metadata)
        return await self.c.get(k)

    async def put(self, k: bytes, v: bytes) -> Any:
        if self.name == "grpc-aio":
            return await self.c.Put(self.pb.PutRequest(key=k, value=v),
                                    metadata=self.metadata)
        return await self.c.put(k, v)

    async def put_chunk(self, items: List[bytes]) -> None:
        """One transaction of puts (the best bulk API the client has)."""
        if self.name == "aio":
            put = self.c.transactions.put
            await self.c.transaction(compare=[], success=[put(k, VALUE) for k in items])
        elif self.name == "grpc-aio":
            pb = self.pb
            await self.c.Txn(pb.TxnRequest(success=[
                pb.RequestOp(request_put=pb.PutRequest(key=k, value=VALUE))
                for k in items]))
        elif self.name == "aetcd":
            from aetcd import transactions as tx

            await self.c.transaction(compare=[], success=[tx.Put(k, VALUE) for k in items],
                                     failure=[])
        elif self.name == "etcd-client-py":
            import etcd_client

            txn = etcd_client.Txn().and_then([etcd_client.TxnOp.put(k, VALUE)
                                              for k in items])
            await self.c.txn(txn)

    async def bulk(self, count: int) -> None:
        if self.name == "aio" and hasattr(self.c, "put_many"):
            try:
                await self.c.put_many((b"/bench/bulk/%d" % i, VALUE) for i in range(count))
                return
            except NotImplementedError:
                pass
        keys = [b"/bench/bulk/%d" % i for i in range(count)]
        chunks = [keys[i:i + BULK_CHUNK] for i in range(0, count, BULK_CHUNK)]
        it = iter(chunks)

        async def worker() -> None:
            for chunk in it:
                await self.put_chunk(chunk)

        await asyncio.gather(*(worker() for _ in range(BULK_IN_FLIGHT)))

    async def prefix(self) -> int:
        if self.name == "aio":
            n = 0
            async for _ in self.c.get_prefix(GET_PREFIX):
                n += 1
            return n
        if self.name == "grpc-aio":
            r = await self.c.Range(self.pb.RangeRequest(key=GET_PREFIX,
                                                        range_end=_prefix_end(GET_PREFIX)))
            return len(r.kvs)
        if self.name == "aetcd":
            return len(list(await self.c.get_prefix(GET_PREFIX)))
        return len(await self.c.get_prefix(GET_PREFIX))

    async def watch(self, subscribers: int, events: int, prefix: bytes) -> float:
        """Seconds from the first write until every subscriber got ``events`` events."""
        got = [0] * subscribers
        done = asyncio.Event()
        remaining = [subscribers]
        cancels: List[Any] = []
        ready: List[Any] = []

        def delivered(i: int, n: int) -> None:
            got[i] += n
            if got[i] >= events:
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()

        async def consume(i: int, stream: Any, count: Callable[[Any], int]) -> None:
            async for item in stream:
                delivered(i, count(item))
                if got[i] >= events:
                    return

        tasks = []
        for i in range(subscribers):
            if self.name == "aio":
                stream, cancel = await self.c.watch_prefix(prefix)
                cancels.append(cancel)
                tasks.append(asyncio.ensure_future(consume(i, stream, lambda _: 1)))
            elif self.name == "aetcd":
                watch = await self.c.watch_prefix(prefix)
                cancels.append(watch.cancel)
                tasks.append(asyncio.ensure_future(consume(i, watch, lambda _: 1)))
            elif self.name == "etcd-client-py":
                watch = self.c.watch_prefix(prefix)  # an async iterator, not awaited
                tasks.append(asyncio.ensure_future(consume(i, watch, lambda _: 1)))
            elif self.name == "grpc-aio":
                pb = self.pb
                call = self.watch_stub.Watch(iter([pb.WatchRequest(
                    create_request=pb.WatchCreateRequest(
                        key=prefix, range_end=_prefix_end(prefix)))]))
                ready.append(call)
                tasks.append(asyncio.ensure_future(
                    consume(i, call, lambda r: len(r.events))))
        await asyncio.sleep(0.5 + subscribers / 500)  # let every watch register
        started = _ready_go()
        await asyncio.wait_for(done.wait(), timeout=120)
        elapsed = time.perf_counter() - started
        for cancel in cancels:
            try:
                result = cancel()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                pass
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for call in ready:
            call.cancel()
        return elapsed


class ThreadedClient:
    """get/put/bulk/prefix/watch for one threaded client."""

    def __init__(self, name: str, endpoint: str, batching: bool) -> None:
        host, port = endpoint.rsplit(":", 1)
        self.name = name
        if name == "threaded":
            _this_on_path()
            import etcd3

            self.version = etcd3.__version__
            self.c = etcd3.client(endpoints=[endpoint],
                                  read_batch_in_flight=2 if batching else NO_BATCHING)
            self.c.put("/bench/warm", "")
        elif name in ("python-etcd3", "etcd-sdk-python"):
            if name == "python-etcd3":
                import etcd3  # the peer's package of that name, from its own venv
            else:
                import pyetcd as etcd3  # type: ignore
            from importlib.metadata import version

            self.version = version("etcd3" if name == "python-etcd3" else name)
            self.c = etcd3.client(host=host, port=int(port))
        else:
            raise SystemExit(f"unknown client {name}")

    def close(self) -> None:
        self.c.close()

    def get(self, k: bytes) -> Any:
        return self.c.get(k)

    def put(self, k: bytes, v: bytes) -> Any:
        return self.c.put(k, v)

    def bulk(self, count: int) -> None:
        if self.name == "threaded":
            self.c.put_many((b"/bench/bulk/%d" % i, VALUE) for i in range(count))
            return
        keys = [b"/bench/bulk/%d" % i for i in range(count)]
        chunks = iter([keys[i:i + BULK_CHUNK] for i in range(0, count, BULK_CHUNK)])
        lock = threading.Lock()
        put = self.c.transactions.put

        def worker() -> None:
            while True:
                with lock:
                    chunk = next(chunks, None)
                if chunk is None:
                    return
                self.c.transaction(compare=[], success=[put(k, VALUE) for k in chunk],
                                   failure=[])

        _threads(BULK_IN_FLIGHT, lambda _: worker())

    def prefix(self) -> int:
        return sum(1 for _ in self.c.get_prefix(GET_PREFIX))

    def watch(self, subscribers: int, events: int, prefix: bytes) -> float:
        got = [0] * subscribers
        all_done = threading.Barrier(subscribers + 1)
        streams = [self.c.watch_prefix(prefix) for _ in range(subscribers)]

        def consume(i: int) -> None:
            iterator, cancel = streams[i]
            for _ in iterator:
                got[i] += 1
                if got[i] >= events:
                    break
            all_done.wait()

        workers = [threading.Thread(target=consume, args=(i,), daemon=True)
                   for i in range(subscribers)]
        for w in workers:
            w.start()
        time.sleep(0.5 + subscribers / 500)
        started = _ready_go()
        all_done.wait(timeout=120)
        elapsed = time.perf_counter() - started
        for _, cancel in streams:
            try:
                cancel()
            except Exception:
                pass
        return elapsed


def _ready_go() -> float:
    """Tell the harness the subscribers are in place, wait for its go (it then
    writes the events from a process of its own); returns the start time."""
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    sys.stdin.readline()
    return time.perf_counter()


def _prefix_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _threads(count: int, target: Callable[[int], None]) -> None:
    workers = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


# -- workloads ----------------------------------------------------------------------


async def _kv_round_async(client: AsyncClient, args: argparse.Namespace) -> Tuple[float, float]:
    """One timed round of gets or puts, ``args.in_flight`` tasks: (ops/s, CPU us/op)."""
    stop = False
    counts = [0] * args.in_flight
    is_get = args.workload == "get"

    async def worker(i: int) -> None:
        n, done = i, 0
        while not stop:
            if is_get:
                await client.get(key(n))
            else:
                await client.put(key(n), VALUE)
            n += args.in_flight
            done += 1
        counts[i] = done

    cpu0, t0 = time.process_time(), time.perf_counter()
    tasks = [asyncio.ensure_future(worker(i)) for i in range(args.in_flight)]
    await asyncio.sleep(args.seconds)
    stop = True
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    total = sum(counts)
    return total / elapsed, (time.process_time() - cpu0) / total * 1e6


def _kv_round_threaded(client: ThreadedClient, args: argparse.Namespace
                       ) -> Tuple[float, float]:
    """One timed round of gets or puts, ``args.in_flight`` threads: (ops/s, CPU us/op)."""
    stop = threading.Event()
    counts = [0] * args.in_flight
    barrier = threading.Barrier(args.in_flight + 1)
    is_get = args.workload == "get"

    def worker(i: int) -> None:
        n, done = i, 0
        barrier.wait()
        while not stop.is_set():
            if is_get:
                client.get(key(n))
            else:
                client.put(key(n), VALUE)
            n += args.in_flight
            done += 1
        counts[i] = done

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(args.in_flight)]
    for w in workers:
        w.start()
    barrier.wait()
    cpu0, t0 = time.process_time(), time.perf_counter()
    time.sleep(args.seconds)
    stop.set()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    total = sum(counts)
    return total / elapsed, (time.process_time() - cpu0) / total * 1e6


async def run_async(args: argparse.Namespace) -> Dict[str, Any]:
    client = AsyncClient(args.client, args.endpoint, not args.no_batching)
    await client.open()
    out: Dict[str, Any] = {"client": args.client, "version": client.version}
    try:
        if args.workload in ("get", "put"):
            rates, cpus = [], []
            for _ in range(args.rounds):
                rate, cpu = await _kv_round_async(client, args)
                rates.append(rate)
                cpus.append(cpu)
            out.update(rate=statistics.median(rates), rates=rates,
                       cpu_us=statistics.median(cpus))
        elif args.workload == "bulk":
            t0 = time.perf_counter()
            await client.bulk(args.count)
            out.update(rate=args.count / (time.perf_counter() - t0))
        elif args.workload == "prefix":
            times = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                n = await client.prefix()
                times.append(time.perf_counter() - t0)
            out.update(rate=n / statistics.median(times), keys=n)
        elif args.workload == "watch":
            rates = []
            for r in range(args.rounds):
                prefix = args.prefix.encode() + b"%d/" % r
                elapsed = await client.watch(args.in_flight, args.count, prefix)
                rates.append(args.in_flight * args.count / elapsed)
            out.update(rate=statistics.median(rates), rates=rates)
    finally:
        await client.close()
    return out


def run_threaded(args: argparse.Namespace) -> Dict[str, Any]:
    client = ThreadedClient(args.client, args.endpoint, not args.no_batching)
    out: Dict[str, Any] = {"client": args.client, "version": client.version}
    try:
        if args.workload in ("get", "put"):
            rates, cpus = [], []
            for _ in range(args.rounds):
                rate, cpu = _kv_round_threaded(client, args)
                rates.append(rate)
                cpus.append(cpu)
            out.update(rate=statistics.median(rates), rates=rates,
                       cpu_us=statistics.median(cpus))
        elif args.workload == "bulk":
            t0 = time.perf_counter()
            client.bulk(args.count)
            out.update(rate=args.count / (time.perf_counter() - t0))
        elif args.workload == "prefix":
            times = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                n = client.prefix()
                times.append(time.perf_counter() - t0)
            out.update(rate=n / statistics.median(times), keys=n)
        elif args.workload == "watch":
            rates = []
            for r in range(args.rounds):
                prefix = args.prefix.encode() + b"%d/" % r
                elapsed = client.watch(args.in_flight, args.count, prefix)
                rates.append(args.in_flight * args.count / elapsed)
            out.update(rate=statistics.median(rates), rates=rates)
    finally:
        client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--client", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--workload", required=True,
                        choices=("get", "put", "bulk", "prefix", "watch"))
    parser.add_argument("--in-flight", type=int, default=1,
                        help="get/put: calls in flight; watch: subscribers")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=100_000,
                        help="bulk: keys; watch: events written")
    parser.add_argument("--no-batching", action="store_true",
                        help="this client: read batching off")
    parser.add_argument("--prefix", default="/bench/watch/",
                        help="watch: the prefix (round r watches PREFIX + 'r/')")
    args = parser.parse_args()
    if args.client in ASYNC_CLIENTS:
        result = asyncio.run(run_async(args))
    else:
        result = run_threaded(args)
    print(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)  # some peers leave threads behind that would hold up the exit


if __name__ == "__main__":
    main()
