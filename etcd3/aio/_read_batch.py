"""Read batching for the asyncio client: concurrent single-key reads of one event loop
share one read-only Txn.

The rules are those of the threaded :mod:`etcd3._sync.read_batch` (see there for the
why of each), decided by the same sans-I/O
:class:`~etcd3._core.read_batch_policy.ReadBatchPolicy`:

* While ``max_in_flight`` reads are on the wire, further reads are queued; when a
  call completes, the queue (up to ``max_batch`` reads) leaves as ONE read-only
  transaction, and each waiting task gets its own RangeResponse. A lone reader never
  waits: with a slot free its read goes out at once, as a plain Range.
* A queued read that finds no slot within the policy's wait limit goes out alone.
* Gathering: after a batch of several reads, its slot waits (at most ``gather``
  seconds) for the readers it just answered to queue their next reads. In asyncio
  those readers run in the next loop iteration, before any timer, so a reader that
  comes straight back is never missed.
* Server safety: a batch to an endpoint not known to be safe for a read-only Txn
  whose context ends (etcd 3.5.0-3.5.4, etcd #14110; see
  :meth:`~etcd3._grpc.call_rules.CallRules.read_txn_safe`) goes without a gRPC
  deadline and is never cancelled: at its deadline, or when the client closes, it is
  left to finish on the server (see :meth:`~etcd3.aio._transport.AioTransport.call_once`).
* A batch that fails for any reason re-runs each of its reads alone on the normal
  call path (:meth:`~etcd3.aio._transport.AioTransport.call`), so errors and retries
  are exactly those of an unbatched read.

Cancellation: a cancelled reader still in the queue leaves it; one whose read is
already in a batch just stops waiting (the batch, a read, completes for the others).
Closing the client cancels the batches in flight; their readers then meet the
closed client's error.

The batcher is an engine of the client (:mod:`etcd3.aio._engines`): it belongs to
one event loop, and a new loop gets a new one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, List, Optional, Sequence, Set

import grpc

from .. import codec, exceptions
from .._core.deadline import Deadline, Timeout
from .._core.read_batch_policy import ReadBatchPolicy
from .._grpc import errors as _errors
from .._grpc.rpc import Method
from ._transport import AioTransport

log = logging.getLogger("etcd3")

_QUEUED, _SENT, _ALONE = 0, 1, 2  # _ALONE: taken out of the queue, to go out alone
#: A queued read's future gets this when the read must be sent on its own.
_SOLO: Any = object()


class _Read:
    __slots__ = ("request", "fields", "deadline", "context", "future", "state",
                 "queued_at")

    def __init__(self, request: bytes, fields: Sequence[Any], deadline: Deadline,
                 context: str, future: asyncio.Future[Any], queued_at: float) -> None:
        self.request = request
        self.fields = fields
        self.deadline = deadline
        self.context = context
        self.future = future
        self.state = _QUEUED
        self.queued_at = queued_at


class AioReadBatcher:
    """Batches the concurrent single-key reads of one asyncio client (see the module
    docstring); the parameters are those of
    :class:`~etcd3._core.read_batch_policy.ReadBatchPolicy`. Made inside the event
    loop it serves.

    :raises ValueError: ``max_in_flight`` or ``max_batch`` is below 1.
    :raises RuntimeError: no event loop is running.
    """

    def __init__(self, transport: AioTransport, range_method: Method, txn_method: Method,
                 *, max_in_flight: int = 1, max_batch: int = 64, max_wait: float = 0.02,
                 gather: float = 0.0003) -> None:
        self._policy: ReadBatchPolicy[_Read] = ReadBatchPolicy(
            max_in_flight=max_in_flight, max_batch=max_batch, max_wait=max_wait,
            gather=gather)
        self._policy.recorder = transport.recorder
        self._transport = transport
        self._range = range_method
        self._txn = txn_method
        self._loop = asyncio.get_running_loop()
        self._tasks: Set[asyncio.Task[None]] = set()
        # While a finished batch's slot gathers: the future the read that brings the
        # queue to the policy's gather target completes.
        self._gathering: Optional[asyncio.Future[bool]] = None
        # One timer for the oldest queued read's wait limit (not one per read).
        self._expiry: Optional[asyncio.TimerHandle] = None
        self._closed = False

    @property
    def policy(self) -> ReadBatchPolicy[_Read]:
        """The policy's state (slots, queue, gathering), for tests and tuning."""
        return self._policy

    async def call(self, request: bytes, fields: Sequence[Any], *, timeout: Timeout,
                   context: str = "") -> Any:
        """Run one single-key Range (``request`` is its wire form, ``fields`` what
        encoded it) and return its RangeResponse.

        :raises Etcd3Exception: as :meth:`AioTransport.call` would for this Range.
        """
        transport = self._transport
        policy = self._policy
        if self._closed:
            return await transport.call(self._range, request, timeout=timeout,
                                        context=context)
        if policy.try_send():
            try:
                return await transport.call(self._range, request, timeout=timeout,
                                            context=context)
            finally:
                self._release()
        loop = self._loop
        read = _Read(request, fields, transport.deadline(timeout), context,
                     loop.create_future(), loop.time())
        policy.enqueue(read)
        if self._expiry is None:
            self._expiry = loop.call_at(read.queued_at + policy.wait_limit(),
                                        self._expire)
        gathering = self._gathering
        if gathering is not None and policy.gathered_enough():
            self._gathering = None
            if not gathering.done():
                gathering.set_result(True)
        try:
            result = await read.future
        except asyncio.CancelledError:
            if read.state == _QUEUED:
                policy.withdraw(read)
            raise
        if result is _SOLO:
            return await self._solo(read)
        return result

    # -- the queue ----------------------------------------------------------------------

    def _expire(self) -> None:
        """Send alone every queued read that has waited its wait limit (the slots are
        held by slow calls: don't queue behind them); re-arm for the oldest left."""
        self._expiry = None
        policy = self._policy
        if not policy.pending:
            return
        limit = policy.wait_limit()
        now = self._loop.time()
        while policy.pending and policy.pending[0].queued_at + limit <= now:
            read = policy.pending[0]
            policy.withdraw(read)
            read.state = _ALONE
            if not read.future.done():
                read.future.set_result(_SOLO)
        if policy.pending:
            self._expiry = self._loop.call_at(policy.pending[0].queued_at + limit,
                                              self._expire)

    def _release(self) -> None:
        """Free a slot, or send the queued reads in it."""
        batch = self._policy.next_batch()
        if batch is None:
            return
        for read in batch:
            read.state = _SENT
        if not self._policy.pending and self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        task = self._loop.create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: List[_Read]) -> None:
        """Run the call for ``batch`` (which holds a slot), hand out the results, then
        pass the slot on."""
        gather = False
        try:
            gather = await self._answer(batch)
        except asyncio.CancelledError:  # closing, or the loop ends
            _settle(batch)
            raise
        except Exception as error:  # each read re-runs alone and meets its own error
            if isinstance(error, grpc.RpcError):
                message = _errors.etcd_message(_errors.status_of(error)[1])
                if _errors.exception_class_for(message) is exceptions.TooManyOpsError:
                    self._policy.too_many_ops(len(batch))
            log.debug("etcd3: batch of %d reads failed (%s); sending them one by one",
                      len(batch), error)
        _settle(batch)
        if gather:
            await self._gather(len(batch))
        self._release()

    async def _answer(self, batch: List[_Read]) -> bool:
        """Send ``batch`` as one call and give each read its response; True when
        the batch's slot should gather (it held several reads)."""
        timeout = Deadline.earliest(r.deadline for r in batch).remaining()
        if timeout is not None and timeout <= 0:
            raise exceptions.ConnectionTimeoutError("batch deadline passed")
        sent_at = self._loop.time()
        if len(batch) == 1:
            read = batch[0]
            response = await self._transport.call_once(self._range, read.request,
                                                       timeout=timeout)
            self._policy.answered(self._loop.time() - sent_at, len(batch))
            if not read.future.done():
                read.future.set_result(response)
            return False
        request = codec.encode_txn_request([], [(codec.OP_RANGE, r.fields) for r in batch])
        response = await self._transport.call_once(self._txn, request, timeout=timeout,
                                                   read_only_txn=True)
        self._policy.answered(self._loop.time() - sent_at, len(batch))
        header = response.header
        for read, op in zip(batch, response.responses):
            result = op.response_range
            result.header = header
            if not read.future.done():
                read.future.set_result(result)
        return True

    async def _gather(self, answered: int) -> None:
        """Hold the slot until the ``answered`` readers queue their next reads (at
        most ``gather`` seconds), when the policy says so."""
        policy = self._policy
        if not policy.start_gathering(answered):
            return
        gathering = self._gathering = self._loop.create_future()
        timer = self._loop.call_later(policy.gather, _time_out, gathering)
        try:
            gathered = await gathering
        finally:
            timer.cancel()
            if self._gathering is gathering:
                self._gathering = None
        policy.gathering_ended(gathered)

    async def _solo(self, read: _Read) -> Any:
        timeout = read.deadline.remaining()
        if timeout is not None and timeout <= 0:
            raise exceptions.ConnectionTimeoutError(
                f"Range did not complete within the deadline [{read.context}]")
        return await self._transport.call(self._range, read.request, timeout=timeout,
                                          context=read.context)

    # -- engine protocol ------------------------------------------------------------------

    def _stop(self) -> None:
        self._closed = True
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        for read in self._policy.pending:
            read.state = _ALONE
            if not read.future.done():
                read.future.set_result(_SOLO)
        self._policy.reset()
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Cancel the batches in flight (their readers re-run alone and meet the
        closed client) and wait for them."""
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


def _settle(batch: List[_Read]) -> None:
    """Wake the batch's unanswered readers: they re-run their read alone."""
    for read in batch:
        if not read.future.done():
            read.future.set_result(_SOLO)


def _time_out(gathering: asyncio.Future[bool]) -> None:
    if not gathering.done():
        gathering.set_result(False)
