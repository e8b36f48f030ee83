"""An asyncio server-sent-events server fanning one etcd prefix out to many clients.

Typical of a config or presence service: every browser or service that connects to
``GET /events`` receives each change under ``/sse/`` as an SSE message. However many
subscribers connect, the server holds ONE ``etcd3.aio`` watch (one etcd watcher on
one stream, read from etcd's own ``/metrics``); a hub task reads it with
``async for`` and copies each event into one queue per subscriber. A subscriber
that falls more than ``--backlog`` events behind is disconnected rather than
allowed to hold the others back or grow the server's memory without bound.

Plain asyncio, no web framework: the script starts the server, connects
``--subscribers`` HTTP clients made with ``asyncio.open_connection``, writes
``--events`` keys and checks that every subscriber received every event exactly
once, in order. When it runs its own etcd it kills and restarts it mid-stream: the
client resumes the watch from the revision after the last event delivered, so the
subscribers see no gap and no repeat. Run:  python examples/aio_fanout_server.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import urllib.request
from typing import Any, Dict, List, Optional, Set

from _support import etcd_server, show_etcd3_logs

import etcd3
import etcd3.aio
from etcd3.events import DeleteEvent

PREFIX = "/sse/"


def sse_message(event: Any) -> bytes:
    """One SSE message for a watch event: ``id`` is its revision, ``data`` JSON."""
    data = json.dumps({
        "type": "delete" if isinstance(event, DeleteEvent) else "put",
        "key": event.key.decode(),
        "value": event.value.decode(),
    })
    return f"id: {event.mod_revision}\nevent: change\ndata: {data}\n\n".encode()


class Subscriber:
    """One connected client: the messages waiting for it (None: disconnect)."""

    def __init__(self, backlog: int) -> None:
        self.queue: asyncio.Queue[Optional[bytes]] = asyncio.Queue()
        self.backlog = backlog

    def offer(self, message: bytes) -> bool:
        """Queue ``message``; False (and a disconnect queued) when it is too far behind."""
        if self.queue.qsize() >= self.backlog:
            self.queue.put_nowait(None)
            return False
        self.queue.put_nowait(message)
        return True


class Hub:
    """ONE etcd watch on ``prefix``, copied to every subscriber's queue."""

    def __init__(self, etcd: etcd3.aio.Etcd3Client, prefix: str, backlog: int) -> None:
        self.etcd, self.prefix, self.backlog = etcd, prefix, backlog
        self.subscribers: Set[Subscriber] = set()
        self._pump: Optional[asyncio.Task[None]] = None
        self._cancel: Any = None

    async def start(self) -> None:
        # Returns once etcd confirmed the watch: every later change is delivered.
        events, self._cancel = await self.etcd.watch_prefix(self.prefix)
        self._pump = asyncio.create_task(self._forward(events))

    async def _forward(self, events: Any) -> None:
        try:
            async for event in events:
                message = sse_message(event)
                for subscriber in list(self.subscribers):
                    if not subscriber.offer(message):
                        print("a subscriber fell too far behind: disconnected")
                        self.subscribers.discard(subscriber)
        except etcd3.exceptions.Etcd3Exception as error:  # e.g. history compacted
            print(f"the watch ended: {error!r}")
        finally:
            for subscriber in self.subscribers:  # end every stream
                subscriber.queue.put_nowait(None)
            self.subscribers.clear()

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber(self.backlog)
        self.subscribers.add(subscriber)
        return subscriber

    async def stop(self) -> None:
        if self._cancel is not None:
            await self._cancel()  # the async for above ends
        if self._pump is not None:
            await self._pump


async def handle(hub: Hub, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    """Serve one HTTP connection: ``GET /events`` streams; anything else is a 404."""
    try:
        request = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    if not request.startswith(b"GET /events "):
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        return
    subscriber = hub.subscribe()

    async def hang_up_on_eof() -> None:
        await reader.read()  # b"" once the client has gone away
        subscriber.queue.put_nowait(None)

    watching_eof = asyncio.create_task(hang_up_on_eof())
    try:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
                     b": subscribed\n\n")
        await writer.drain()
        while (message := await subscriber.queue.get()) is not None:
            writer.write(message)
            await writer.drain()  # a slow client slows only its own handler
    except ConnectionError:
        pass
    finally:
        hub.subscribers.discard(subscriber)
        watching_eof.cancel()
        writer.close()


