"""The pytest fixtures ``etcd_server``, ``etcd_cluster`` and ``etcd_client``.

The pytest plugin is :mod:`etcd3.testing` itself (the ``pytest11`` entry point),
which re-exports these fixtures; this module needs pytest.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from .cluster import EtcdCluster
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


@pytest.fixture
def etcd_client(etcd_server: EtcdServer) -> Iterator[Any]:
    """An ``etcd3`` client connected to ``etcd_server``, with no keys in it.

    The server is restarted/resumed if an earlier test left it down; the
    client is closed after the test.
    """
    if etcd_server.paused:
        etcd_server.resume()
    if not etcd_server.running:
        etcd_server.start()
    etcd_server.etcdctl("del", "", "--from-key")
    import etcd3  # imported lazily: the launchers must not need gRPC

    client = etcd3.client(host=etcd_server.host, port=etcd_server.port)
    try:
        yield client
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()
