"""Several etcd members bootstrapped together: :class:`EtcdCluster`."""

from __future__ import annotations

import http.client
import signal
import subprocess
import time
import uuid
from typing import Iterator, List, Mapping, Optional, Sequence

from .binaries import sibling_binary
from .errors import EtcdStartupError
from .etcdctl import ETCDCTL_TIMEOUT, run_etcdctl
from .process import Launcher
from .server import EtcdServer
from .tls import TLSConfig


class EtcdCluster(Launcher):
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
        timeout: float = ETCDCTL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run etcdctl against all members' endpoints; see :func:`run_etcdctl`."""
        return run_etcdctl(
            self.endpoints,
            *args,
            tls=self.tls,
            etcdctl_binary=sibling_binary(self.members[0].binary, "etcdctl"),
            check=check,
            env=env,
            input=input,
            timeout=timeout,
        )

    def __iter__(self) -> Iterator[EtcdServer]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return "<EtcdCluster {}>".format(", ".join(repr(m) for m in self.members))
