"""Error messages a newcomer can act on (issue 13), each against a real etcd.

TLS to a plain-text port names TLS and says what to change; connection errors are
one sentence with gRPC's root cause (not "last error: ... last error: ..."); every
RequestTooLargeError names etcd's --max-request-bytes; ``python -m etcd3 --health``
probes TLS and auth clusters; ``repr(client)`` reads like python-etcd3's.
"""

from __future__ import annotations

import socket
from typing import Any, Iterator

import pytest
from auth_support import ROOT_PASSWORD

import etcd3
from etcd3 import __main__ as cli
from etcd3 import exceptions
from etcd3.testing import EtcdServer, TLSConfig

SIZE_HINT = "etcd's --max-request-bytes limits requests; 1.5 MiB by default"
PLAINTEXT_HINT = "TLS handshake failed — is the server plain-text? use http:// or drop ca_cert"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_sentence(text: str) -> None:
    assert text.count("last error") <= 1, text
    assert "failed to connect to all addresses" not in text, text
    assert "UNKNOWN:" not in text and "ipv4:" not in text, text


@pytest.fixture(scope="module")
def tls() -> Iterator[TLSConfig]:
    with TLSConfig(client_cert_auth=False) as config:
        yield config


def test_tls_to_a_plain_text_port_says_so(etcd_server: EtcdServer, tls: TLSConfig) -> None:
    with etcd3.client(host=etcd_server.host, port=etcd_server.port, ca_cert=tls.ca_cert,
                      timeout=5) as client:
        with pytest.raises(exceptions.ConnectionFailedError) as info:
            client.get("/k")
        assert PLAINTEXT_HINT in str(info.value)
        assert etcd_server.endpoint in str(info.value)
        # A watch is told the same, instead of resuming forever.
        with pytest.raises(exceptions.ConnectionFailedError) as info:
            client.watch("/k")
        assert PLAINTEXT_HINT in str(info.value)


def test_plain_text_to_a_tls_port_suggests_ca_cert(tls: TLSConfig) -> None:
    with EtcdServer(tls=tls) as server, etcd3.client(host=server.host, port=server.port,
                                                     timeout=2) as client:
        with pytest.raises(exceptions.ConnectionFailedError) as info:
            client.get("/k")
        text = str(info.value)
        _one_sentence(text)
        assert "give ca_cert or an https:// endpoint" in text, text
        # A watch says the same.
        with pytest.raises(exceptions.ConnectionFailedError) as info:
            client.watch("/k")
        assert "give ca_cert or an https:// endpoint" in str(info.value), str(info.value)


@pytest.mark.drivers("threaded", "aio")
def test_connection_refused_is_one_sentence(connect: Any) -> None:
    port = _closed_port()
    with connect(host="127.0.0.1", port=port, timeout=1) as client:
        for call in (lambda: client.get("/k"), lambda: client.put("/k", "v")):
            with pytest.raises(exceptions.ConnectionFailedError) as info:
                call()
            text = str(info.value)
            _one_sentence(text)
            assert "Connection refused" in text and f"127.0.0.1:{port}" in text, text
            assert "b'/k'" in text, text


@pytest.mark.drivers("threaded", "aio")
def test_killed_member_error_is_one_sentence(connect: Any) -> None:
    with EtcdServer() as server, connect(host=server.host, port=server.port,
                                         timeout=2) as client:
        client.put("/k", "v")
        server.kill()
        with pytest.raises(exceptions.ConnectionFailedError) as info:
            client.get("/k")
        text = str(info.value)
        _one_sentence(text)
        assert server.endpoint in text, text


@pytest.mark.parametrize("size", [1_600_000, 3 * 1024 * 1024],
                         ids=["etcd-request-is-too-large", "grpc-resource-exhausted"])
def test_every_request_too_large_error_names_the_server_limit(
        etcd_client: etcd3.Etcd3Client, size: int) -> None:
    big = b"x" * size
    calls = [lambda: etcd_client.put("/big", big),
             lambda: etcd_client.transaction(
                 compare=[], success=[etcd_client.transactions.put("/big", big)],
                 failure=[])]
    for call in calls:
        with pytest.raises(exceptions.RequestTooLargeError) as info:
            call()
        assert SIZE_HINT in str(info.value)
        assert str(info.value).count("--max-request-bytes") == 1
    with pytest.raises(exceptions.BulkRequestTooLargeError) as bulk:
        etcd_client.put_many([("/big/a", b"a"), ("/big/b", big)])
    assert SIZE_HINT in str(bulk.value)
    assert str(bulk.value).count("--max-request-bytes") == 1
    assert etcd_client.get("/big") == (None, None)


def test_health_probe_takes_tls_and_auth_options(
        tls: TLSConfig, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETCD3_PASSWORD", raising=False)
    with EtcdServer(tls=tls) as server:
        enable_root_auth_tls(server, tls)
        base = ["--health", "--endpoints", f"127.0.0.1:{server.port}", "--timeout", "5"]
        assert cli.main(base + ["--ca-cert", tls.ca_cert, "--user", "root",
                                "--password", ROOT_PASSWORD]) == 0
        out = capsys.readouterr().out
        assert f"127.0.0.1:{server.port}: healthy" in out, out
        assert ROOT_PASSWORD not in out
        # Without the CA the probe fails and says why.
        assert cli.main(["--health", "--endpoints", f"https://127.0.0.1:{server.port}",
                         "--timeout", "2"]) == 1
        assert "UNHEALTHY" in capsys.readouterr().out
        assert cli.main(base + ["--ca-cert", tls.ca_cert, "--user", "root"]) == 2
        assert "--password" in capsys.readouterr().err
        assert cli.main(base + ["--cert-key", tls.ca_cert]) == 2


def enable_root_auth_tls(server: EtcdServer, tls: TLSConfig) -> None:
    with etcd3.client(host=server.host, port=server.port, ca_cert=tls.ca_cert,
                      timeout=10) as plain:
        plain.add_user("root", ROOT_PASSWORD)
        plain.add_role("root")
        plain.grant_role("root", "root")
        plain.enable_auth()


def test_repr_reads_like_python_etcd3(monkeypatch: Any) -> None:
    monkeypatch.delenv("ETCD_ENDPOINTS", raising=False)
    with etcd3.client(host="127.0.0.1", port=_closed_port(), user="alice",
                      password="alice-Secret-1") as client:
        text = repr(client)
        assert text.startswith("<etcd3.client.Etcd3Client"), text
        assert text.endswith(">") and "127.0.0.1" in text and "alice" in text, text
        assert "alice-Secret-1" not in text
    multi = etcd3.MultiEndpointEtcd3Client(endpoints=[etcd3.Endpoint("127.0.0.1", 1, secure=False)])
    assert repr(multi).startswith("<etcd3.client.MultiEndpointEtcd3Client"), repr(multi)
    multi.close()