async def sse_client(port: int, name: str, expected: int, ready: asyncio.Event,
                    received: Dict[str, List[Dict[str, str]]]) -> None:
    """An SSE client: connect, then record each message until ``expected`` arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /events HTTP/1.1\r\nHost: localhost\r\n"
                 b"Accept: text/event-stream\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    got = received[name] = []
    fields: Dict[str, str] = {}
    try:
        while len(got) < expected:
            line = (await reader.readline()).decode()
            if not line:
                break  # the server hung up
            line = line.rstrip("\n")
            if line.startswith(":"):  # a comment: the server registered us
                ready.set()
            elif line:
                field, _, value = line.partition(":")
                fields[field] = value.lstrip(" ")
            elif fields:  # a blank line ends a message
                got.append(json.loads(fields["data"]))
                fields = {}
    finally:
        writer.close()


def server_watchers(server: object) -> str:
    """etcd's own count of watchers and watch streams (its Prometheus metrics)."""
    url = getattr(server, "client_url", None)
    if not url:
        return "n/a (ETCD_ENDPOINTS set)"
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    found = dict(re.findall(r"^etcd_debugging_mvcc_(watcher|watch_stream)_total (\d+)",
                            text, re.M))
    return f"{found.get('watcher', '?')} watcher(s) on {found.get('watch_stream', '?')} stream(s)"


async def run(endpoints: List[str], server: Any, args: argparse.Namespace) -> int:
    async with etcd3.aio.client(endpoints=endpoints, timeout=10) as etcd:
        await etcd.delete_prefix(PREFIX)
        hub = Hub(etcd, PREFIX, backlog=args.backlog)
        await hub.start()
        http = await asyncio.start_server(lambda r, w: handle(hub, r, w), "127.0.0.1", 0)
        port = http.sockets[0].getsockname()[1]
        print(f"SSE server on http://127.0.0.1:{port}/events")

        received: Dict[str, List[Dict[str, str]]] = {}
        readies = [asyncio.Event() for _ in range(args.subscribers)]
        clients = [asyncio.create_task(sse_client(port, f"subscriber-{n}", args.events,
                                                 readies[n], received))
                   for n in range(args.subscribers)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
        print(f"{len(hub.subscribers)} subscribers connected; etcd serves "
              f"{await asyncio.to_thread(server_watchers, server)}")

        half = args.events // 2
        for n in range(half):
            await etcd.put(f"{PREFIX}{n:04d}", f"value {n}")
        if server is not None:
            print("killing etcd mid-stream, then restarting it...")
            await asyncio.to_thread(server.kill)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(server.start)
        for n in range(half, args.events):
            await etcd.put(f"{PREFIX}{n:04d}", f"value {n}")

        done, _ = await asyncio.wait(clients, timeout=30)
        for task in clients:
            if task not in done:
                task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        await hub.stop()
        http.close()
        await http.wait_closed()
        await etcd.delete_prefix(PREFIX)

    expected = [{"type": "put", "key": f"{PREFIX}{n:04d}", "value": f"value {n}"}
                for n in range(args.events)]
    exact = sum(1 for got in received.values() if got == expected)
    print(f"{exact} of {args.subscribers} subscribers received all {args.events} events "
          "exactly once, in order")
    return 0 if exact == args.subscribers else 1


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--backlog", type=int, default=1000,
                        help="events a subscriber may lag before it is disconnected")
    args = parser.parse_args(argv)
    show_etcd3_logs()  # shows the watch being resumed
    with etcd_server() as (endpoints, server):
        return asyncio.run(run(endpoints, server, args))


if __name__ == "__main__":
    raise SystemExit(main())
