"""One real etcd process on free loopback ports: :class:`EtcdServer`."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from .binaries import binary_version, find_etcd_binary, sibling_binary
from .cleanup import register, unregister
from .errors import EtcdNotFoundError, EtcdStartupError
from .etcdctl import ETCDCTL_TIMEOUT, run_etcdctl
from .gateway import http_json
from .ports import LOOPBACK, free_ports, release_ports
from .process import Launcher, all_threads_stopped, log_tail, server_env
from .tls import TLSConfig

# Defaults tuned for fast tests; any of them is dropped when the same flag
# appears in ``extra_args``.
_FAST_DEFAULTS: Tuple[Tuple[str, str], ...] = (
    ("--heartbeat-interval", "50"),
    ("--election-timeout", "500"),
)


def _flag_names(args: Iterable[str]) -> Set[str]:
    """The flag names (``--x`` of ``--x=1``) among the command-line *args*."""
    return {a.split("=", 1)[0] for a in args if a.startswith("-")}


class EtcdServer(Launcher):
    """One real etcd process listening on free loopback ports.

    Construction only picks ports and locates the binary; :meth:`start` (or
    ``with EtcdServer() as server:``) launches etcd and waits until it answers
    ``GET /health`` with ``{"health": "true"}``.

    Attributes: ``name``, ``host`` (``'127.0.0.1'``), ``port`` (client port),
    ``endpoint`` (``'127.0.0.1:PORT'``), ``client_url`` (``http://`` or, with
    *tls*, ``https://``), ``peer_url``, ``data_dir``, ``log_path`` (etcd's
    output), ``pid`` (``None`` when not running), ``version`` (e.g. ``'3.5.1'``).

    The data directory is a temporary one removed by :meth:`stop`, unless
    *data_dir* is given (then it is kept). :meth:`kill` simulates a crash and
    keeps the data so :meth:`start`/:meth:`restart` can bring the member back.
    Processes still running at interpreter exit are killed and reaped.

    *extra_args* are appended to etcd's command line; the fast-test defaults
    ``--heartbeat-interval=50 --election-timeout=500`` are dropped if
    *extra_args* sets them.

    To join a running cluster, first register the member (``add_member``
    with this server's ``peer_url``), then start it with *join* set to the
    existing members as ``"name=peer_url,..."``: it starts with
    ``--initial-cluster-state=existing`` and itself added to that list.

    Raises :class:`EtcdNotFoundError` (from the constructor) when no etcd
    binary is found.
    """

    def __init__(
        self,
        *,
        name: str = "etcd0",
        data_dir: Optional[str] = None,
        extra_args: Sequence[str] = (),
        tls: Optional[TLSConfig] = None,
        binary: Optional[str] = None,
        startup_timeout: float = 30.0,
        join: Optional[str] = None,
    ) -> None:
        self.name = name
        self.join = join
        self.tls = tls
        self.extra_args: List[str] = list(extra_args)
        self.startup_timeout = startup_timeout
        self.binary = self._resolve_binary(binary)
        self.host = LOOPBACK
        self._user_data_dir = data_dir
        self._workdir: Optional[str] = None
        self.data_dir: str = data_dir or ""
        self.log_path: str = ""
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._log_file: Any = None
        self._paused = False
        self._started_once = False
        self._remove_on_stop = True  # False for cluster members
        # Set by EtcdCluster; a single server bootstraps a cluster of one.
        self._initial_cluster: Optional[str] = None
        self._cluster_token = "etcd3-testing-" + uuid.uuid4().hex[:12]
        self.port, self.peer_port = free_ports(2)

    # -- addresses ---------------------------------------------------------

    @staticmethod
    def _resolve_binary(binary: Optional[str]) -> str:
        if binary is None:
            return find_etcd_binary("etcd")
        resolved = binary if os.sep in binary else shutil.which(binary)
        if not resolved or not os.path.isfile(resolved):
            raise EtcdNotFoundError(f"etcd binary {binary!r} does not exist")
        return os.path.abspath(resolved)

    @property
    def scheme(self) -> str:
        """``'https'`` with TLS, else ``'http'``."""
        return "https" if self.tls is not None else "http"

    @property
    def endpoint(self) -> str:
        """``'127.0.0.1:PORT'`` of the client port."""
        return f"{self.host}:{self.port}"

    @property
    def client_url(self) -> str:
        """``'http(s)://127.0.0.1:PORT'`` of the client port."""
        return f"{self.scheme}://{self.endpoint}"

    @property
    def peer_url(self) -> str:
        """``'http://127.0.0.1:PEER_PORT'`` (peer traffic is never TLS here)."""
        return f"http://{self.host}:{self.peer_port}"

    @property
    def pid(self) -> Optional[int]:
        """The process id, or ``None`` when the server is not running."""
        return self._proc.pid if self.running else None  # type: ignore[union-attr]

    @property
    def running(self) -> bool:
        """True while the etcd process exists (paused counts as running)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self._paused and self.running

    @property
    def version(self) -> str:
        """The server version from ``etcd --version``, e.g. ``'3.5.1'``."""
        return binary_version(self.binary)

    @property
    def version_info(self) -> Tuple[int, ...]:
        """:attr:`version` as a tuple of ints, e.g. ``(3, 5, 1)``."""
        return tuple(int(p) for p in re.findall(r"\d+", self.version)[:3])

    # -- lifecycle ---------------------------------------------------------

    def _ensure_dirs(self) -> None:
        if self._workdir is None or not os.path.isdir(self._workdir):
            self._workdir = tempfile.mkdtemp(prefix=f"etcd3-{self.name}-")
            self.log_path = os.path.join(self._workdir, "etcd.log")
        if self._user_data_dir is None:
            self.data_dir = os.path.join(self._workdir, "data")
        else:
            self.data_dir = self._user_data_dir

    def command(self) -> List[str]:
        """The full etcd command line :meth:`start` runs."""
        self._ensure_dirs()
        own = f"{self.name}={self.peer_url}"
        initial_cluster = self._initial_cluster or own
        if self.join is not None:
            initial_cluster = f"{self.join},{own}"
        args = [
            self.binary,
            "--name=" + self.name,
            "--data-dir=" + self.data_dir,
            "--listen-client-urls=" + self.client_url,
            "--advertise-client-urls=" + self.client_url,
            "--listen-peer-urls=" + self.peer_url,
            "--initial-advertise-peer-urls=" + self.peer_url,
            "--initial-cluster=" + initial_cluster,
            "--initial-cluster-state=" + ("new" if self.join is None else "existing"),
            "--initial-cluster-token=" + self._cluster_token,
        ]
        given = _flag_names(self.extra_args)
        args += [f"{f}={v}" for f, v in _FAST_DEFAULTS if f not in given]
        if self.tls is not None:
            args += self.tls.server_args()
        args += self.extra_args
        return args

    def _spawn(self) -> None:
        """Launch the process without waiting for health."""
        if self.running:
            raise RuntimeError(f"etcd server {self.name} is already running")
        self._reap()
        self._ensure_dirs()
        cmd = self.command()
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - open while etcd runs
        self._log_file.write(
            ("\n=== {}: {}\n".format(time.strftime("%H:%M:%S"), " ".join(cmd))).encode()
        )
        self._log_file.flush()
        register(self)
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=server_env(),
            close_fds=True,
        )
        self._paused = False
        self._started_once = True

    def start(self) -> EtcdServer:
        """Launch etcd and wait until it is healthy; returns ``self``.

        On the first start, a port taken by someone else in the meantime is
        retried with fresh ports. Raises :class:`EtcdStartupError` (with the
        log tail) if etcd exits or is not healthy within ``startup_timeout``.
        """
        for attempt in range(3):
            first = not self._started_once
            self._spawn()
            try:
                self.wait_healthy(self.startup_timeout)
                return self
            except EtcdStartupError:
                retry = first and attempt < 2 and self._port_clash()
                self._terminate(kill=True)
                if not retry:
                    raise
                self._repick_ports()
        raise AssertionError("unreachable")  # pragma: no cover

    def _port_clash(self) -> bool:
        return "address already in use" in log_tail(self.log_path, 200)

    def _repick_ports(self) -> None:
        release_ports((self.port, self.peer_port))
        self.port, self.peer_port = free_ports(2)
        self._started_once = False
        if self._user_data_dir is None and self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def health(self, timeout: float = 2.0) -> bool:
        """One health probe: TCP connect plus ``GET /health`` returning true."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                pass
            ctx = self.tls.ssl_context() if self.tls is not None else None
            body = http_json(self.host, self.port, "GET", "/health", None, ctx, timeout)
        except (OSError, ValueError, http.client.HTTPException):
            return False
        return isinstance(body, dict) and str(body.get("health")).lower() == "true"

    def wait_healthy(self, timeout: Optional[float] = None) -> None:
        """Block until ``GET /health`` reports healthy.

        *timeout* defaults to ``startup_timeout``. Raises
        :class:`EtcdStartupError` (with the last log lines) if the process is
        not running, exits, or stays unhealthy for *timeout* seconds.
        """
        timeout = self.startup_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            if not self.running:
                code = self._proc.returncode if self._proc is not None else None
                raise EtcdStartupError(
                    f"etcd server {self.name} is not running (exit status {code}). Last log lines "
                    f"from {self.log_path}:\n{log_tail(self.log_path)}"
                )
            remaining = deadline - time.monotonic()
            if self.health(timeout=max(0.1, min(1.0, remaining))):
                return
            if time.monotonic() >= deadline:
                raise EtcdStartupError(
                    f"etcd server {self.name} at {self.client_url} was not healthy within "
                    f"{timeout:.1f} s. Last log lines from {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None
        if self._proc is None and self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _send(self, sig: int) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)  # type: ignore[union-attr]

    def _signal_stop(self) -> None:
        """Ask the process to exit (SIGTERM; SIGCONT in case it is paused)."""
        self._send(signal.SIGTERM)
        if self._paused:
            self._send(signal.SIGCONT)
        self._paused = False

    def _wait_stopped(self, timeout: float) -> None:
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._send(signal.SIGKILL)
                self._proc.wait()
        self._reap()

    def _terminate(self, kill: bool = False, timeout: float = 10.0) -> None:
        if kill:
            self._send(signal.SIGKILL)
        else:
            self._signal_stop()
        self._paused = False
        self._wait_stopped(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop etcd: SIGTERM, wait up to *timeout* s, then SIGKILL; always reaped.

        Removes the temporary directory (data and log) unless the data dir was
        given by the user or the server belongs to an :class:`EtcdCluster`.
        Safe to call when not running.
        """
        self._terminate(timeout=timeout)
        if self._remove_on_stop:
            self._cleanup_files()

    def _cleanup_files(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        if self._user_data_dir is None:
            self._started_once = False  # data is gone: next start bootstraps anew
        unregister(self)

    def _emergency_cleanup(self) -> None:
        self._terminate(kill=True)
        self._cleanup_files()
        release_ports((self.port, self.peer_port))

    def kill(self) -> None:
        """SIGKILL the process (a crash): reaped at once, data kept for a restart."""
        self._terminate(kill=True)

    def pause(self, timeout: float = 10.0) -> None:
        """Freeze the process with SIGSTOP; connections hang until :meth:`resume`.

        Returns once every thread of the process is stopped: the kernel stops them
        one by one, and a request sent before the last one stops could be served.

        :raises RuntimeError: the server is not running, or it was not stopped
            within ``timeout`` seconds.
        """
        if not self.running:
            raise RuntimeError(f"etcd server {self.name} is not running")
        self._send(signal.SIGSTOP)
        self._paused = True
        pid = self._proc.pid  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while not all_threads_stopped(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"etcd server {self.name} (pid {pid}) did not stop within {timeout} s")
            time.sleep(0.001)

    def resume(self) -> None:
        """Continue a paused process with SIGCONT."""
        self._send(signal.SIGCONT)
        self._paused = False

    def restart(self, timeout: Optional[float] = None) -> EtcdServer:
        """Stop (if running) and start again with the same data dir and ports.

        Waits for health like :meth:`start` (up to *timeout*, default
        ``startup_timeout``); raises :class:`EtcdStartupError` on failure.
        """
        self._terminate()
        self._spawn()
        self.wait_healthy(timeout)
        return self

    # -- tools -------------------------------------------------------------

    def etcdctl(
        self,
        *args: str,
        check: bool = True,
        env: Optional[Mapping[str, str]] = None,
        input: Optional[str] = None,
        timeout: float = ETCDCTL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``etcdctl --endpoints=<this server> *args`` (API v3, text mode).

        See :func:`run_etcdctl` for *check*, *env*, *input* and *timeout*.
        """
        return run_etcdctl(
            [self.endpoint],
            *args,
            tls=self.tls,
            etcdctl_binary=sibling_binary(self.binary, "etcdctl"),
            check=check,
            env=env,
            input=input,
            timeout=timeout,
        )

    def status(self, timeout: float = 2.0) -> Dict[str, Any]:
        """This member's ``Maintenance.Status`` via the HTTP gateway, as a dict.

        64-bit ids are strings (gRPC-gateway JSON); e.g. ``status()['leader']``.
        Raises ``OSError`` if the server does not answer.
        """
        ctx = self.tls.ssl_context() if self.tls is not None else None
        status: Dict[str, Any] = http_json(
            self.host, self.port, "POST", "/v3/maintenance/status", b"{}", ctx, timeout
        )
        return status

    def __repr__(self) -> str:
        state = "paused" if self.paused else ("running" if self.running else "stopped")
        return f"<EtcdServer {self.name} {self.client_url} {state}>"
