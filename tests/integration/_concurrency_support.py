"""Helpers shared by the lease, lock, election and STM tests."""

from __future__ import annotations

import gc
import os
import subprocess
import threading
import time
from typing import Any, Callable, List

from etcd3.testing import EtcdServer, find_etcd_binary

ETCDCTL_ENV = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
ETCDCTL_ENV["ETCDCTL_API"] = "3"


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def settle(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Collect garbage and poll ``predicate`` until true; False after ``timeout`` s
    (for waits on what dropped objects release)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        gc.collect()
        time.sleep(0.05)
    return True


def etcdctl(server: EtcdServer, *args: str) -> subprocess.Popen[str]:
    """Start a long-running etcdctl (lock, elect) against ``server``."""
    return subprocess.Popen([find_etcd_binary("etcdctl"), "--endpoints", server.endpoint,
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ETCDCTL_ENV)


def readline(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """The next line etcdctl prints; fails the test if none comes in time."""
    lines: List[str] = []
    assert proc.stdout is not None
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines, "etcdctl printed nothing in time"
    return lines[0].strip()


def keys(client: Any, prefix: str) -> List[bytes]:
    """Keys under ``prefix``, in key order."""
    return [meta.key for _, meta in client.get_prefix(prefix)]
