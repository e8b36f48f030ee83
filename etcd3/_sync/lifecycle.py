"""A client's background engines, and what happens when the client is dropped or the
process exits or forks.

- :class:`Engines` holds the engines of one client (watch stream, lease keepalive,
  endpoint sync), made on first use and closed together. In a forked child they
  are forgotten (their threads do not exist there) and made again on first use.
- :func:`release_when_dropped` arranges for a client that is garbage-collected
  without ``close()`` to stop its engines and close its channels, and for every
  client still open at interpreter exit to be released while threads still run.
  Neither ever blocks the thread that collects the client: gRPC's
  ``Channel.close()`` waits for gRPC's own threads, so channels are closed on a
  daemon *reaper* thread. At interpreter exit unclosed clients are given
  :data:`EXIT_CLOSE_BUDGET` seconds in all;
  once the interpreter is finalizing nothing is closed at all (daemon threads are
  frozen then, and a close waiting for them would hang the exit).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, Optional, Protocol, Set, TypeVar

from .. import exceptions
from . import forksafe as _forksafe

log = logging.getLogger("etcd3")

#: Seconds interpreter exit waits for the channels of unclosed clients to close.
EXIT_CLOSE_BUDGET = 1.0


class Engine(Protocol):
    def close(self, wait: bool = True) -> None:
        """Stop its threads and streams (``wait``: join the threads)."""

    def abandon_after_fork(self) -> None:
        """In a forked child: give up without touching the parent's gRPC objects."""


E = TypeVar("E", bound=Engine)


class Engines:
    """The background engines of one client, by name. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: Dict[str, Engine] = {}
        self.closed = False
        _forksafe.register(self)

    def get(self, name: str) -> Optional[Engine]:
        """The engine called ``name`` if it was made (in this process), else None."""
        return self._by_name.get(name)

    def ensure(self, name: str, create: Callable[[], E]) -> E:
        """The engine called ``name``, made by ``create()`` on first use (once,
        however many threads ask at the same time).

        :raises ClientClosedError: the client is closed.
        """
        engine = self._by_name.get(name)
        if engine is None:
            with self._lock:
                engine = self._by_name.get(name)
                if engine is None:
                    if self.closed:
                        raise exceptions.ClientClosedError("this etcd3 client has been closed")
                    engine = self._by_name[name] = create()
        return engine  # type: ignore[return-value]

    def close(self, wait: bool = True) -> None:
        """Close every engine (``wait``: join their threads). Idempotent."""
        with self._lock:
            self.closed = True
            engines, self._by_name = list(self._by_name.values()), {}
        for engine in engines:
            try:
                engine.close(wait=wait)
            except Exception:  # one engine's failure must not leave the others running
                log.exception("etcd3: failed to stop %r", engine)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        engines, self._by_name = list(self._by_name.values()), {}
        for engine in engines:
            engine.abandon_after_fork()


class _Reaper:
    """One daemon thread that releases dropped clients.

    A finalizer may run on any thread, in the middle of anything, including a
    client's own engine thread while it holds that engine's lock: so it takes no
    lock and does no work itself, it only queues the job here
    (``SimpleQueue.put`` is safe to call from a finalizer).
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        """Start the thread (from ordinary code, never from a finalizer)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, args=(self._jobs,),
                                                name="etcd3-reaper", daemon=True)
                self._thread.start()

    def submit(self, job: Callable[[], None]) -> threading.Event:
        """Queue ``job``; the event is set once it has run."""
        done = threading.Event()

        def run() -> None:
            try:
                job()
            except Exception:
                log.debug("etcd3: releasing a dropped client failed", exc_info=True)
            finally:
                done.set()

        self._jobs.put(run)
        return done

    @staticmethod
    def _run(jobs: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            jobs.get()()

    def _after_fork_in_child(self) -> None:
        # The parent's thread is not here, and it may have been blocked inside the
        # queue at the fork: start again with a new queue holding the jobs not run.
        self._lock = threading.Lock()
        self._thread = None
        pending, self._jobs = self._jobs, queue.SimpleQueue()
        while True:
            try:
                self._jobs.put(pending.get_nowait())
            except queue.Empty:
                break


_REAPER = _Reaper()
# Changed only with single set operations, which are atomic: no lock, so that a
# finalizer can never wait for one (see _Reaper).
_ARMED: Set[weakref.finalize[Any, Any]] = set()
_exit_deadline: Optional[float] = None  # set once the interpreter starts to exit


def _release(engines: Engines, close_transport: Callable[[], None],
             guard: list[Optional[weakref.finalize[Any, Any]]]) -> None:
    """Stop a dropped (or, at exit, unclosed) client; never blocks for long."""
    if guard[0] is not None:
        _ARMED.discard(guard[0])
    if sys.is_finalizing():
        return

    def release() -> None:
        engines.close(wait=False)
        close_transport()

    done = _REAPER.submit(release)
    if _exit_deadline is not None:
        done.wait(max(_exit_deadline - time.monotonic(), 0.0))


def release_when_dropped(owner: Any, engines: Engines,
                         close_transport: Callable[[], None]) -> weakref.finalize[Any, Any]:
    """Release ``engines`` and ``close_transport()`` once ``owner`` is collected
    without being closed, or at interpreter exit if it is still open then.

    ``engines`` and ``close_transport`` must not refer to ``owner``. Call
    :func:`forget` with the result when the owner is closed explicitly.
    """
    _REAPER.ensure_started()
    guard: list[Optional[weakref.finalize[Any, Any]]] = [None]
    finalizer = weakref.finalize(owner, _release, engines, close_transport, guard)
    finalizer.atexit = False  # _at_exit below runs it, with a bounded wait
    guard[0] = finalizer
    _ARMED.add(finalizer)
    return finalizer


def forget(finalizer: weakref.finalize[Any, Any]) -> None:
    """The owner was closed explicitly: nothing to release later."""
    finalizer.detach()
    _ARMED.discard(finalizer)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_REAPER._after_fork_in_child)


@atexit.register
def _at_exit() -> None:
    # atexit runs before the interpreter freezes daemon threads, so gRPC can still
    # close channels now; each close gets a bounded wait so exit stays prompt.
    global _exit_deadline
    _exit_deadline = time.monotonic() + EXIT_CLOSE_BUDGET
    if _ARMED:
        _REAPER.ensure_started()
    for finalizer in _ARMED.copy():
        finalizer()
