"""Helpers for tests that need an etcd with authentication enabled (their own server)."""

from __future__ import annotations

from typing import Any

import etcd3
from etcd3.testing import EtcdServer

ROOT_PASSWORD = "root-Secret-Pw-8"


def enable_root_auth(server: EtcdServer) -> None:
    """Create user ``root`` with role ``root`` on ``server`` and enable auth."""
    with etcd3.client(host=server.host, port=server.port) as plain:
        plain.add_user("root", ROOT_PASSWORD)
        plain.add_role("root")
        plain.grant_role("root", "root")
        plain.enable_auth()


def client_for(server: EtcdServer, user: str = "root", password: str = ROOT_PASSWORD,
               **kwargs: Any) -> etcd3.Etcd3Client:
    """An authenticated client of ``server``."""
    return etcd3.client(host=server.host, port=server.port, user=user, password=password,
                        **kwargs)
