"""A TCP proxy in front of one member that can misbehave: :class:`FaultProxy`."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Any, List, Optional, Tuple, Union

from .netns import enter_netns
from .ports import LOOPBACK

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
            enter_netns(self.netns)
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


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
