"""The one lease keepalive stream of a client, driven by threads.

Every kept-alive lease of a client shares one ``LeaseKeepAlive`` stream. When each
keepalive is due and when a lease is lost is decided by
:class:`etcd3._core.keepalive_schedule.KeepAliveSchedule`; here a scheduler thread
sends what it says is due, reopens the stream on another endpoint when it breaks or
stalls, and reports lost leases (``lease._expired`` and ``on_expired``). A reader
thread per stream consumes the replies.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from typing import Any, Callable, Iterator, List, Optional

from .. import exceptions
from .._core.keepalive_schedule import (
    KeepAliveSchedule,
    LeaseEntry,
    LeaseOwner,
    StreamHealth,
)
from .._grpc import errors as _errors
from .._grpc import rpc as _rpc
from ..etcdrpc import rpc_pb2 as pb
from . import forksafe as _forksafe
from .transport import Transport

log = logging.getLogger("etcd3")

ExpiredCallback = Callable[[Any], None]




class _Stream:
    """One open LeaseKeepAlive call, its request queue and health counters."""

    def __init__(self, transport: Transport, avoid: Any) -> None:
        self.requests: queue.SimpleQueue[Optional[int]] = queue.SimpleQueue()
        self.call, self.state = transport.open_stream(
            _rpc.LEASE_KEEPALIVE, self._iter_requests(), avoid=avoid)
        self.broken = False
        self.health = StreamHealth()

    def _iter_requests(self) -> Iterator[Any]:
        while True:
            lease_id = self.requests.get()
            if lease_id is None:
                return
            yield pb.LeaseKeepAliveRequest(ID=lease_id)

    def close(self) -> None:
        self.broken = True
        self.requests.put(None)
        self.call.cancel()


class KeepAliveEngine:
    """Keeps leases alive over a single stream; thread-safe.

    :meth:`add` starts keeping a lease alive, :meth:`remove` stops; :meth:`close`
    ends the threads and the stream. Leases that can't be kept alive get
    ``lease._expired = True`` and their ``on_expired(lease)`` callback.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._cond = threading.Condition()
        self._schedule = KeepAliveSchedule(transport.recorder)
        self._stream: Optional[_Stream] = None
        self._readers: List[threading.Thread] = []
        self._thread: Optional[threading.Thread] = None
        self._stopped = False
        self._avoid: Any = None
        self._fork_paused = False  # stream ended for an os.fork() (see _forksafe)
        _forksafe.register_stream_owner(self)

    # -- public ---------------------------------------------------------------------

    def add(self, lease: Any, on_expired: Optional[ExpiredCallback] = None) -> None:
        """Keep ``lease`` alive from now on (a first keepalive is sent at once).

        ``on_expired`` may be a :class:`weakref.WeakMethod`, so that the object it
        belongs to (a lock, an election) does not keep its client alive.
        :raises ClientClosedError: the client was closed.
        """
        with self._cond:
            if self._stopped or self._transport.closed:
                raise exceptions.ClientClosedError("this etcd3 client has been closed")
            self._schedule.add(int(lease.id), int(lease.ttl), time.monotonic(),
                               LeaseOwner(lease, on_expired))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="etcd3-lease-keepalive")
                self._thread.start()
            self._cond.notify_all()

    def remove(self, lease_id: int) -> bool:
        """Stop keeping ``lease_id`` alive; True if it was kept alive."""
        with self._cond:
            return self._schedule.remove(int(lease_id)) is not None

    def is_kept_alive(self, lease_id: int) -> bool:
        with self._cond:
            return int(lease_id) in self._schedule.entries

    def alive_until(self, lease_id: int) -> Optional[float]:
        """The monotonic time until which ``lease_id`` is known to be alive (its last
        renewal plus its TTL), or None when it is not kept alive here."""
        with self._cond:
            return self._schedule.alive_until(int(lease_id))

    def _suspend_for_fork(self) -> None:
        with self._cond:
            self._fork_paused = True
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def _resume_after_fork(self) -> None:
        with self._cond:
            self._fork_paused = False
            self._cond.notify_all()

    def abandon_after_fork(self) -> None:
        """In a forked child: the threads and the stream are the parent's, and so are
        the leases (the parent keeps renewing them); forget everything."""
        self._cond = threading.Condition()
        self._stopped = True
        self._schedule = KeepAliveSchedule(self._transport.recorder)
        self._stream = None
        self._thread = None
        self._readers = []

    def close(self, wait: bool = True) -> None:
        """Stop the scheduler and reader threads and the stream (leases are not
        revoked; they expire after their TTL); ``wait``: join the threads.
        Idempotent."""
        with self._cond:
            self._stopped = True
            self._schedule.entries.clear()
            stream, self._stream = self._stream, None
            thread = self._thread
            readers = list(self._readers)
            self._cond.notify_all()
        if stream is not None:
            stream.close()
        if not wait:
            return
        current = threading.current_thread()
        for item in [thread, *readers]:
            if item is not None and item is not current:
                item.join(timeout=5.0)

    # -- scheduler ------------------------------------------------------------------

    def _run(self) -> None:
        schedule = self._schedule
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = time.monotonic()
                expired = schedule.pop_expired(now)
                stream = self._stream
                if stream is not None and (stream.broken or not schedule.entries
                                           or self._stalled(stream, now)):
                    self._drop_stream(stream, now)
                if not schedule.entries and not expired:
                    self._cond.wait()
                    continue
                need_open = (self._stream is None and not self._fork_paused
                             and schedule.should_open(now))
            if need_open:
                self._open_stream()
            with self._cond:
                now = time.monotonic()
                stream = self._stream
                if stream is not None:
                    for lease_id in schedule.due(now, stream.health):
                        stream.requests.put(lease_id)
                pause = schedule.next_wakeup(now, stream is not None)
            for entry in expired:
                self._report(entry, "no keepalive reply within its TTL")
            if pause > 0:
                with self._cond:
                    if not self._stopped:
                        self._cond.wait(pause)

    def _stalled(self, stream: _Stream, now: float) -> bool:
        if not self._schedule.stalled(stream.health, now):
            return False
        log.info("etcd3: lease keepalive stream on %s unanswered; moving it",
                 stream.state.name)
        self._transport.pool.mark_failed(stream.state)
        return True

    def _drop_stream(self, stream: _Stream, now: float) -> None:
        """Called under the condition: forget ``stream`` and schedule a reopen."""
        self._stream = None
        stream.close()
        if self._schedule.entries:
            self._avoid = stream.state
        self._schedule.stream_lost(now, self._transport.retry.backoff)

    def _open_stream(self) -> None:
        """Open a stream (outside the condition: it may authenticate first)."""
        gate = _forksafe.GATE
        gate.enter_nowait()  # left by the reader thread when the stream ends
        try:
            stream = _Stream(self._transport, self._avoid)
        except exceptions.ClientClosedError:
            gate.leave()
            with self._cond:
                self._stopped = True
            return
        except Exception as error:  # authentication failed, endpoint unusable, ...
            gate.leave()
            with self._cond:
                self._schedule.open_failed(time.monotonic(), self._transport.retry.backoff)
            log.warning("etcd3: could not open the lease keepalive stream: %s", error)
            return
        reader = threading.Thread(target=self._read, args=(stream,), daemon=True,
                                  name="etcd3-lease-keepalive-reader")
        with self._cond:
            if self._stopped or self._fork_paused:
                stream.close()
                gate.leave()
                return
            self._stream = stream
            self._readers = [t for t in self._readers if t.is_alive()] + [reader]
            reader.start()

    # -- replies --------------------------------------------------------------------

    def _read(self, stream: _Stream) -> None:
        error: Optional[BaseException] = None
        try:
            for response in stream.call:
                self._on_response(stream, response)
        except Exception as exc:  # grpc.RpcError, or a closed channel
            error = exc
        finally:
            _forksafe.GATE.leave()
        with self._cond:
            if self._stopped or stream.broken:
                return
            stream.broken = True
            self._cond.notify_all()
        if error is None:
            return
        log.info("etcd3: lease keepalive stream on %s failed: %s", stream.state.name,
                 _errors.status_of(error))
        self._transport.report_failure(stream.state, error)
        if _errors.is_auth_token_error(error):
            try:
                self._transport.refresh_token(stream.state,
                                              self._transport.metadata_for(stream.state))
            except Exception as refresh_error:
                log.warning("etcd3: token refresh for lease keepalive failed: %s",
                            refresh_error)

    def _on_response(self, stream: _Stream, response: Any) -> None:
        now = time.monotonic()
        with self._cond:
            gone = self._schedule.answered(response.ID, response.TTL, now, stream.health)
            self._avoid = None
        self._transport.report_success(stream.state)
        if gone is not None:
            self._report(gone, "the server says it no longer exists")

    @staticmethod
    def _report(entry: LeaseEntry, reason: str) -> None:
        log.warning("etcd3: lease %x could not be kept alive: %s", entry.lease_id, reason)
        owner: LeaseOwner = entry.owner
        lease = owner.lease_ref()
        if lease is None:
            return
        lease._expired = True
        callback = owner.on_expired
        if isinstance(callback, weakref.WeakMethod):
            callback = callback()
        if callback is not None:
            try:
                callback(lease)
            except Exception:
                log.exception("etcd3: on_expired callback of lease %x failed",
                              entry.lease_id)
