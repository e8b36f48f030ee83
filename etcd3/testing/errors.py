"""The errors :mod:`etcd3.testing` raises."""

from __future__ import annotations

import subprocess


class EtcdNotFoundError(RuntimeError):
    """An etcd binary (``etcd``, ``etcdctl`` or ``etcdutl``) could not be found."""


class EtcdStartupError(RuntimeError):
    """An etcd server exited, or did not become healthy in time.

    The message includes the last lines of the server's log.
    """


class EtcdctlError(subprocess.CalledProcessError):
    """``etcdctl`` exited with a non-zero status; ``stderr`` holds its message."""

    def __str__(self) -> str:
        text = (self.stderr or self.stdout or "").strip()
        return "etcdctl {} exited with status {}: {}".format(
            " ".join(str(a) for a in self.cmd[1:]),
            self.returncode,
            text or "(no output)",
        )
