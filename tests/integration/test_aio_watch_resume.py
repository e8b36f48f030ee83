"""Asyncio watches against real failures: a server killed and restarted, a cluster
member SIGKILLed or frozen under the stream, a quorum lost (require-leader), a
compaction while the stream was down, fragmented responses, stale tokens, refused
watches and clusters that cannot be reached.

Each test runs its own etcd (the session server and cluster stay untouched). The
reference for "every event exactly once, in order" is the store's own history, read
back with a fresh watch from the first written revision.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from typing import Any, Awaitable, Callable, List, Optional, Tuple

import grpc
import pytest
from _aio_watch_support import Seen, run, take, wait_until

import etcd3
import etcd3.aio
from etcd3 import exceptions
from etcd3.aio import _watch_engine
from etcd3.events import Event, WatchResponse
from etcd3.testing import EtcdCluster, EtcdServer
from etcd3.testing.tls import TLSConfig

Client = etcd3.aio.Etcd3Client
Record = Tuple[str, bytes, bytes, int]
WRITES = 150


def record(event: Event) -> Record:
    return (type(event).__name__, event.key, event.value, event.mod_revision)


def records(seen: Seen) -> List[Record]:
    return [record(e) for e in seen.events]


class Writer:
    """Puts ``/res/0`` .. ``/res/{count-1}`` with its own client, retrying through
    outages; ``halfway`` is set a third of the way."""

    def __init__(self, client: Client, count: int) -> None:
        self.client, self.count = client, count
        self.halfway = asyncio.Event()
        self.first_revision = 0
        self.last_revision = 0
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 40
        for i in range(self.count):
            if i == self.count // 3:
                self.halfway.set()
            while True:
                try:
                    response = await self.client.put(f"/res/{i}", f"v{i}")
                    break
                except exceptions.Etcd3Exception:
                    if loop.time() > deadline:
                        raise
                    await asyncio.sleep(0.05)
            revision = response.header.revision
            self.first_revision = self.first_revision or revision
            self.last_revision = max(self.last_revision, revision)
            await asyncio.sleep(0.002)


async def history(client: Client, first: int, last: int) -> List[Record]:
    """The store's events on /res/ from ``first`` to ``last``, read with a fresh watch."""
    seen = Seen()
    watch_id = await client.add_watch_prefix_callback("/res/", seen, start_revision=first)
    await seen.wait_for(lambda s: bool(s.events) and s.events[-1].mod_revision >= last)
    await client.cancel_watch(watch_id)
    return records(seen)


async def check_exactly_once(seen: Seen, writer: Writer, client: Client) -> None:
    await asyncio.wait_for(writer.task, 60)
    await seen.wait_for(lambda s: bool(s.events)
                        and s.events[-1].mod_revision >= writer.last_revision)
    assert seen.errors == []
    expected = await history(client, writer.first_revision, writer.last_revision)
    assert records(seen) == expected
    assert {key for _, key, _, _ in records(seen)} == {f"/res/{i}".encode()
                                                       for i in range(writer.count)}


