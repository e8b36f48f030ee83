"""The pytest fixtures ``etcd_server``, ``etcd_cluster``, ``etcd_client`` and
``etcd_aio_client``.

The pytest plugin is :mod:`etcd3.testing` itself (the ``pytest11`` entry point),
which re-exports these fixtures; this module needs pytest.

``etcd_aio_client`` is an :class:`etcd3.aio.Etcd3Client` for plain (synchronous)
test functions, which run their own event loop::

    def test_put(etcd_aio_client):
        async def body():
            await etcd_aio_client.put("/k", "v")
            assert (await etcd_aio_client.get("/k"))[0] == b"v"
        asyncio.run(body())

The client connects on its first call, in the loop running it; a later
``asyncio.run()`` in the same test starts over in the new loop (new connections,
same endpoints). Closing it is optional: after the test the fixture closes it (its
channels, tasks, watches and keepalives) if the test did not.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from .cluster import EtcdCluster
from .proxy import EtcdProxy
from .server import EtcdServer


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EtcdServer]:
    """A single etcd server for the whole test session."""
    with EtcdServer(name="etcd-pytest") as server:
        yield server


@pytest.fixture(scope="session")
def etcd_cluster() -> Iterator[EtcdCluster]:
    """A 3-member etcd cluster for the whole test session."""
    with EtcdCluster(3) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def etcd_proxy(etcd_server: EtcdServer) -> Iterator[EtcdProxy]:
    """etcd's gRPC proxy (``etcd grpc-proxy start``) in front of ``etcd_server``,
    for the whole test session: connect to ``etcd_proxy.endpoint`` to test code the
    way it runs behind a proxy."""
    with EtcdProxy([etcd_server.endpoint]) as proxy:
        yield proxy


def _emptied(server: EtcdServer) -> EtcdServer:
    """``server``, restarted/resumed if an earlier test left it down, with no keys."""
    if server.paused:
        server.resume()
    if not server.running:
        server.start()
    server.etcdctl("del", "", "--from-key")
    return server


def threaded_client(server: EtcdServer) -> Iterator[Any]:
    """The body of :func:`etcd_client` (for plugins that wrap it): a threaded client
    for the emptied ``server``, closed when the generator is closed."""
    _emptied(server)
    import etcd3  # imported lazily: the launchers must not need gRPC

    client = etcd3.client(host=server.host, port=server.port)
    try:
        yield client
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()


@pytest.fixture
def etcd_client(etcd_server: EtcdServer) -> Iterator[Any]:
    """An ``etcd3`` client connected to ``etcd_server``, with no keys in it.

    The server is restarted/resumed if an earlier test left it down; the
    client is closed after the test.
    """
    yield from threaded_client(etcd_server)


@pytest.fixture
def etcd_aio_client(etcd_server: EtcdServer) -> Iterator[Any]:
    """An :class:`etcd3.aio.Etcd3Client` connected to ``etcd_server``, with no keys
    in it, for a test that runs its own loop(s) with ``asyncio.run()`` (see the
    module docstring).

    The server is restarted/resumed if an earlier test left it down. After the
    test, a client the test did not close is closed in a fresh loop (its old loop
    has ended by then, so this only releases what is left).
    """
    _emptied(etcd_server)
    import asyncio

    import etcd3.aio

    client = etcd3.aio.client(host=etcd_server.host, port=etcd_server.port)
    try:
        yield client
    finally:
        if not client.closed:
            asyncio.run(client.close())
