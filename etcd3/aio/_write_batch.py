"""Write coalescing for the asyncio client (opt-in, ``write_batch_in_flight``):
concurrent single-key puts and deletes of one event loop share one Txn.

The rules are those of the sans-I/O
:class:`~etcd3._core.write_batch_policy.WriteBatchPolicy` (slots, per-key order,
etcd's limits) and of :mod:`etcd3._grpc.write_batch` (what a batch's outcome means
for each write), shared with the threaded :mod:`etcd3._sync.write_batch`; this
module sends, hands out results and errors:

* A write that may go at once goes out as the plain Put/DeleteRange, on the normal
  call path (:meth:`~etcd3.aio._transport.AioTransport.call`): a lone writer is
  never delayed and sees exactly the unbatched behaviour. So does a queued write
  that ends up leaving alone.
* Queued writes that leave together go as ONE Txn without compares; each caller
  gets its own PutResponse / DeleteRangeResponse (its ``prev_kv``/``prev_kvs``,
  ``deleted``) with the Txn's header: coalesced writes share one revision.
* A batch that failed before etcd applied it (not sent, or refused: a lease not
  found, too many ops, too large... see
  :func:`~etcd3._grpc.error_causes.may_have_applied`) re-runs its writes alone, so
  only a faulty write fails, with the error it gets alone. A batch whose outcome
  is unknown (sent, then a timeout or a lost connection) is never re-sent: each of
  its callers gets the error a lone write gets in that case ("... may or may not
  have been applied ..."), worded for its own Put/DeleteRange and key.

Cancellation: a caller cancelled while queued leaves the queue (nothing is sent for
it); one cancelled after its batch was sent gets :class:`asyncio.CancelledError`
with the note a lone write gets, and the batch completes for the others. Closing
the client fails queued writes with :class:`~etcd3.exceptions.ClientClosedError`
and stops the batches in flight (their callers get a ClientClosedError saying the
write may or may not have been applied).

The batcher is an engine of the client (:mod:`etcd3.aio._engines`): it belongs to
one event loop, and a new loop gets a new one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, List, Set

from .. import codec, exceptions
from .._core.deadline import NEVER, Deadline, Timeout
from .._core.write_batch_policy import DEFAULT_MAX_BYTES, DEFAULT_MAX_OPS, WriteBatchPolicy
from .._grpc import rpc as _rpc
from .._grpc import write_batch as _batch
from .._grpc.call_rules import Attempts
from .._grpc.rpc import Method
from ._transport import AioTransport, _cancelled_write_note, _note

log = logging.getLogger("etcd3")

# _SENT: in a batch on the wire; _DONE: answered (or sent alone); _UNSENT: failed
# before anything was sent for it.
_QUEUED, _SENT, _GO, _ALONE, _DONE, _UNSENT = range(6)
#: What a queued write's future gets when its caller must send it itself: _GO with
#: the slot the policy took for it, _ALONE (a refused batch re-runs) without one.
_GO_SIGNAL: Any = object()
_ALONE_SIGNAL: Any = object()


class _Write:
    __slots__ = ("method", "request", "op", "key", "size", "deadline", "context",
                 "future", "state")

    def __init__(self, method: Method, request: bytes, op: Any, key: bytes, size: int,
                 deadline: Deadline, context: str, future: asyncio.Future[Any]) -> None:
        self.method = method
        self.request = request
        self.op = op  # (kind, fields) as codec.encode_txn_request takes it
        self.key = key
        self.size = size
        self.deadline = deadline
        self.context = context
        self.future = future
        self.state = _QUEUED


class AioWriteBatcher:
    """Coalesces the concurrent single-key writes of one asyncio client (see the
    module docstring). Made inside the event loop it serves.

    :param max_in_flight: writes (single or batched) on the wire before further
        writes queue.
    :param max_ops: writes per batch (etcd's --max-txn-ops, 128 by default).
    :param max_bytes: keys and values per batch.
    :raises ValueError: a limit is below 1.
    :raises RuntimeError: no event loop is running.
    """

    def __init__(self, transport: AioTransport, *, max_in_flight: int,
                 max_ops: int = DEFAULT_MAX_OPS,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._policy: WriteBatchPolicy[_Write] = WriteBatchPolicy(
            max_in_flight=max_in_flight, max_ops=max_ops, max_bytes=max_bytes)
        self._policy.recorder = transport.recorder
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._tasks: Set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def policy(self) -> WriteBatchPolicy[_Write]:
        """The policy's state (slots, queue, counters), for tests and tuning."""
        return self._policy

    async def put(self, key: bytes, value: bytes, lease: int, prev_kv: bool, *,
                  timeout: Timeout, context: str) -> Any:
        """Put ``key`` (see :meth:`etcd3.aio.Etcd3Client.put`); returns its
        PutResponse.

        :raises Etcd3Exception: as the unbatched Put would.
        """
        request = codec.encode_put_request(key, value, lease, prev_kv)
        return await self._write(_rpc.PUT, request, _batch.put_op(key, value, lease, prev_kv),
                                 key, len(key) + len(value), timeout, context)

    async def delete(self, key: bytes, prev_kv: bool, *, timeout: Timeout,
                     context: str) -> Any:
        """Delete ``key``; returns its DeleteRangeResponse.

        :raises Etcd3Exception: as the unbatched DeleteRange would.
        """
        request = codec.encode_delete_range_request(key, None, prev_kv)
        return await self._write(_rpc.DELETE_RANGE, request, _batch.delete_op(key, prev_kv),
                                 key, len(key), timeout, context)

    async def _write(self, method: Method, request: bytes, op: Any, key: bytes,
                     size: int, timeout: Timeout, context: str) -> Any:
        transport = self._transport
        policy = self._policy
        if self._closed:
            return await transport.call(method, request, timeout=timeout, context=context)
        if policy.try_send(key):
            try:
                return await transport.call(method, request, timeout=timeout,
                                            context=context)
            finally:
                self._finished(key, slot=True)
        write = _Write(method, request, op, key, size, transport.deadline(timeout),
                       context, self._loop.create_future())
        policy.enqueue(write)
        try:
            result = await write.future
        except asyncio.CancelledError as cancelled:
            state = write.state
            write.state = _UNSENT
            if state == _QUEUED:
                policy.withdraw(write)
            elif state in (_GO, _ALONE):  # told to go, not sent yet
                self._finished(key, slot=state == _GO)
            elif state in (_SENT, _DONE):
                _note(cancelled, _cancelled_write_note(
                    Attempts(method, request, NEVER, context, None, False)))
            raise
        if result is _GO_SIGNAL or result is _ALONE_SIGNAL:
            try:
                return await self._alone(write)
            finally:
                self._finished(key, slot=result is _GO_SIGNAL)
        return result

    async def _alone(self, write: _Write) -> Any:
        write.state = _DONE
        remaining = write.deadline.remaining()
        if remaining is not None and remaining <= 0:
            raise _batch.expired_queued(write.method, write.context)
        return await self._transport.call(write.method, write.request, timeout=remaining,
                                          context=write.context)

    # -- slots and batches --------------------------------------------------------------

    def _finished(self, key: bytes, *, slot: bool) -> None:
        """The write to ``key`` is done (and its slot free when ``slot``): send what
        may leave now."""
        policy = self._policy
        policy.done(key)
        if slot:
            policy.release()
        self._dispatch()

    def _dispatch(self) -> None:
        policy = self._policy
        while not self._closed:
            batch = policy.next_batch()
            if batch is None:
                return
            if len(batch) == 1:  # its caller sends it, as a lone write, in this slot
                write = batch[0]
                write.state = _GO
                if not write.future.done():
                    write.future.set_result(_GO_SIGNAL)
                continue
            for write in batch:
                write.state = _SENT
            task = self._loop.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: List[_Write]) -> None:
        """Send ``batch`` (which holds a slot) as one Txn and settle its callers."""
        policy = self._policy
        alone = False
        try:
            alone = await self._answer(batch)
        except asyncio.CancelledError:  # the client is closing (or the loop ends)
            for write in batch:
                _fail(write, _batch.closed_in_flight(write.method, write.context), _DONE)
                policy.done(write.key)
            raise
        except Exception as error:  # a defect: the outcome is unknown, tell each caller
            # (no await since the batch was settled: its keys are still ours)
            for write in batch:
                _fail(write, error, _DONE)
                policy.done(write.key)
        finally:
            policy.release()
        if alone:
            for write in batch:
                if write.future.done():  # its caller is gone: nothing sent for it
                    policy.done(write.key)
                else:
                    write.state = _ALONE
                    write.future.set_result(_ALONE_SIGNAL)
        self._dispatch()

    async def _answer(self, batch: List[_Write]) -> bool:
        """Send ``batch`` and give each caller its response or error; True when the
        batch was refused before it was applied (its writes must re-run alone)."""
        policy = self._policy
        timeout = Deadline.earliest(w.deadline for w in batch).remaining()
        if timeout is not None and timeout <= 0:
            return True  # nothing sent: each meets its own deadline alone
        try:
            request = _batch.encode_batch(w.op for w in batch)
        except (TypeError, ValueError):  # not sent: each write meets its own error alone
            return True
        try:
            response = await self._transport.call(_rpc.TXN, request, timeout=timeout,
                                                  context=_batch.BATCH_CONTEXT)
        except exceptions.Etcd3Exception as error:
            if _batch.refused(error):
                if isinstance(error, exceptions.TooManyOpsError):
                    policy.too_many_ops(len(batch))
                elif isinstance(error, exceptions.RequestTooLargeError):
                    policy.too_large(policy.batch_bytes(batch))
                log.debug("etcd3: a batch of %d writes was refused (%s); sending them "
                          "one by one", len(batch), error)
                return True
            for write in batch:
                _fail(write, _batch.for_caller(error, write.method, write.context), _DONE)
                policy.done(write.key)
            return False
        for write, result in zip(batch, _batch.responses(response,
                                                         [w.method for w in batch])):
            write.state = _DONE
            if not write.future.done():
                write.future.set_result(result)
            policy.done(write.key)
        return False

    # -- engine protocol ------------------------------------------------------------------

    def _stop(self) -> None:
        self._closed = True
        policy = self._policy
        for write in policy.pending:
            _fail(write, _batch.closed_queued(write.method, write.context), _UNSENT)
        policy.pending = []
        policy.queued = {}
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Fail the queued writes, stop the batches in flight and wait for them."""
        self._stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def close(self) -> None:
        """Like :meth:`aclose` without waiting; safe from any thread."""
        try:
            if asyncio.get_running_loop() is self._loop:
                self._stop()
                return
        except RuntimeError:
            pass
        try:
            self._loop.call_soon_threadsafe(self._stop)
        except RuntimeError:  # the loop is closed: its tasks are gone already
            pass


def _fail(write: _Write, error: BaseException, state: int) -> None:
    write.state = state
    if not write.future.done():
        write.future.set_exception(error)
        # A caller that was cancelled meanwhile never retrieves it.
        write.future.add_done_callback(_consume)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
