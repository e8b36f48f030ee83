"""Running ``etcdctl`` against some endpoints."""

from __future__ import annotations

import os
import subprocess
from typing import Mapping, Optional, Sequence

from .binaries import find_etcd_binary
from .errors import EtcdctlError
from .tls import TLSConfig

ETCDCTL_TIMEOUT = 30.0


def run_etcdctl(
    endpoints: Sequence[str],
    *args: str,
    tls: Optional[TLSConfig] = None,
    etcdctl_binary: Optional[str] = None,
    check: bool = True,
    env: Optional[Mapping[str, str]] = None,
    input: Optional[str] = None,
    timeout: float = ETCDCTL_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run etcdctl (``ETCDCTL_API=3``) against *endpoints* and capture its output.

    The environment is ``os.environ`` without ``ETCDCTL_*`` variables, plus
    *env*. *input* is fed to stdin. Returns the ``CompletedProcess`` (text
    ``stdout``/``stderr``). Raises :class:`EtcdctlError` (a
    ``CalledProcessError`` whose message includes stderr) on a non-zero exit
    when *check* is true, ``subprocess.TimeoutExpired`` after *timeout*
    seconds, :class:`EtcdNotFoundError` if etcdctl is not found.
    """
    binary = etcdctl_binary or find_etcd_binary("etcdctl")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    full_env["ETCDCTL_API"] = "3"
    if env:
        full_env.update(env)
    cmd = [binary, "--endpoints=" + ",".join(endpoints)]
    if tls is not None:
        cmd += tls.etcdctl_args()
    cmd += [str(a) for a in args]
    proc = subprocess.run(
        cmd,
        input=input,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise EtcdctlError(proc.returncode, cmd, proc.stdout, proc.stderr)
    return proc
