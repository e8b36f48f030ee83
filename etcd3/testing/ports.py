"""Free loopback ports, never handed out twice by one process."""

from __future__ import annotations

import socket
import threading
from typing import Iterable, List, Set

LOOPBACK = "127.0.0.1"

_lock = threading.Lock()
_given_ports: Set[int] = set()


def free_ports(count: int) -> List[int]:
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
            with _lock:
                if port in _given_ports:
                    continue
                _given_ports.add(port)
            ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def release_ports(ports: Iterable[int]) -> None:
    """Allow *ports* (from :func:`free_ports`) to be handed out again."""
    with _lock:
        _given_ports.difference_update(ports)
