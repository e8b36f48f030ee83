"""etcd3.aio over TLS and mutual TLS, beyond the shared bodies of test_tls.py: a
client that starts over in a second event loop makes its secure channels again with
the same certificates, and many calls share them concurrently."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator, Tuple

import pytest

import etcd3.aio
from etcd3 import exceptions
from etcd3.testing import EtcdServer, TLSConfig


@pytest.fixture(scope="module")
def mtls() -> Iterator[Tuple[TLSConfig, EtcdServer]]:
    with TLSConfig(client_cert_auth=True) as tls, EtcdServer(tls=tls) as server:
        yield tls, server


def _mtls_client(tls: TLSConfig, server: EtcdServer) -> etcd3.aio.Etcd3Client:
    return etcd3.aio.client(host=server.host, port=server.port, ca_cert=tls.ca_cert,
                            cert_key=tls.client_key, cert_cert=tls.client_cert, timeout=5)


def test_mtls_across_two_event_loops(mtls: Tuple[TLSConfig, EtcdServer]) -> None:
    tls, server = mtls
    client = _mtls_client(tls, server)

    async def write() -> Any:
        assert str(client.endpoints[0]).startswith("https://")
        return await client.put("/aio-tls/a", "1")

    async def read_and_close() -> Any:
        try:
            return await client.get("/aio-tls/a")
        finally:
            await client.close()

    revision = asyncio.run(write()).header.revision
    value, meta = asyncio.run(read_and_close())
    assert value == b"1" and meta.mod_revision == revision
    assert client.closed


def test_mtls_concurrent_calls(mtls: Tuple[TLSConfig, EtcdServer]) -> None:
    tls, server = mtls

    async def body() -> None:
        async with _mtls_client(tls, server) as client:
            await asyncio.gather(*(client.put(f"/aio-tls/many/{i:03d}", str(i))
                                   for i in range(100)))
            values = await asyncio.gather(*(client.get(f"/aio-tls/many/{i:03d}")
                                            for i in range(100)))
            assert [v for v, _ in values] == [str(i).encode() for i in range(100)]
            keys = [m.key async for _, m in client.get_prefix("/aio-tls/many/")]
            assert len(keys) == 100

    asyncio.run(body())


def test_mtls_without_a_client_certificate_is_a_clear_error(
        mtls: Tuple[TLSConfig, EtcdServer]) -> None:
    tls, server = mtls

    async def body() -> None:
        async with etcd3.aio.client(host=server.host, port=server.port,
                                    ca_cert=tls.ca_cert, timeout=10) as client:
            with pytest.raises(exceptions.ConnectionFailedError,
                               match="TLS handshake") as info:
                await client.put("/aio-tls/x", "v")
            assert info.value.__cause__ is not None

    asyncio.run(body())
