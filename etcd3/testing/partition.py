"""Members in network namespaces whose peer links can be cut: :class:`PartitionedCluster`."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from typing import Any, List, Optional, Sequence, Set

from .cleanup import register, unregister
from .cluster import EtcdCluster
from .faults import FaultProxy
from .netns import ip, ip_binary
from .ports import LOOPBACK, release_ports
from .server import EtcdServer

_NETNS_SUBNET = "10.77.0"  # exists only inside the cluster's own namespaces
_NETNS_CLIENT_PORT = 2379
_NETNS_PEER_PORT = 2380


class _NetnsMember(EtcdServer):
    """A member running inside its own network namespace: peers on ``address``
    (inside the namespaces), clients on 127.0.0.1 of its namespace, reached from the
    test process through ``proxy`` (so :attr:`endpoint` is the proxy's)."""

    def __init__(self, *, netns: str, address: str, proxy: FaultProxy,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        release_ports((self.port, self.peer_port))  # not used: the namespace has its own
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
        return [ip_binary() or "ip", "netns", "exec", self.netns] + args

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
        #: The members' :class:`FaultProxy` objects, in member order.
        self.proxies: List[FaultProxy] = []
        self.members = []
        #: Names of the members whose peer link is cut (see :meth:`isolate`).
        self.isolated: Set[str] = set()
        register(self)
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
        if ip_binary() is None:
            return "the 'ip' command (iproute2) is not installed"
        name = "e3-probe-" + uuid.uuid4().hex[:8]
        made = ip("netns", "add", name, check=False)
        if made.returncode != 0:
            return f"cannot create a network namespace: {made.stderr.strip()}"
        try:
            veth = ip("-n", name, "link", "add", "a0", "type", "veth", "peer", "name",
                       "b0", check=False)
            if veth.returncode != 0:
                return f"cannot create a veth pair: {veth.stderr.strip()}"
            bridge = ip("-n", name, "link", "add", "br0", "type", "bridge", check=False)
            if bridge.returncode != 0:
                return f"cannot create a bridge: {bridge.stderr.strip()}"
        finally:
            ip("netns", "del", name, check=False)
        return None

    def _build_network(self) -> None:
        hub = self.hub
        for netns in [hub, *self.namespaces]:
            ip("netns", "add", netns)
            self._made.append(netns)
            ip("-n", netns, "link", "set", "lo", "up")
        ip("-n", hub, "link", "add", "br0", "type", "bridge")
        ip("-n", hub, "link", "set", "br0", "up")
        for i, netns in enumerate(self.namespaces):
            ip("-n", hub, "link", "add", f"hp{i}", "type", "veth", "peer", "name", "eth0",
                "netns", netns)
            ip("-n", hub, "link", "set", f"hp{i}", "master", "br0")
            ip("-n", hub, "link", "set", f"hp{i}", "up")
            ip("-n", netns, "addr", "add", f"{_NETNS_SUBNET}.{i + 1}/24", "dev", "eth0")
            ip("-n", netns, "link", "set", "eth0", "up")

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
        ip("-n", self.hub, "link", "set", f"hp{i}", "down")
        self.isolated.add(self.members[i].name)

    def heal(self, member: Any) -> None:
        """Restore the peer link cut by :meth:`isolate`."""
        i = self._index(member)
        ip("-n", self.hub, "link", "set", f"hp{i}", "up")
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
                ip("netns", "del", netns, check=False)
            unregister(self)

    _emergency_cleanup = stop

    def __repr__(self) -> str:
        return "<PartitionedCluster {}{}>".format(
            ", ".join(repr(m) for m in self.members),
            f" isolated={sorted(self.isolated)}" if self.isolated else "")
