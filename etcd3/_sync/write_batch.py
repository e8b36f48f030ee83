"""Write coalescing for the threaded client (opt-in, ``write_batch_in_flight``):
concurrent single-key puts and deletes from many threads share one Txn.

The same rules as the asyncio driver (:mod:`etcd3.aio._write_batch`), from the same
shared pieces: :class:`~etcd3._core.write_batch_policy.WriteBatchPolicy` decides
what leaves together (slots, one write per key on the wire, etcd's limits) and
:mod:`etcd3._grpc.write_batch` what a batch's outcome means for each write.

* A write that may go at once is the plain Put/DeleteRange, sent by its own thread
  on the normal call path: a lone writer is never delayed. So is a queued write
  that ends up leaving alone (its thread is woken up to send it in the slot).
* Queued writes that leave together go as ONE Txn without compares, started
  without blocking (:meth:`~etcd3._sync.transport.Transport.call_future`, same
  retry rules) by the thread that saw the slot free up; gRPC's completion thread
  hands each waiting thread its own response and passes the slot on.
* A batch refused before it was applied re-runs its writes alone (each in its own
  thread); a batch whose outcome is unknown gives each caller a lone write's error.

A queued write whose deadline passes before it is sent fails with
:class:`~etcd3.exceptions.ConnectionTimeoutError` (nothing was sent). Closing the
client fails queued writes with :class:`~etcd3.exceptions.ClientClosedError`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import Any, List, Optional

from .. import exceptions
from .._core.deadline import Deadline, Timeout
from .._core.write_batch_policy import DEFAULT_MAX_BYTES, DEFAULT_MAX_OPS, WriteBatchPolicy
from .._grpc import rpc as _rpc
from .._grpc import write_batch as _batch
from .._grpc.rpc import Method
from . import forksafe as _forksafe
from .transport import Transport

log = logging.getLogger("etcd3")

_QUEUED, _SENT, _GO, _ALONE, _DONE = range(5)


class _Write:
    __slots__ = ("method", "op", "key", "size", "deadline", "context",
                 "ready", "state", "result", "error")

    def __init__(self, method: Method, op: Any, key: bytes, size: int,
                 deadline: Deadline, context: str) -> None:
        self.method = method
        self.op = op
        self.key = key
        self.size = size
        self.deadline = deadline
        self.context = context
        # Released once the write is settled (answered, failed, or told to go).
        self.ready = threading.Lock()
        self.ready.acquire()
        self.state = _QUEUED
        self.result: Any = None
        self.error: Optional[BaseException] = None


class WriteBatcher:
    """Coalesces the concurrent single-key writes of one threaded client (see the
    module docstring); the limits are those of
    :class:`~etcd3._core.write_batch_policy.WriteBatchPolicy`.

    :raises ValueError: a limit is below 1.
    """

    def __init__(self, transport: Transport, *, max_in_flight: int,
                 max_ops: int = DEFAULT_MAX_OPS,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._policy: WriteBatchPolicy[_Write] = WriteBatchPolicy(
            max_in_flight=max_in_flight, max_ops=max_ops, max_bytes=max_bytes)
        self._policy.recorder = transport.recorder
        self._transport = transport
        self._lock = threading.Lock()
        self._closed = False
        _forksafe.register(self)

    @property
    def policy(self) -> WriteBatchPolicy[_Write]:
        """The policy's state (slots, queue, counters), for tests and tuning."""
        return self._policy

    def _after_fork_in_child(self) -> None:
        """In a forked child: the parent's writes (and lock holders) are not ours."""
        self._lock = threading.Lock()
        self._policy.reset()

    def put(self, key: bytes, value: bytes, lease: int, prev_kv: bool, *,
            timeout: Timeout, context: str) -> Any:
        """Put ``key``; returns its PutResponse.

        :raises Etcd3Exception: as the unbatched Put would.
        """
        return self._write(_rpc.PUT, _batch.put_op(key, value, lease, prev_kv),
                           key, len(key) + len(value), timeout, context)

    def delete(self, key: bytes, prev_kv: bool, *, timeout: Timeout, context: str) -> Any:
        """Delete ``key``; returns its DeleteRangeResponse.

        :raises Etcd3Exception: as the unbatched DeleteRange would.
        """
        return self._write(_rpc.DELETE_RANGE, _batch.delete_op(key, prev_kv),
                           key, len(key), timeout, context)

    def _write(self, method: Method, op: Any, key: bytes, size: int,
               timeout: Timeout, context: str) -> Any:
        # The request a write sends alone is encoded only if it does: a batched one
        # travels as its op.
        transport = self._transport
        policy = self._policy
        write = None
        with self._lock:
            closed = self._closed
            if not closed and not policy.try_send(key):
                write = _Write(method, op, key, size, transport.deadline(timeout), context)
                policy.enqueue(write)
        if closed:
            return transport.call(method, _batch.encode_alone(op), timeout=timeout,
                                  context=context)
        if write is None:
            try:
                return transport.call(method, _batch.encode_alone(op), timeout=timeout,
                                      context=context)
            finally:
                self._finished(key, slot=True)
        self._wait(write)
        if write.state == _DONE:
            if write.error is not None:
                raise write.error
            return write.result
        slot = write.state == _GO
        try:
            remaining = write.deadline.remaining()
            if remaining is not None and remaining <= 0:
                raise _batch.expired_queued(method, context)
            return transport.call(method, _batch.encode_alone(op), timeout=remaining,
                                  context=context)
        finally:
            self._finished(key, slot=slot)

    def _wait(self, write: _Write) -> None:
        """Until ``write`` is settled; a queued write whose deadline passes leaves
        the queue and fails (nothing was sent)."""
        remaining = write.deadline.remaining()
        if write.ready.acquire(timeout=-1 if remaining is None else max(remaining, 0)):
            return
        with self._lock:
            expired = write.state == _QUEUED
            if expired:
                self._policy.withdraw(write)
        if expired:
            raise _batch.expired_queued(write.method, write.context)
        write.ready.acquire()  # sent: the batch's call ends by our deadline

    # -- slots and batches --------------------------------------------------------------

    def _finished(self, key: bytes, *, slot: bool) -> None:
        with self._lock:
            self._policy.done(key)
            if slot:
                self._policy.release()
        self._dispatch()

    def _dispatch(self) -> None:
        """Send what may leave now (never blocks: batches are started as futures)."""
        while True:
            with self._lock:
                if self._closed:
                    return
                batch = self._policy.next_batch()
                if batch is None:
                    return
                if len(batch) == 1:
                    batch[0].state = _GO
                else:
                    for write in batch:
                        write.state = _SENT
            if len(batch) == 1:
                batch[0].ready.release()  # its thread sends it, in this slot
            else:
                self._send(batch)

    def _send(self, batch: List[_Write]) -> None:
        timeout = Deadline.earliest(w.deadline for w in batch).remaining()
        if timeout is not None and timeout <= 0:
            self._settle(batch, None, None)
            return
        try:
            future = self._transport.call_future(
                _rpc.TXN, _batch.encode_batch(w.op for w in batch), timeout=timeout,
                context=_batch.BATCH_CONTEXT)
        except exceptions.Etcd3Exception as error:  # not sent (e.g. closed)
            self._settle(batch, None, error)
            return
        except (TypeError, ValueError):  # not sent: each write meets its own error alone
            self._settle(batch, None, None)
            return
        future.add_done_callback(lambda done: self._completed(batch, done))

    def _completed(self, batch: List[_Write], future: concurrent.futures.Future[Any]
                   ) -> None:
        # On gRPC's completion thread (or the transport's retry thread): never block.
        try:
            response = future.result()
        except exceptions.Etcd3Exception as error:
            self._settle(batch, None, error)
            return
        except BaseException as error:  # a defect: the outcome is unknown
            self._settle(batch, None, exceptions.Etcd3Exception(
                f"coalesced write failed: {error!r}"))
            return
        self._settle(batch, response, None)

    def _settle(self, batch: List[_Write], response: Any,
                error: Optional[exceptions.Etcd3Exception]) -> None:
        """Hand out ``response`` or ``error`` (None and None: nothing was sent), then
        pass the batch's slot on."""
        policy = self._policy
        alone = response is None and (error is None or _batch.refused(error))
        if alone:
            if error is not None:
                if isinstance(error, exceptions.TooManyOpsError):
                    policy.too_many_ops(len(batch))
                elif isinstance(error, exceptions.RequestTooLargeError):
                    policy.too_large(policy.batch_bytes(batch))
                log.debug("etcd3: a batch of %d writes was refused (%s); sending them "
                          "one by one", len(batch), error)
            for write in batch:
                write.state = _ALONE  # its key stays busy until its thread sent it
        elif response is not None:
            for write, result in zip(batch, _batch.responses(
                    response, [w.method for w in batch])):
                write.result = result
                write.state = _DONE
        else:
            assert error is not None
            for write in batch:
                write.error = _batch.for_caller(error, write.method, write.context)
                write.state = _DONE
        with self._lock:
            if not alone:
                for write in batch:
                    policy.done(write.key)
            policy.release()
        for write in batch:
            write.ready.release()
        self._dispatch()

    # -- closing --------------------------------------------------------------------------

    def close(self) -> None:
        """Fail the queued writes with ClientClosedError (batches in flight end with
        the transport's close). Idempotent."""
        with self._lock:
            self._closed = True
            queued = self._policy.pending
            self._policy.pending = []
            self._policy.queued = {}
            for write in queued:
                write.error = _batch.closed_queued(write.method, write.context)
                write.state = _DONE
        for write in queued:
            write.ready.release()
