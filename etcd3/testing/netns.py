"""Linux network namespaces: the ``ip`` command, and moving a thread into one."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Optional


def enter_netns(name: str) -> None:
    """Move the calling thread into the network namespace ``name`` (``ip netns``)."""
    import ctypes

    clone_newnet = 0x40000000
    with open(os.path.join("/run/netns", name), "rb") as handle:
        setns = getattr(os, "setns", None)
        if setns is not None:  # Python >= 3.12
            setns(handle.fileno(), clone_newnet)
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(handle.fileno(), clone_newnet) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into network namespace {name!r}: {os.strerror(err)}")


def ip_binary() -> Optional[str]:
    """The path of the ``ip`` command (iproute2), or None."""
    return shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if os.path.exists(p)), None)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip *args``; with *check*, raise ``RuntimeError`` if it fails."""
    binary = ip_binary()
    if binary is None:
        raise RuntimeError("the 'ip' command (iproute2) is not installed")
    proc = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc
