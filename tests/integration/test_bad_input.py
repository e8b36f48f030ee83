"""Bad input fails fast with a clear, typed error; a dead server fails within the timeout."""

from __future__ import annotations

import socket
import time

import pytest

import etcd3
from etcd3 import exceptions

pytestmark = pytest.mark.drivers("threaded", "aio")


@pytest.mark.parametrize("key", [None, 12, 1.5, ["a"], object()])
def test_key_type_checked_before_io(key, connect) -> None:
    client = connect(host="127.0.0.1", port=1)  # nothing listens there
    try:
        with pytest.raises(TypeError, match="key must be str or bytes"):
            client.get(key)
        with pytest.raises(TypeError):
            client.put(key, "v")
        with pytest.raises(TypeError):
            client.delete(key)
    finally:
        client.close()


def test_value_type_checked_before_io(connect) -> None:
    with connect(host="127.0.0.1", port=1) as client, \
            pytest.raises(TypeError, match="value must be str or bytes, not int"):
        client.put("/k", 5)


def test_empty_key_rejected(connect) -> None:
    with connect(host="127.0.0.1", port=1) as client:
        for call in (lambda: client.get(""), lambda: client.put(b"", "v"),
                     lambda: client.delete("")):
            with pytest.raises(ValueError, match="must not be empty"):
                call()


def test_bad_lease_and_ttl(connect) -> None:
    with connect(host="127.0.0.1", port=1) as client:
        with pytest.raises(TypeError):
            client.put("/k", "v", lease=1.5)
        with pytest.raises(ValueError):
            client.lease(0)
        with pytest.raises(TypeError):
            client.lease("10")


def test_bad_client_arguments(connect) -> None:
    with pytest.raises(ValueError):
        connect(user="root")
    with pytest.raises(ValueError):
        connect(timeout=0)
    with pytest.raises(ValueError):
        connect(endpoints=["http://"])
    with pytest.raises(ValueError):
        etcd3.Endpoint("localhost", 2379, secure=True)


def test_value_over_request_limit(etcd_client: etcd3.Etcd3Client) -> None:
    big = b"x" * (2 * 1024 * 1024)
    with pytest.raises(exceptions.RequestTooLargeError) as info:
        etcd_client.put("/big", big)
    assert "too large" in str(info.value)
    assert etcd_client.get("/big") == (None, None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_server_down_fails_within_timeout(connect) -> None:
    port = _free_port()
    with connect(host="127.0.0.1", port=port, timeout=2) as client:
        started = time.monotonic()
        with pytest.raises(exceptions.ConnectionFailedError) as info:
            client.get("/k")
        assert time.monotonic() - started < 3
        assert f"127.0.0.1:{port}" in str(info.value)
        with pytest.raises(exceptions.ConnectionFailedError):
            client.put("/k", "v")


def test_lease_not_found(etcd_client: etcd3.Etcd3Client) -> None:
    with pytest.raises(exceptions.LeaseNotFoundError):
        etcd_client.put("/k", "v", lease=123456789)
    with pytest.raises(exceptions.LeaseNotFoundError):
        etcd_client.revoke_lease(123456789)
    assert etcd_client.get_lease_info(123456789).TTL == -1
