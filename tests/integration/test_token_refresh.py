"""Auth tokens that expire every 2 s are refreshed without the user noticing.

Simple tokens expire after ``--auth-token-ttl`` seconds *without use*, so the load
pauses longer than that; JWT tokens expire 2 s after issue whatever the traffic.
Meanwhile a watch stays open (and new watches are added on the same stream after the
token expired) and a lock is held through its lease keepalive stream.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from auth_support import client_for, enable_root_auth

from etcd3.testing import EtcdServer

TOKEN_TTL = 2
LOAD_SECONDS = 8.0
IDLE_SECONDS = TOKEN_TTL + 1.0


def _rsa_key_pair(directory: Path) -> tuple:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / "jwt.key"
    public = directory / "jwt.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@pytest.fixture(params=["simple", "jwt"])
def short_token_server(request: Any, tmp_path: Path) -> Iterator[EtcdServer]:
    if request.param == "simple":
        args = ["--auth-token=simple", f"--auth-token-ttl={TOKEN_TTL}"]
    else:
        private, public = _rsa_key_pair(tmp_path)
        args = [f"--auth-token=jwt,pub-key={public},priv-key={private},"
                f"sign-method=RS256,ttl={TOKEN_TTL}s"]
    with EtcdServer(name=f"etcd-{request.param}-token", extra_args=args) as server:
        enable_root_auth(server)
        yield server


class _Collector:
    """Watch callback target: keeps the keys of events, and any error delivered."""

    def __init__(self) -> None:
        self.keys: List[bytes] = []
        self.errors: List[BaseException] = []
        self.changed = threading.Condition()

    def __call__(self, response: Any) -> None:
        with self.changed:
            if isinstance(response, BaseException):
                self.errors.append(response)
            else:
                self.keys.extend(event.key for event in response.events)
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.keys) >= count or self.errors,
                                         timeout)


def test_expiring_tokens_are_refreshed_for_calls_watches_and_keepalives(
        short_token_server: EtcdServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="etcd3")
    with client_for(short_token_server, timeout=10) as client:
        lock = client.lock("token-refresh", ttl=TOKEN_TTL)
        assert lock.acquire(timeout=5)
        load = _Collector()
        client.add_watch_prefix_callback("/load/", load)
        late_watches = []
        puts = 0
        started = time.monotonic()
        next_pause = started + 2.0
        while time.monotonic() - started < LOAD_SECONDS and puts < 2000:
            if time.monotonic() >= next_pause:
                time.sleep(IDLE_SECONDS)  # every token issued so far is now expired
                next_pause = time.monotonic() + 2.0
                late = _Collector()
                prefix = f"/late/{len(late_watches)}/"
                client.add_watch_prefix_callback(prefix, late)
                client.put(prefix + "k", "v")
                late_watches.append(late)
            key = f"/load/{puts:05d}"
            client.put(key, str(puts))
            assert client.get(key)[0] == str(puts).encode()
            puts += 1
            time.sleep(0.02)
        assert load.wait_for(puts)
        assert load.errors == []
        assert load.keys == [f"/load/{i:05d}".encode() for i in range(puts)]
        # The lease was kept alive through several token lifetimes.
        assert lock.is_acquired()
        assert lock.release()
        # Watches created on the open stream after its token expired.
        assert len(late_watches) >= 2
        for late in late_watches:
            assert late.wait_for(1)
            assert late.errors == [] and len(late.keys) == 1
    assert "re-authenticating" in caplog.text
