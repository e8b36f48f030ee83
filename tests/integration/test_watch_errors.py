"""Watch errors a user can act on, against real etcd servers (issue 13, items 4 and 9).

- A watch is confirmed only when etcd confirmed it: a create etcd refuses raises
  from ``watch()`` / ``add_watch_callback()`` / ``watch_once()`` themselves, typed and
  with etcd's reason, and nothing stays registered.
- An unreachable cluster is visible: a WARNING while no member answers, a
  ``ConnectionFailedError`` past ``unreachable_timeout``, and ``watch()`` never waits
  silently for a cluster that is gone.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from typing import Any, Callable, Iterator, List

import grpc
import pytest
from _watch_support import Collector
from auth_support import client_for, enable_root_auth

import etcd3
from etcd3 import exceptions
from etcd3._sync import watch_engine as _watch_engine
from etcd3.events import WatchResponse
from etcd3.testing import EtcdServer


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens here once closed


def _nothing_registered(client: Any) -> None:
    aio_client = getattr(client, "aio_client", None)  # the asyncio driver's bridge
    if aio_client is not None:
        engine = aio_client._engines._by_name["watch"]
        assert engine._subs == {} and engine._watches == {} and engine._shared == {}
        return
    engine = client._watch_engine()
    with engine._lock:
        assert engine._subs == {} and engine._watches == {} and engine._shared == {}


def _every_watch_method(client: etcd3.Etcd3Client, key: str, received: List[Any]
                        ) -> List[Callable[[], Any]]:
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


@pytest.fixture(scope="module")
def auth_server() -> Iterator[EtcdServer]:
    with EtcdServer() as server:
        enable_root_auth(server)
        with client_for(server) as root:
            root.add_role("reader")
            root.grant_permission_role("reader", etcd3.Perms.r, "/open/", prefix=True)
            root.add_user("reader", "reader-pw")
            root.grant_role("reader", "reader")
        yield server


# -- item 9: a refused create raises from the watch method itself ----------------------


def test_permission_denied_raises_from_every_watch_method(auth_server: EtcdServer) -> None:
    received: List[Any] = []
    with client_for(auth_server, "reader", "reader-pw", timeout=10) as reader:
        for start in _every_watch_method(reader, "/secret/x", received):
            with pytest.raises(exceptions.PermissionDeniedError,
                               match=r"etcd refused the watch on b'/secret/x'") as info:
                start()
            assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
            _nothing_registered(reader)
        # The stream is fine: a permitted watch on it works as before.
        events, cancel = reader.watch_prefix("/open/")
        with client_for(auth_server) as root:
            root.put("/open/a", "1")
        assert next(events).value == b"1"
        cancel()
    assert received == []  # a callback of a refused watch is never called


def test_wrong_password_raises_from_watch(auth_server: EtcdServer) -> None:
    received: List[Any] = []
    with client_for(auth_server, "reader", "not-the-password", timeout=10) as wrong:
        for start in _every_watch_method(wrong, "/open/x", received):
            with pytest.raises(exceptions.AuthenticationFailedError):
                start()
            _nothing_registered(wrong)
    assert received == []


def test_watch_without_credentials_says_how_to_authenticate(auth_server: EtcdServer
                                                            ) -> None:
    hint = "pass user= and password="
    with etcd3.client(host=auth_server.host, port=auth_server.port, timeout=10) as anon:
        with pytest.raises(exceptions.AuthError, match=hint) as info:
            anon.watch("/open/a")  # etcd 3.4: "user name is empty"; 3.5: "permission denied"
        assert "authentication is enabled" in str(info.value)
        _nothing_registered(anon)
        with pytest.raises(exceptions.AuthError, match=hint) as info:
            anon.get("/open/a")
        assert "authentication is enabled" in str(info.value)
        with pytest.raises(exceptions.AuthError, match=hint):
            anon.put("/open/a", "v")


@pytest.mark.drivers("threaded", "aio")
def test_compacted_start_revision_fails_the_iterator_as_in_python_etcd3(
        etcd_client: etcd3.Etcd3Client) -> None:
    # etcd confirms such a watch, then cancels it with compact_revision: python-etcd3
    # raised RevisionCompactedError from next(), and so does this client.
    first = etcd_client.put("/wc/c", "1").header.revision
    last = etcd_client.put("/wc/c", "2").header.revision
    etcd_client.compact(last)
    events, cancel = etcd_client.watch("/wc/c", start_revision=first)
    with pytest.raises(exceptions.RevisionCompactedError) as info:
        next(events)
    assert info.value.compacted_revision == last
    cancel()
    _nothing_registered(etcd_client)


# -- item 4: an unreachable cluster is visible -----------------------------------------


@pytest.mark.drivers("threaded", "aio")
def test_watch_on_a_closed_port_raises_connection_failed_within_the_timeout(
        connect: Any) -> None:
    port = _closed_port()
    with connect(host="127.0.0.1", port=port, timeout=1.5) as client:
        with pytest.raises(exceptions.ConnectionFailedError) as info:
            client.watch("/k")
        text = str(info.value)
        assert f"127.0.0.1:{port}" in text and "Connection refused" in text, text
        assert "b'/k'" in text and "not created" in text, text
        _nothing_registered(client)


@pytest.mark.drivers("threaded", "aio")
def test_watch_without_timeout_ends_at_the_unreachable_limit(connect: Any) -> None:
    port = _closed_port()
    outcome: List[BaseException] = []

    def watch() -> None:
        try:
            client.watch("/k")
        except BaseException as error:  # reported below
            outcome.append(error)

    with connect(host="127.0.0.1", port=port, timeout=None,
                 watch_unreachable_timeout=1) as client:
        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        thread.join(30)
        assert not thread.is_alive(), "watch() hung with timeout=None"
        (error,) = outcome
        assert isinstance(error, exceptions.ConnectionFailedError)
        assert "unreachable_timeout=1 s" in str(error) and f"127.0.0.1:{port}" in str(error)
        _nothing_registered(client)


@pytest.mark.drivers("threaded", "aio")
def test_watch_once_on_a_closed_port_ends_at_its_own_timeout(connect: Any) -> None:
    # The client has no timeout; watch_once's own bounds the wait for a member too.
    port = _closed_port()
    outcome: List[BaseException] = []
    with connect(host="127.0.0.1", port=port, timeout=None) as client:

        def wait_once() -> None:
            try:
                client.watch_once("/k", timeout=1)
            except BaseException as error:  # reported below
                outcome.append(error)

        thread = threading.Thread(target=wait_once, daemon=True)
        thread.start()
        thread.join(30)
        assert not thread.is_alive(), "watch_once() outlived its timeout"
        (error,) = outcome
        assert isinstance(error, exceptions.ConnectionFailedError), error
        assert f"127.0.0.1:{port}" in str(error)
        _nothing_registered(client)


def test_watch_without_any_limit_waits_but_says_so(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # Default, as etcd's Go client: keep trying. But a WARNING names the endpoints,
    # and close() ends the wait.
    monkeypatch.setattr(_watch_engine, "_UNREACHABLE_WARN_AFTER", 1.0)
    caplog.set_level(logging.INFO, logger="etcd3")
    port = _closed_port()
    outcome: List[BaseException] = []
    warned = threading.Event()

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "no etcd member has answered the watch stream" in record.getMessage():
                warned.set()

    spy = Spy()
    logging.getLogger("etcd3").addHandler(spy)
    client = etcd3.client(host="127.0.0.1", port=port, timeout=None)

    def watch() -> None:
        try:
            client.watch("/k")
        except BaseException as error:  # reported below
            outcome.append(error)

    try:
        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        assert warned.wait(30), "no WARNING while the watch waited for a member"
        assert thread.is_alive() and not outcome  # still trying
    finally:
        logging.getLogger("etcd3").removeHandler(spy)
        client.close()
    thread.join(30)
    assert not thread.is_alive()
    (error,) = outcome
    assert isinstance(error, exceptions.ClientClosedError)
    (record,) = [r for r in caplog.records
                 if "no etcd member has answered the watch stream" in r.getMessage()]
    assert record.levelno == logging.WARNING and f"127.0.0.1:{port}" in record.getMessage()


def test_killed_server_warns_and_ends_limited_watches(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_watch_engine, "_UNREACHABLE_WARN_AFTER", 1.0)
    caplog.set_level(logging.INFO, logger="etcd3")
    with EtcdServer() as server, etcd3.client(host=server.host, port=server.port,
                                              timeout=5, watch_unreachable_timeout=3
                                              ) as client:
        limited, cancel = client.watch("/u/k")
        patient = Collector()
        client.add_watch_callback("/u/k", patient, unreachable_timeout=None)
        limited_callback = Collector()
        client.add_watch_prefix_callback("/u/", limited_callback)
        revision = client.put("/u/k", "1").header.revision
        assert next(limited).value == b"1"
        server.kill()
        with pytest.raises(exceptions.ConnectionFailedError) as info:
            next(limited)
        text = str(info.value)
        assert server.endpoint in text and "unreachable_timeout=3 s" in text, text
        assert f"start_revision={revision + 1}" in text, text
        assert re.search(r"could be reached for \d+\.\d s", text), text
        limited_callback.wait_for(lambda c: any(
            isinstance(i, exceptions.ConnectionFailedError) for i in c.items), timeout=30)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                    and "no etcd member has answered the watch stream" in r.getMessage()]
        assert warnings and server.endpoint in warnings[0].getMessage()
        assert len(warnings) == 1  # not every tick: once, then once a minute
        # One line for both limited watches (the iterator shares its server watch with
        # the patient callback, which stays).
        ended = [r.getMessage() for r in caplog.records if "ending 2 watch(es)" in r.getMessage()]
        assert len(ended) == 1 and server.endpoint in ended[0], caplog.text
        server.start()
        client.put("/u/k", "2")
        patient.wait_for(lambda c: len(c.items) == 2, timeout=30)
        assert [r.events[0].value for r in patient.items
                if isinstance(r, WatchResponse)] == [b"1", b"2"]
        assert any(r.levelno == logging.INFO and "watches resumed" in r.getMessage()
                   for r in caplog.records)
        with client._watch_engine()._lock:
            assert len(client._watch_engine()._subs) == 1  # only the patient one
        cancel()


@pytest.mark.drivers("threaded", "aio")
def test_unreachable_timeout_is_validated(connect: Any) -> None:
    with pytest.raises(ValueError, match="unreachable_timeout"):
        connect(watch_unreachable_timeout=0)
    with connect(host="127.0.0.1", port=_closed_port(), timeout=1) as client, \
            pytest.raises(ValueError, match="unreachable_timeout"):
        client.watch("/k", unreachable_timeout=-1)
