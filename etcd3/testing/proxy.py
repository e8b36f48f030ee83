"""etcd's own gRPC proxy (``etcd grpc-proxy start``) on a free loopback port:
:class:`EtcdProxy`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any, List, Optional, Sequence

from .binaries import binary_version, find_etcd_binary
from .cleanup import register, unregister
from .errors import EtcdStartupError
from .ports import LOOPBACK, free_ports, release_ports
from .process import Launcher, log_tail, server_env


class EtcdProxy(Launcher):
    """One ``etcd grpc-proxy start`` process in front of etcd members, listening on a
    free loopback port. Point a client at :attr:`endpoint` as at a member::

        with EtcdServer() as server, EtcdProxy([server.endpoint]) as proxy:
            client = etcd3.client(endpoints=[proxy.endpoint])

    The proxy coalesces identical watches of its clients into one watch on the
    cluster and caches serializable reads; with ``namespace`` it prefixes every key
    (like a namespaced client does). It runs the ``etcd`` binary (the same one as
    :class:`EtcdServer`; ``binary`` picks another) and keeps its data (``--data-dir``)
    and log in a temporary directory removed by :meth:`stop`.

    Attributes: ``host``, ``port``, ``endpoint`` (``'127.0.0.1:PORT'``), ``targets``
    (the members' endpoints), ``namespace``, ``log_path``, ``pid`` (None when not
    running). :meth:`kill`, :meth:`pause`/:meth:`resume` and :meth:`restart` (same
    port) make it fail the ways a real proxy does.

    :raises EtcdNotFoundError: (from the constructor) no etcd binary is found.
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        namespace: str = "",
        extra_args: Sequence[str] = (),
        binary: Optional[str] = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if not targets:
            raise ValueError("EtcdProxy needs at least one member endpoint")
        self.targets = [t.split("://", 1)[-1] for t in targets]
        self.namespace = namespace
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.binary = binary or find_etcd_binary("etcd")
        self.host = LOOPBACK
        (self.port,) = free_ports(1)
        self._workdir: Optional[str] = None
        self.log_path = ""
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._log_file: Any = None

    @property
    def endpoint(self) -> str:
        """``'127.0.0.1:PORT'``: where clients connect."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the proxy process exists (paused counts as running)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> Optional[int]:
        """The process id, or None when the proxy is not running."""
        return self._proc.pid if self.running else None  # type: ignore[union-attr]

    @property
    def version(self) -> str:
        """The etcd version of the binary, e.g. ``'3.5.1'``."""
        return binary_version(self.binary)

    def command(self) -> List[str]:
        """The command line :meth:`start` runs."""
        if self._workdir is None:
            self._workdir = tempfile.mkdtemp(prefix="etcd3-grpc-proxy-")
            self.log_path = os.path.join(self._workdir, "proxy.log")
        args = [
            self.binary, "grpc-proxy", "start",
            "--endpoints=" + ",".join(self.targets),
            "--listen-addr=" + self.endpoint,
            "--advertise-client-url=" + self.endpoint,
            "--data-dir=" + os.path.join(self._workdir, "data"),
        ]
        if self.namespace:
            args.append("--namespace=" + self.namespace)
        return args + self.extra_args

    def start(self) -> EtcdProxy:
        """Launch the proxy and wait until it accepts connections; returns ``self``.

        :raises EtcdStartupError: the proxy exited or did not listen within
            ``startup_timeout`` seconds (with the last lines of its log).
        """
        if self.running:
            raise RuntimeError("the gRPC proxy is already running")
        cmd = self.command()
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - open while it runs
        register(self)
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                      stderr=subprocess.STDOUT, env=server_env(),
                                      close_fds=True)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if not self.running:
                raise EtcdStartupError(
                    f"etcd grpc-proxy exited at start. Last log lines from "
                    f"{self.log_path}:\n{log_tail(self.log_path)}")
            with contextlib.suppress(OSError), \
                    socket.create_connection((self.host, self.port), timeout=0.5):
                return self
            if time.monotonic() > deadline:
                raise EtcdStartupError(
                    f"etcd grpc-proxy did not listen on {self.endpoint} within "
                    f"{self.startup_timeout:.0f} s. Last log lines from "
                    f"{self.log_path}:\n{log_tail(self.log_path)}")
            time.sleep(0.02)

    def _signal(self, sig: int) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)  # type: ignore[union-attr]

    def _terminate(self, sig: int, timeout: float = 10.0) -> None:
        self._signal(sig)
        self._signal(signal.SIGCONT)
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self._proc.wait()
            self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def kill(self) -> None:
        """SIGKILL the proxy (a crash); :meth:`start` brings it back on the same port."""
        self._terminate(signal.SIGKILL)

    def pause(self) -> None:
        """Freeze the proxy with SIGSTOP: its connections hang until :meth:`resume`."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Continue a paused proxy (SIGCONT)."""
        self._signal(signal.SIGCONT)

    def restart(self) -> EtcdProxy:
        """Stop the proxy and start it again on the same port."""
        self._terminate(signal.SIGTERM)
        return self.start()

    def stop(self) -> None:
        """Stop the proxy (SIGTERM, then SIGKILL after 10 s) and remove its files.
        Safe to call when it is not running."""
        self._terminate(signal.SIGTERM)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        unregister(self)

    def _emergency_cleanup(self) -> None:
        self._terminate(signal.SIGKILL)
        self.stop()
        release_ports((self.port,))

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EtcdProxy {self.endpoint} -> {','.join(self.targets)} {state}>"
