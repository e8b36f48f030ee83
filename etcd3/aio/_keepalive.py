"""The one lease keepalive stream of an asyncio client, driven by tasks.

Every kept-alive lease of a client shares one ``LeaseKeepAlive`` stream. When each
keepalive is due and when a lease is lost is decided by
:class:`etcd3._core.keepalive_schedule.KeepAliveSchedule` (as for threads); here a
scheduler task sends what it says is due, reopens the stream on another endpoint
when it breaks or stalls, and reports lost leases (``lease._expired`` and
``on_expired``, which may be a plain function or a coroutine function). A reader
task per stream consumes the replies.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import weakref
from typing import Any, AsyncIterator, Callable, Optional, Set

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
from ..pool import EndpointState
from ._transport import AioTransport

log = logging.getLogger("etcd3")

ExpiredCallback = Callable[[Any], Any]




class _Stream:
    """One open LeaseKeepAlive call, its request queue and health counters."""

    def __init__(self, call: Any, state: EndpointState,
                 requests: asyncio.Queue[Optional[int]]) -> None:
        self.call = call
        self.state = state
        self.requests = requests
        self.broken = False
        self.health = StreamHealth()
        self.reader: Optional[asyncio.Task[None]] = None

    def close(self) -> None:
        self.broken = True
        self.requests.put_nowait(None)
        self.call.cancel()


async def _requests(queue: asyncio.Queue[Optional[int]]) -> AsyncIterator[Any]:
    while True:
        lease_id = await queue.get()
        if lease_id is None:
            return
        yield pb.LeaseKeepAliveRequest(ID=lease_id)


class AioKeepAliveEngine:
    """Keeps leases alive over a single stream, on one event loop.

    :meth:`add` starts keeping a lease alive, :meth:`remove` stops; :meth:`aclose`
    ends the tasks and the stream. Leases that can't be kept alive get
    ``lease._expired = True`` and their ``on_expired(lease)`` callback.
    """

    def __init__(self, transport: AioTransport) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._schedule = KeepAliveSchedule(transport.recorder)
        self._wake = asyncio.Event()
        self._task: Optional[asyncio.Task[None]] = None
        #: Opening a stream (it may authenticate first, retrying for the client
        #: timeout): a task of its own, so that expiries are reported meanwhile.
        self._opening: Optional[asyncio.Task[None]] = None
        self._stream: Optional[_Stream] = None
        self._stopped = False
        self._avoid: Optional[EndpointState] = None
        self._callbacks: Set[asyncio.Task[Any]] = set()

    # -- public ---------------------------------------------------------------------

    def add(self, lease: Any, on_expired: Optional[ExpiredCallback] = None) -> None:
        """Keep ``lease`` alive from now on (a first keepalive is sent at once).

        ``on_expired`` may be a :class:`weakref.WeakMethod`.
        :raises ClientClosedError: the client was closed.
        """
        if self._stopped or self._transport.closed:
            raise exceptions.ClientClosedError("this etcd3 client has been closed")
        self._schedule.add(int(lease.id), int(lease.ttl), time.monotonic(),
                           LeaseOwner(lease, on_expired))
        if self._task is None:
            self._task = self._loop.create_task(self._run(),
                                                name="etcd3-lease-keepalive")
        self._wake.set()

    def remove(self, lease_id: int) -> bool:
        """Stop keeping ``lease_id`` alive; True if it was kept alive."""
        removed = self._schedule.remove(int(lease_id)) is not None
        if removed:
            self._wake.set()
        return removed

    def is_kept_alive(self, lease_id: int) -> bool:
        return int(lease_id) in self._schedule.entries

    def alive_until(self, lease_id: int) -> Optional[float]:
        """The monotonic time until which ``lease_id`` is known to be alive (its last
        renewal plus its TTL), or None when it is not kept alive here."""
        return self._schedule.alive_until(int(lease_id))

    @property
    def current(self) -> bool:
        """False once the engine's event loop is gone or another loop runs (the
        engine's tasks ended with its loop)."""
        if self._stopped or self._loop.is_closed():
            return False
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return True

    @property
    def stream_endpoint(self) -> Optional[str]:
        """The endpoint the stream runs on now (None: no stream open)."""
        stream = self._stream
        return None if stream is None or stream.broken else stream.state.name

    def _stop(self) -> None:
        self._stopped = True
        self._schedule.entries.clear()
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        for task in [self._task, self._opening, *self._callbacks]:
            if task is not None:
                task.cancel()

    def close(self) -> None:
        """Stop the tasks and the stream without waiting (any thread; leases are not
        revoked: they expire after their TTL). Idempotent."""
        if self._loop.is_closed():
            self._stopped = True
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._stop()
        else:
            try:
                self._loop.call_soon_threadsafe(self._stop)
            except RuntimeError:  # the loop closed meanwhile
                self._stopped = True

    async def aclose(self) -> None:
        """Stop the tasks and the stream and wait for them to end. Idempotent."""
        reader = self._stream.reader if self._stream is not None else None
        opening = self._opening
        self._stop()
        tasks = [t for t in (self._task, opening, reader, *self._callbacks)
                 if t is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- scheduler ------------------------------------------------------------------

    async def _sleep(self, pause: Optional[float]) -> None:
        try:
            if pause is None:
                await self._wake.wait()
            else:
                await asyncio.wait_for(self._wake.wait(), pause)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def _run(self) -> None:
        schedule = self._schedule
        try:
            while not self._stopped:
                now = time.monotonic()
                expired = schedule.pop_expired(now)
                stream = self._stream
                if stream is not None and (stream.broken or not schedule.entries
                                           or self._stalled(stream, now)):
                    self._drop_stream(stream, now)
                if not schedule.entries and not expired:
                    await self._sleep(None)
                    continue
                if (self._stream is None and self._opening is None
                        and schedule.should_open(now)):
                    self._opening = self._loop.create_task(
                        self._open_stream(), name="etcd3-lease-keepalive-open")
                stream = self._stream
                if stream is not None:
                    for lease_id in schedule.due(now, stream.health):
                        stream.requests.put_nowait(lease_id)
                pause = schedule.next_wakeup(now, stream is not None,
                                             opening=self._opening is not None)
                for entry in expired:
                    self._report(entry, "no keepalive reply within its TTL")
                if pause > 0:
                    await self._sleep(pause)
        except Exception:  # a bug: say so, rather than stop renewing in silence
            log.exception("etcd3: the lease keepalive task failed; leases are no "
                          "longer renewed")
            raise
        finally:
            # Cancelled (client closed, or the loop ends: asyncio.run cancels what is
            # left) or stopped: nothing may outlive the task.
            stream, self._stream = self._stream, None
            if stream is not None:
                stream.close()
            if self._opening is not None:
                self._opening.cancel()

    def _stalled(self, stream: _Stream, now: float) -> bool:
        if not self._schedule.stalled(stream.health, now):
            return False
        log.info("etcd3: lease keepalive stream on %s unanswered; moving it",
                 stream.state.name)
        self._transport.pool.mark_failed(stream.state)
        return True

    def _drop_stream(self, stream: _Stream, now: float) -> None:
        """Forget ``stream`` and schedule a reopen."""
        self._stream = None
        stream.close()
        if self._schedule.entries:
            self._avoid = stream.state
        self._schedule.stream_lost(now, self._transport.retry.backoff)

    async def _open_stream(self) -> None:
        try:
            await self._open()
        finally:
            self._opening = None
            self._wake.set()

    async def _open(self) -> None:
        requests: asyncio.Queue[Optional[int]] = asyncio.Queue()
        try:
            call, state = await self._transport.open_stream(
                _rpc.LEASE_KEEPALIVE, _requests(requests), avoid=self._avoid)
        except exceptions.ClientClosedError:
            self._stopped = True
            return
        except Exception as error:  # authentication failed, endpoint unusable, ...
            self._schedule.open_failed(time.monotonic(), self._transport.retry.backoff)
            log.warning("etcd3: could not open the lease keepalive stream: %s", error)
            return
        stream = _Stream(call, state, requests)
        if self._stopped:
            stream.close()
            return
        self._stream = stream
        stream.reader = self._loop.create_task(self._read(stream),
                                               name="etcd3-lease-keepalive-reader")

    # -- replies --------------------------------------------------------------------

    async def _read(self, stream: _Stream) -> None:
        error: Optional[BaseException] = None
        try:
            async for response in stream.call:
                self._on_response(stream, response)
        except asyncio.CancelledError:
            if not stream.broken or _cancelling():
                raise  # this task itself was cancelled (the loop ends)
            return  # only the call was cancelled, by _Stream.close
        except Exception as exc:  # grpc.RpcError, or a closed channel
            error = exc
        if self._stopped or stream.broken:
            return
        stream.broken = True
        self._wake.set()
        if error is None:
            return
        log.info("etcd3: lease keepalive stream on %s failed: %s", stream.state.name,
                 _errors.status_of(error))
        self._transport.report_failure(stream.state, error)
        if _errors.is_auth_token_error(error):
            try:
                rejected = await self._transport.metadata_for(stream.state)
                await self._transport.refresh_token(stream.state, rejected)
            except Exception as refresh_error:
                log.warning("etcd3: token refresh for lease keepalive failed: %s",
                            refresh_error)

    def _on_response(self, stream: _Stream, response: Any) -> None:
        gone = self._schedule.answered(response.ID, response.TTL, time.monotonic(),
                                       stream.health)
        self._avoid = None
        self._transport.report_success(stream.state)
        if gone is not None:
            self._report(gone, "the server says it no longer exists")

    def _report(self, entry: LeaseEntry, reason: str) -> None:
        log.warning("etcd3: lease %x could not be kept alive: %s", entry.lease_id, reason)
        owner: LeaseOwner = entry.owner
        lease = owner.lease_ref()
        if lease is None:
            return
        lease._expired = True
        callback = owner.on_expired
        if isinstance(callback, weakref.WeakMethod):
            callback = callback()
        if callback is None:
            return
        try:
            result = callback(lease)
        except Exception:
            log.exception("etcd3: on_expired callback of lease %x failed", entry.lease_id)
            return
        if inspect.isawaitable(result):
            task = self._loop.create_task(_awaited(result, entry.lease_id))
            self._callbacks.add(task)
            task.add_done_callback(self._callbacks.discard)


def _cancelling() -> bool:
    """True when the running task itself is being cancelled (Python 3.11+ can tell;
    before, a cancelled call and a cancelled task look alike)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


async def _awaited(result: Any, lease_id: int) -> None:
    try:
        await result
    except Exception:
        log.exception("etcd3: on_expired callback of lease %x failed", lease_id)
