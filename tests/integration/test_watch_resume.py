"""Watch resume against real failures: crash + restart, member loss, compaction, fragments.

Each test runs its own etcd (the session server and cluster stay untouched). The
reference for "every event exactly once, in order" is the store's own history, read
back with a fresh watch from the first written revision.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, List, Optional, Tuple

import pytest

import etcd3
from etcd3 import exceptions
from etcd3.events import Event, WatchResponse
from etcd3.testing import EtcdCluster, EtcdServer

Record = Tuple[str, bytes, bytes, int]
WRITES = 150


def record(event: Event) -> Record:
    return (type(event).__name__, event.key, event.value, event.mod_revision)


class Writer(threading.Thread):
    """Puts ``/res/0`` .. ``/res/{count-1}``, retrying through outages."""

    def __init__(self, client: Any, count: int, halfway: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client, self.count, self.halfway = client, count, halfway
        self.first_revision = 0
        self.last_revision = 0
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        deadline = time.monotonic() + 40
        try:
            for i in range(self.count):
                if i == self.count // 3:
                    self.halfway.set()
                while True:
                    try:
                        revision = self.client.put(f"/res/{i}", f"v{i}").header.revision
                        break
                    except exceptions.Etcd3Exception:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                self.first_revision = self.first_revision or revision
                self.last_revision = max(self.last_revision, revision)
                time.sleep(0.002)
        except BaseException as error:  # reported by the test
            self.error = error


class Seen:
    """Events collected by a callback watch, in delivery order."""

    def __init__(self) -> None:
        self.records: List[Record] = []
        self.errors: List[BaseException] = []
        self.cond = threading.Condition()

    def __call__(self, item: Any) -> None:
        with self.cond:
            if isinstance(item, WatchResponse):
                self.records.extend(record(e) for e in item.events)
            else:
                self.errors.append(item)
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[Seen], bool], timeout: float = 30) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self), timeout), (
                self.records[-3:], self.errors)


def history(client: Any, first: int, last: int) -> List[Record]:
    """The store's events on /res/ from ``first`` to ``last``, read with a fresh watch."""
    seen = Seen()
    watch_id = client.add_watch_prefix_callback("/res/", seen, start_revision=first)
    seen.wait_for(lambda s: bool(s.records) and s.records[-1][3] >= last)
    client.cancel_watch(watch_id)
    return seen.records


def check_exactly_once(seen: Seen, writer: Writer, client: Any) -> None:
    writer.join(60)
    assert writer.error is None, writer.error
    seen.wait_for(lambda s: bool(s.records) and s.records[-1][3] >= writer.last_revision)
    assert seen.errors == []
    expected = history(client, writer.first_revision, writer.last_revision)
    assert seen.records == expected
    assert {key for _, key, _, _ in seen.records} == {f"/res/{i}".encode()
                                                      for i in range(writer.count)}


def wait_until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.mark.drivers("threaded", "aio")
def test_server_killed_and_restarted_mid_stream(connect: Any) -> None:
    with EtcdServer() as server:
        client = connect(host=server.host, port=server.port)
        writer_client = connect(host=server.host, port=server.port)
        try:
            by_callback = Seen()
            client.add_watch_prefix_callback("/res/", by_callback)
            events, cancel = client.watch_prefix("/res/", prev_kv=True)
            by_iterator: List[Record] = []
            reader = threading.Thread(
                target=lambda: by_iterator.extend(record(e) for e in events), daemon=True)
            reader.start()
            halfway = threading.Event()
            writer = Writer(writer_client, WRITES, halfway)
            writer.start()
            assert halfway.wait(20)
            server.kill()
            time.sleep(0.3)
            server.start()
            check_exactly_once(by_callback, writer, client)
            wait_until(lambda: len(by_iterator) == len(by_callback.records))
            cancel()
            reader.join(5)
            assert by_iterator == by_callback.records
        finally:
            writer_client.close()
            client.close()


def watch_engine(client: Any) -> Any:
    """The client's watch engine (threaded, or the asyncio one behind the bridge);
    only its ``endpoint`` (the member under the stream) is read."""
    aio_client = getattr(client, "aio_client", None)
    if aio_client is None:
        return client._watch_engine()
    return aio_client._engines._by_name["watch"]


@pytest.mark.drivers("threaded", "aio")
def test_cluster_member_under_the_stream_killed_or_frozen(connect: Any) -> None:
    with EtcdCluster(3) as cluster:
        client = connect(endpoints=cluster.endpoints)
        writer_client = connect(endpoints=cluster.endpoints)
        try:
            seen = Seen()
            client.add_watch_prefix_callback("/res/", seen)
            engine = watch_engine(client)
            victim = next(m for m in cluster.members if m.endpoint == engine.endpoint)
            halfway = threading.Event()
            writer = Writer(writer_client, WRITES, halfway)
            writer.start()
            assert halfway.wait(20)
            victim.kill()
            check_exactly_once(seen, writer, client)
            assert engine.endpoint != victim.endpoint
            victim.start()
            # A frozen member: the TCP connection stays up but nothing answers.
            frozen = next(m for m in cluster.members if m.endpoint == engine.endpoint)
            with seen.cond:
                seen.records.clear()
            frozen.pause()
            try:
                others = [m.endpoint for m in cluster.members if m is not frozen]
                with connect(endpoints=others) as other_writer:
                    writer = Writer(other_writer, 20, threading.Event())
                    writer.start()
                    writer.join(60)
                check_exactly_once(seen, writer, client)
            finally:
                frozen.resume()
        finally:
            writer_client.close()
            client.close()


