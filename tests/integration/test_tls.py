"""TLS and mutual TLS against a real etcd started with certificates made here."""

from __future__ import annotations

import time

import pytest

import etcd3
from etcd3 import exceptions
from etcd3.testing import EtcdServer, TLSConfig

pytestmark = pytest.mark.drivers("threaded", "aio")


@pytest.fixture(scope="module")
def mtls():
    with TLSConfig(client_cert_auth=True) as tls, EtcdServer(tls=tls) as server:
        yield tls, server


@pytest.fixture(scope="module")
def other_ca():
    with TLSConfig() as tls:
        yield tls


@pytest.mark.drivers("threaded")  # uses_secure_channel: the threaded client's
def test_mtls_round_trip(mtls) -> None:
    tls, server = mtls
    with etcd3.client(host=server.host, port=server.port, ca_cert=tls.ca_cert,
                      cert_key=tls.client_key, cert_cert=tls.client_cert,
                      timeout=5) as client:
        assert str(client.endpoints[0]).startswith("https://")
        assert client.uses_secure_channel is True
        client.put("/tls/a", "1")
        assert client.get("/tls/a")[0] == b"1"


def test_https_endpoint_url_round_trip(mtls, connect) -> None:
    tls, server = mtls
    with connect(endpoints=[server.client_url], ca_cert=tls.ca_cert,
                      cert_key=tls.client_key, cert_cert=tls.client_cert,
                      timeout=5) as client:
        client.put("/tls/b", "2")
        assert client.get("/tls/b")[0] == b"2"


def test_tls_without_client_certificates(connect):
    with TLSConfig(client_cert_auth=False) as tls, EtcdServer(tls=tls) as server, \
            connect(host=server.host, port=server.port, ca_cert=tls.ca_cert,
                         timeout=5) as client:
        client.put("/tls/c", "3")
        assert client.get("/tls/c")[0] == b"3"


def _assert_tls_error(client: etcd3.Etcd3Client) -> None:
    started = time.monotonic()
    with pytest.raises(exceptions.ConnectionFailedError, match="TLS handshake") as info:
        client.get("/tls/a")
    assert time.monotonic() - started < 3  # fails fast, no retry loop until timeout
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("ca, client_cert", [
    ("other", "own"),    # wrong CA: the server's certificate is not trusted
    ("own", None),       # no client certificate, the server requires one
    ("own", "other"),    # client certificate from a CA the server does not trust
])
def test_tls_misconfiguration_is_a_clear_error(mtls, other_ca, ca, client_cert,
                                               connect) -> None:
    tls, server = mtls
    pick = {"own": tls, "other": other_ca}
    cert = {} if client_cert is None else {
        "cert_key": pick[client_cert].client_key, "cert_cert": pick[client_cert].client_cert}
    with connect(host=server.host, port=server.port, ca_cert=pick[ca].ca_cert,
                 timeout=10, **cert) as client:
        _assert_tls_error(client)


@pytest.mark.parametrize("timeout", [0.3, 2])
def test_plain_text_to_a_tls_port_says_so(mtls, timeout: float, connect) -> None:
    # Whether or not the deadline cuts the last attempt short, the error says TLS.
    _, server = mtls
    with connect(host=server.host, port=server.port, timeout=timeout) as client, \
            pytest.raises(exceptions.ConnectionFailedError, match="TLS"):
        client.get("/tls/a")


def test_half_a_client_certificate_is_refused(mtls, connect) -> None:
    tls, _ = mtls
    with pytest.raises(ValueError, match="cert_key and cert_cert"):
        connect(ca_cert=tls.ca_cert, cert_key=tls.client_key)
