"""Reset per-process state in a child after ``os.fork()``.

Locks held by other threads at the moment of the fork stay held forever in the child
(those threads don't exist there), and so does any bookkeeping of their calls in
flight. Objects that keep such state register here and are told to start afresh in
the child; channels are re-created separately (see :class:`etcd3.pool.ChannelPool`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Protocol


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


_OBJECTS: weakref.WeakSet[ForkAware] = weakref.WeakSet()


class Suspendable(Protocol):
    def _suspend_for_fork(self) -> None: ...

    def _resume_after_fork(self) -> None: ...


_SUSPENDABLE: weakref.WeakSet[Suspendable] = weakref.WeakSet()


def register_stream_owner(obj: Suspendable) -> None:
    """Before every ``os.fork()``, ``obj._suspend_for_fork()`` ends its streams (their
    readers leave gRPC); after it, in the parent, ``obj._resume_after_fork()``
    reopens them (see :class:`ForkGate`)."""
    _SUSPENDABLE.add(obj)


def register(obj: ForkAware) -> None:
    """Call ``obj._after_fork_in_child()`` in every child forked from now on."""
    _OBJECTS.add(obj)


def _reset_all() -> None:
    _reset_grpc_plugin_lock()
    for obj in list(_OBJECTS):
        obj._after_fork_in_child()


def _reset_grpc_plugin_lock() -> None:
    """Give the child a fresh copy of grpc's process-wide observability lock.

    gRPC holds ``grpc._observability._plugin_lock`` while it creates every call. A
    fork while one of the parent's threads is creating a call (a stream reopening
    after the previous fork, say) leaves it held by a thread the child does not have,
    and the child's first call waits on it forever. Only the forking thread exists in
    the child, and it is not inside gRPC, so nothing can legitimately hold it there.
    """
    import sys

    observability = sys.modules.get("grpc._observability")
    lock = getattr(observability, "_plugin_lock", None)
    if lock is not None:
        observability._plugin_lock = type(lock)()  # type: ignore[union-attr]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all)


class ForkGate:
    """Keeps ``os.fork()`` from happening while this process's unary gRPC calls are
    in flight.

    gRPC's core is not fork-safe while other threads are inside it: a child forked
    then may crash on its first gRPC call (measured here: 3-12 % of forks of a
    parent with threads busy in calls while a watch stream was open). Every unary
    call (blocking or future) and every stream reader holds the gate while it is in
    gRPC. Just before a fork the gate closes to new blocking calls, the watch and
    keepalive engines end their streams (:func:`register_stream_owner`), and the
    fork waits, up to :attr:`max_wait` seconds, for everything in flight to leave
    gRPC. After the fork the gate reopens and the parent's engines reopen their
    streams (a watch resumes from where it was, losing nothing).
    """

    #: The longest a fork waits for calls in flight (a call with no deadline
    #: against a hung member must not block a fork forever).
    max_wait = 2.0

    def __init__(self) -> None:
        self._new_locks()
        self._inside = 0
        self._forking = False
        self._stragglers = 0  # calls still in flight when the last fork went ahead

    def _new_locks(self) -> None:
        # Calls take the bare lock (cheap); only a fork and the calls it holds back
        # use the condition built on it.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)

    def enter(self) -> None:
        """A unary call starts (blocks while a fork is being prepared)."""
        with self._lock:
            while self._forking:
                self._cond.wait()
            self._inside += 1

    def enter_nowait(self) -> None:
        """A unary future or a stream reader starts; never blocks (it may start on
        gRPC's completion thread, which the calls a fork waits for need)."""
        with self._lock:
            self._inside += 1

    def leave(self) -> None:
        """A call or stream reader left gRPC (however it ended)."""
        with self._lock:
            self._inside -= 1
            if self._forking and self._inside <= 0:
                self._cond.notify_all()

    #: False turns the gate off (for measuring what it prevents; see
    #: benchmarks/bench_fork.py).
    enabled = True

    def _before_fork(self) -> None:
        if not self.enabled:
            return
        with self._cond:
            self._forking = True
        for owner in list(_SUSPENDABLE):
            owner._suspend_for_fork()
        with self._cond:
            deadline = time.monotonic() + self.max_wait
            while self._inside > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._stragglers = self._inside

    def _after_fork_in_parent(self) -> None:
        if not self.enabled:
            return
        with self._cond:
            self._forking = False
            self._cond.notify_all()
        for owner in list(_SUSPENDABLE):
            owner._resume_after_fork()

    def _after_fork_in_child(self) -> None:
        self._new_locks()
        self._inside = 0  # the parent's calls are not ours
        self._forking = False
        if self._stragglers:
            logging.getLogger("etcd3").warning(
                "etcd3: this process was forked while %d etcd3 gRPC call(s) of the "
                "parent were still in flight after %.1f s; gRPC may crash in this child. "
                "Give calls a timeout, or fork before the parent starts making calls",
                self._stragglers, self.max_wait)


#: The process's one gate (see :class:`ForkGate`).
GATE = ForkGate()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=GATE._before_fork,
                        after_in_parent=GATE._after_fork_in_parent,
                        after_in_child=GATE._after_fork_in_child)