async def in_thread(fn: Any, *args: Any) -> Any:
    """Run a blocking launcher call (kill, start, pause...) off the loop."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens here once closed


def nothing_registered(client: Client) -> None:
    engine = client._watch_engine()
    assert engine._subs == {} and engine._watches == {} and engine._shared == {}


# -- resume ------------------------------------------------------------------------------


def test_server_killed_and_restarted_mid_stream() -> None:
    with EtcdServer() as server:
        async def body(client: Client) -> None:
            by_callback = Seen()
            await client.add_watch_prefix_callback("/res/", by_callback)
            events, cancel = await client.watch_prefix("/res/", prev_kv=True)
            by_iterator: List[Record] = []

            async def read() -> None:
                async for event in events:
                    by_iterator.append(record(event))

            reader = asyncio.ensure_future(read())
            async with etcd3.aio.client(endpoints=[server.endpoint]) as writer_client:
                writer = Writer(writer_client, WRITES)
                await asyncio.wait_for(writer.halfway.wait(), 20)
                await in_thread(server.kill)
                await asyncio.sleep(0.3)
                await in_thread(server.start)
                await check_exactly_once(by_callback, writer, client)
            await wait_until(lambda: len(by_iterator) == len(by_callback.events))
            await cancel()
            await asyncio.wait_for(reader, 5)
            assert by_iterator == records(by_callback)

        run(body, endpoints=[server.endpoint])


def test_cluster_member_under_the_stream_killed_or_frozen() -> None:
    with EtcdCluster(3) as cluster:
        async def body(client: Client) -> None:
            seen = Seen()
            await client.add_watch_prefix_callback("/res/", seen)
            engine = client._watch_engine()
            await wait_until(lambda: engine.endpoint is not None)
            victim = next(m for m in cluster.members if m.endpoint == engine.endpoint)
            async with etcd3.aio.client(endpoints=cluster.endpoints) as writer_client:
                writer = Writer(writer_client, WRITES)
                await asyncio.wait_for(writer.halfway.wait(), 20)
                await in_thread(victim.kill)  # SIGKILL
                await check_exactly_once(seen, writer, client)
            assert engine.endpoint != victim.endpoint
            await in_thread(victim.start)
            # A frozen member: the TCP connection stays up but nothing answers.
            frozen = next(m for m in cluster.members if m.endpoint == engine.endpoint)
            seen.items.clear()
            await in_thread(frozen.pause)
            try:
                others = [m.endpoint for m in cluster.members if m is not frozen]
                async with etcd3.aio.client(endpoints=others) as other_writer:
                    writer = Writer(other_writer, 20)
                    await asyncio.wait_for(writer.task, 60)
                await check_exactly_once(seen, writer, client)
                assert engine.endpoint != frozen.endpoint
            finally:
                await in_thread(frozen.resume)

        run(body, endpoints=cluster.endpoints, limit=150)


def test_member_without_a_leader_is_left_and_events_arrive_once() -> None:
    # require-leader (sent by the transport on every watch stream): a member that
    # lost its quorum cancels the stream instead of holding it silently, so the
    # watch moves on and, once a leader is back, gets every event once.
    with EtcdCluster(3) as cluster:
        async def body(client: Client) -> None:
            seen = Seen()
            await client.add_watch_prefix_callback("/res/", seen)
            engine = client._watch_engine()
            await wait_until(lambda: engine.endpoint is not None)
            first = (await client.put("/res/before", "1")).header.revision
            await seen.wait_for(lambda s: len(s.events) == 1)
            kept = next(m for m in cluster.members if m.endpoint == engine.endpoint)
            others = [m for m in cluster.members if m is not kept]
            for member in others:
                await in_thread(member.kill)
            # No leader: the kept member ends the stream ("no leader"); the watch
            # keeps trying all three.
            await wait_until(lambda: engine.endpoint is None, timeout=30)
            for member in others:
                await in_thread(member.start)
            async with etcd3.aio.client(endpoints=cluster.endpoints, timeout=10) as writer:
                last = 0
                for i in range(20):
                    last = (await _put_retrying(writer, f"/res/{i}", str(i))).header.revision
            await seen.wait_for(lambda s: s.events[-1].mod_revision >= last, timeout=60)
            assert records(seen) == await history(client, first, last)
            assert seen.errors == []

        run(body, endpoints=cluster.endpoints, limit=150)


async def _put_retrying(client: Client, key: str, value: str) -> Any:
    for _ in range(200):
        try:
            return await client.put(key, value)
        except exceptions.Etcd3Exception:
            await asyncio.sleep(0.1)
    return await client.put(key, value)


def test_resume_after_compaction_fails_only_the_stale_watch() -> None:
    args = ["--experimental-watch-progress-notify-interval=100ms"]
    with EtcdServer(extra_args=args) as server:
        async def body(client: Client) -> None:
            stale, with_progress, fresh = Seen(), Seen(), Seen()
            await client.add_watch_callback("/quiet", stale)
            await client.add_watch_callback("/quiet", with_progress, progress_notify=True)
            for i in range(5):
                await client.put("/busy", str(i))
            revision = (await client.put("/busy", "last")).header.revision
            await client.compact(revision)
            await client.add_watch_callback("/quiet", fresh, start_revision=revision + 1)
            engine = client._watch_engine()
            # The progress notification moves the resume point past the compaction.
            await wait_until(lambda: all(w.next_rev > revision
                                         for w in engine._watches.values()
                                         if w.spec.progress_notify))
            await in_thread(server.kill)
            await in_thread(server.start)
            await stale.wait_for(lambda s: bool(s.errors))
            (error,) = stale.errors
            assert isinstance(error, exceptions.RevisionCompactedError)
            assert error.compacted_revision == revision
            await client.put("/quiet", "after")
            for seen in (with_progress, fresh):
                await seen.wait_for(lambda s: bool(s.events))
                assert [(e.key, e.value) for e in seen.events] == [(b"/quiet", b"after")]
                assert seen.errors == []
            assert stale.events == []

        run(body, endpoints=[server.endpoint])


def test_fragmented_responses_are_reassembled() -> None:
    with EtcdServer(extra_args=["--max-request-bytes=20000"]) as server:
        async def body(client: Client) -> None:
            value = b"x" * 16000
            revisions = [(await client.put(f"/frag/{i:02d}", value)).header.revision
                         for i in range(40)]
            responses, cancel = await client.watch_prefix_response(
                "/frag/", start_revision=revisions[0], fragment=True)
            (response,) = await take(responses, 1)
            await cancel()
            assert [e.mod_revision for e in response.events] == revisions
            assert all(e.value == value for e in response.events)

        run(body, endpoints=[server.endpoint])


@pytest.mark.parametrize("coalesce", [True, False])
def test_joined_watch_resumes_too(coalesce: bool) -> None:
    with EtcdServer() as server:
        async def body(client: Client) -> None:
            client._watch_coalesce = coalesce
            first, second = Seen(), Seen()
            await client.add_watch_prefix_callback("/res/", first)
            await client.put("/res/a", "1")
            await first.wait_for(lambda s: len(s.events) == 1)
            await client.add_watch_prefix_callback("/res/", second)
            assert len(client._watch_engine()._watches) == (1 if coalesce else 2)
            await in_thread(server.kill)
            await in_thread(server.start)
            await client.put("/res/b", "2")
            for seen, expected in ((first, [b"/res/a", b"/res/b"]), (second, [b"/res/b"])):
                count = len(expected)
                await seen.wait_for(lambda s, count=count: len(s.events) == count)
                assert [e.key for e in seen.events] == expected

        run(body, endpoints=[server.endpoint])


# -- auth --------------------------------------------------------------------------------


def _enable_auth(server: EtcdServer, *extra: Tuple[str, ...]) -> None:
    for args in (("user", "add", "root:rootpw"), ("role", "add", "root"),
                 ("user", "grant-role", "root", "root"), ("role", "add", "reader"),
                 ("role", "grant-permission", "reader", "read", "/res/", "--prefix"),
                 ("user", "add", "limited:pw"), ("user", "grant-role", "limited", "reader"),
                 *extra, ("auth", "enable")):
        server.etcdctl(*args)


def test_stale_token_is_refreshed_and_watches_resume() -> None:
    with EtcdServer(extra_args=["--auth-token-ttl=1"]) as server:
        _enable_auth(server)

        async def body(client: Client) -> None:
            async with etcd3.aio.client(endpoints=[server.endpoint], user="limited",
                                        password="pw") as limited:
                denied = Seen()
                with pytest.raises(exceptions.PermissionDeniedError) as info:
                    await limited.add_watch_callback("/secret", denied)
                assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
                assert denied.items == []
                nothing_registered(limited)
                allowed = Seen()
                await limited.add_watch_prefix_callback("/res/", allowed)
                seen = Seen()
                await client.add_watch_prefix_callback("/res/", seen)
                await client.put("/res/a", "1")
                await seen.wait_for(lambda s: len(s.events) == 1)
                provider = client._transport.token_provider
                assert provider is not None
                stale = provider.cached(server.endpoint)
                await asyncio.sleep(2.5)
                late = Seen()
                await client.add_watch_prefix_callback("/res/", late, prev_kv=True)
                assert provider.cached(server.endpoint) != stale
                await client.put("/res/b", "2")
                await late.wait_for(lambda s: len(s.events) == 1)
                await seen.wait_for(lambda s: len(s.events) == 2)
                assert [e.key for e in seen.events] == [b"/res/a", b"/res/b"]
                assert seen.errors == [] and late.errors == []
                await allowed.wait_for(lambda s: len(s.events) == 2)

        run(body, endpoints=[server.endpoint], user="root", password="rootpw")


def _every_watch_method(client: Client, key: str, received: List[Any]
                        ) -> List[Callable[[], Awaitable[Any]]]:
    return [
        lambda: client.watch(key),
        lambda: client.watch_prefix(key),
        lambda: client.watch_response(key),
        lambda: client.watch_prefix_response(key),
        lambda: client.add_watch_callback(key, received.append),
        lambda: client.add_watch_prefix_callback(key, received.append),
        lambda: client.watch_once(key, timeout=5),
        lambda: client.watch_prefix_once_response(key, timeout=5),
    ]


def test_wrong_password_and_refusals_raise_from_every_watch_method() -> None:
    with EtcdServer() as server:
        _enable_auth(server)

        async def body(client: Client) -> None:
            received: List[Any] = []
            for user, password, key, error in (
                    ("limited", "wrong", "/res/x", exceptions.AuthenticationFailedError),
                    ("limited", "pw", "/secret/x", exceptions.PermissionDeniedError)):
                async with etcd3.aio.client(endpoints=[server.endpoint], user=user,
                                            password=password, timeout=10) as other:
                    for start in _every_watch_method(other, key, received):
                        with pytest.raises(error):
                            await start()
                        nothing_registered(other)
            assert received == []
            async with etcd3.aio.client(endpoints=[server.endpoint], timeout=10) as anon:
                with pytest.raises(exceptions.AuthError, match="pass user= and password="):
                    await anon.watch("/res/a")
                nothing_registered(anon)

        run(body, endpoints=[server.endpoint], user="root", password="rootpw")


# -- unreachable clusters ----------------------------------------------------------------


def test_watch_on_a_closed_port_raises_connection_failed_within_the_timeout() -> None:
    port = _closed_port()

    async def body(client: Client) -> None:
        with pytest.raises(exceptions.ConnectionFailedError) as info:
            await client.watch("/k")
        text = str(info.value)
        assert f"127.0.0.1:{port}" in text and "Connection refused" in text, text
        assert "b'/k'" in text and "not created" in text, text
        nothing_registered(client)
        with pytest.raises(exceptions.ConnectionFailedError):
            await client.watch_once("/k", timeout=1)
        nothing_registered(client)
        with pytest.raises(ValueError, match="unreachable_timeout"):
            await client.watch("/k", unreachable_timeout=-1)

    run(body, endpoints=[f"127.0.0.1:{port}"], limit=30, timeout=1.5)


def test_watch_without_timeout_ends_at_the_unreachable_limit() -> None:
    port = _closed_port()

    async def body(client: Client) -> None:
        with pytest.raises(exceptions.ConnectionFailedError) as info:
            await client.watch("/k")
        assert "unreachable_timeout=1 s" in str(info.value)
        assert f"127.0.0.1:{port}" in str(info.value)
        nothing_registered(client)

    run(body, endpoints=[f"127.0.0.1:{port}"], limit=30, watch_unreachable_timeout=1)


def test_killed_server_warns_and_ends_limited_watches(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_watch_engine, "_UNREACHABLE_WARN_AFTER", 1.0)
    caplog.set_level(logging.INFO, logger="etcd3")
    with EtcdServer() as server:
        async def body(client: Client) -> None:
            limited, cancel = await client.watch("/u/k")
            patient = Seen()
            await client.add_watch_callback("/u/k", patient, unreachable_timeout=None)
            limited_callback = Seen()
            await client.add_watch_prefix_callback("/u/", limited_callback)
            revision = (await client.put("/u/k", "1")).header.revision
            assert (await limited.__anext__()).value == b"1"
            await in_thread(server.kill)
            with pytest.raises(exceptions.ConnectionFailedError) as info:
                await asyncio.wait_for(limited.__anext__(), 30)
            text = str(info.value)
            assert server.endpoint in text and "unreachable_timeout=3 s" in text, text
            assert f"start_revision={revision + 1}" in text, text
            assert re.search(r"could be reached for \d+\.\d s", text), text
            await limited_callback.wait_for(lambda s: any(
                isinstance(i, exceptions.ConnectionFailedError) for i in s.items))
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                        and "no etcd member has answered the watch stream"
                        in r.getMessage()]
            assert len(warnings) == 1 and server.endpoint in warnings[0].getMessage()
            ended = [r.getMessage() for r in caplog.records
                     if "ending 2 watch(es)" in r.getMessage()]
            assert len(ended) == 1 and server.endpoint in ended[0], caplog.text
            await in_thread(server.start)
            await client.put("/u/k", "2")
            await patient.wait_for(lambda s: len(s.items) == 2)
            assert [r.events[0].value for r in patient.items
                    if isinstance(r, WatchResponse)] == [b"1", b"2"]
            assert any(r.levelno == logging.INFO and "watches resumed" in r.getMessage()
                       for r in caplog.records)
            assert len(client._watch_engine()._subs) == 1  # only the patient one
            await cancel()

        run(body, endpoints=[server.endpoint], limit=60, watch_unreachable_timeout=3,
            timeout=5)


def test_waiting_for_a_member_forever_is_visible_and_close_ends_it(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_watch_engine, "_UNREACHABLE_WARN_AFTER", 1.0)
    port = _closed_port()

    async def body() -> Optional[BaseException]:
        client = etcd3.aio.client(host="127.0.0.1", port=port)
        pending = asyncio.ensure_future(client.watch("/k"))
        for _ in range(300):
            if any("no etcd member has answered the watch stream" in r.getMessage()
                   for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        assert not pending.done()  # still trying (no limit by default)
        await client.close()
        return await asyncio.wait_for(asyncio.gather(pending, return_exceptions=True),
                                      5)

    with caplog.at_level(logging.WARNING, logger="etcd3"):
        (outcome,) = asyncio.run(body())  # type: ignore[misc]
    assert isinstance(outcome, exceptions.ClientClosedError)
    (record_,) = [r for r in caplog.records
                  if "no etcd member has answered the watch stream" in r.getMessage()]
    assert f"127.0.0.1:{port}" in record_.getMessage()


# -- TLS misconfiguration ----------------------------------------------------------------


def test_tls_mismatch_raises_from_watch_instead_of_resuming_forever(
        etcd_server: EtcdServer) -> None:
    with TLSConfig(client_cert_auth=False) as tls:
        async def to_plain_port(client: Client) -> None:
            with pytest.raises(exceptions.ConnectionFailedError) as info:
                await client.watch("/k")
            assert "is the server plain-text?" in str(info.value), str(info.value)
            nothing_registered(client)

        run(to_plain_port, endpoints=[f"https://{etcd_server.host}:{etcd_server.port}"],
            ca_cert=tls.ca_cert, timeout=5, limit=30)

        with EtcdServer(tls=tls) as server:
            async def to_tls_port(client: Client) -> None:
                with pytest.raises(exceptions.ConnectionFailedError) as info:
                    await client.watch("/k")
                assert "give ca_cert or an https:// endpoint" in str(info.value), \
                    str(info.value)
                nothing_registered(client)

            run(to_tls_port, endpoints=[f"{server.host}:{server.port}"], timeout=2,
                limit=30)
