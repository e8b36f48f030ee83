"""Servers, clusters and certificates still alive at interpreter exit, cleaned up then."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from typing import Any, Dict

_registry_lock = threading.Lock()
_live: Dict[int, Any] = {}  # id(obj) -> object with _emergency_cleanup()
_creator_pid = os.getpid()


def register(obj: Any) -> None:
    """Clean *obj* up at interpreter exit (its ``_emergency_cleanup()``) unless
    :func:`unregister`-ed first."""
    with _registry_lock:
        _live[id(obj)] = obj


def unregister(obj: Any) -> None:
    """Forget *obj*: it cleaned itself up."""
    with _registry_lock:
        _live.pop(id(obj), None)


@atexit.register
def _cleanup_at_exit() -> None:
    """Clean up everything still registered (in the creating process only)."""
    # A forked child (multiprocessing) must not kill its parent's servers.
    if os.getpid() != _creator_pid:
        return
    with _registry_lock:
        objs = list(_live.values())
        _live.clear()
    for obj in objs:
        with contextlib.suppress(Exception):
            obj._emergency_cleanup()
