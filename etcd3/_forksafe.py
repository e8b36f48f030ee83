"""Reset per-process state in a child after ``os.fork()``.

Locks held by other threads at the moment of the fork stay held forever in the child
(those threads don't exist there), and so does any bookkeeping of their calls in
flight. Objects that keep such state register here and are told to start afresh in
the child; channels are re-created separately (see :class:`etcd3.pool.ChannelPool`).
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


_OBJECTS: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def register(obj: ForkAware) -> None:
    """Call ``obj._after_fork_in_child()`` in every child forked from now on."""
    _OBJECTS.add(obj)


def _reset_all() -> None:
    for obj in list(_OBJECTS):
        obj._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all)