def test_resume_after_compaction_fails_only_the_stale_watch() -> None:
    args = ["--experimental-watch-progress-notify-interval=100ms"]
    with EtcdServer(extra_args=args) as server:
        client = etcd3.client(host=server.host, port=server.port)
        try:
            stale, with_progress, fresh = Seen(), Seen(), Seen()
            client.add_watch_callback("/quiet", stale)
            client.add_watch_callback("/quiet", with_progress, progress_notify=True)
            for i in range(5):
                client.put("/busy", str(i))
            revision = client.put("/busy", "last").header.revision
            client.compact(revision)
            client.add_watch_callback("/quiet", fresh, start_revision=revision + 1)
            # The progress notification moves the resume point past the compaction.
            engine = client._watch_engine()
            wait_until(lambda: all(w.next_rev > revision for w in engine._watches.values()
                                   if w.spec.progress_notify))
            server.kill()
            server.start()
            stale.wait_for(lambda s: bool(s.errors))
            (error,) = stale.errors
            assert isinstance(error, exceptions.RevisionCompactedError)
            assert error.compacted_revision == revision
            client.put("/quiet", "after")
            for seen in (with_progress, fresh):
                seen.wait_for(lambda s: bool(s.records))
                assert [r[1:3] for r in seen.records] == [(b"/quiet", b"after")]
                assert seen.errors == []
            assert stale.records == []
        finally:
            client.close()


@pytest.mark.drivers("threaded", "aio")
def test_fragmented_responses_are_reassembled(connect: Any) -> None:
    # etcd fragments responses above --max-request-bytes + 512 KiB: a replay of
    # 40 x 16 KB events comes in several fragments and must arrive as one response.
    with EtcdServer(extra_args=["--max-request-bytes=20000"]) as server:
        client = connect(host=server.host, port=server.port)
        try:
            value = b"x" * 16000
            revisions = [client.put(f"/frag/{i:02d}", value).header.revision
                         for i in range(40)]
            responses, cancel = client.watch_prefix_response(
                "/frag/", start_revision=revisions[0], fragment=True)
            timer = threading.Timer(10, cancel)
            timer.start()
            response = next(iter(responses))
            timer.cancel()
            cancel()
            assert [e.mod_revision for e in response.events] == revisions
            assert all(e.value == value for e in response.events)
        finally:
            client.close()


@pytest.mark.drivers("threaded", "aio")
@pytest.mark.parametrize("coalesce", [True, False])
def test_joined_watch_resumes_too(coalesce: bool, connect: Any) -> None:
    with EtcdServer() as server:
        client = connect(host=server.host, port=server.port)
        client._watch_coalesce = coalesce
        try:
            first, second = Seen(), Seen()
            client.add_watch_prefix_callback("/res/", first)
            client.put("/res/a", "1")
            first.wait_for(lambda s: len(s.records) == 1)
            client.add_watch_prefix_callback("/res/", second)
            server.kill()
            server.start()
            client.put("/res/b", "2")
            for seen, expected in ((first, [b"/res/a", b"/res/b"]), (second, [b"/res/b"])):
                count = len(expected)
                seen.wait_for(lambda s, count=count: len(s.records) == count)
                assert [r[1] for r in seen.records] == expected
        finally:
            client.close()


def test_stale_token_is_refreshed_and_watches_resume() -> None:
    # A simple token idle for --auth-token-ttl expires; etcd checks the stream's token
    # on each create, so the next watch on the open stream is refused until the
    # engine re-authenticates and reopens the stream (resuming the older watch).
    with EtcdServer(extra_args=["--auth-token-ttl=1"]) as server:
        for args in (("user", "add", "root:rootpw"), ("role", "add", "root"),
                     ("user", "grant-role", "root", "root"), ("role", "add", "reader"),
                     ("role", "grant-permission", "reader", "read", "/res/", "--prefix"),
                     ("user", "add", "limited:pw"), ("user", "grant-role", "limited",
                                                     "reader"), ("auth", "enable")):
            server.etcdctl(*args)
        client = etcd3.client(host=server.host, port=server.port, user="root",
                              password="rootpw")
        limited = etcd3.client(host=server.host, port=server.port, user="limited",
                               password="pw")
        try:
            denied = Seen()
            # A create etcd refuses raises from add_watch_callback itself (after one
            # retry with a fresh token, in case the token was the reason).
            with pytest.raises(exceptions.PermissionDeniedError):
                limited.add_watch_callback("/secret", denied)
            assert denied.records == [] and denied.errors == []
            allowed = Seen()
            limited.add_watch_prefix_callback("/res/", allowed)
            seen = Seen()
            client.add_watch_prefix_callback("/res/", seen)
            client.put("/res/a", "1")
            seen.wait_for(lambda s: len(s.records) == 1)
            stale = client._transport.token_provider.cached(server.endpoint)
            time.sleep(2.5)
            late = Seen()
            client.add_watch_prefix_callback("/res/", late, prev_kv=True)
            assert client._transport.token_provider.cached(server.endpoint) != stale
            client.put("/res/b", "2")
            late.wait_for(lambda s: len(s.records) == 1)
            seen.wait_for(lambda s: len(s.records) == 2)
            assert [r[1] for r in seen.records] == [b"/res/a", b"/res/b"]
            assert seen.errors == [] and late.errors == []
            allowed.wait_for(lambda s: len(s.records) == 2)
        finally:
            limited.close()
            client.close()
