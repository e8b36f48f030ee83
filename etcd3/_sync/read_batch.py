"""Read batching: concurrent single-key reads from many threads share one read-only Txn.

A sync gRPC call costs hundreds of microseconds of client CPU and a server round trip,
so many threads issuing gets through one client saturate on per-call overhead long
before the network. While ``max_in_flight`` reads are on the wire, further reads wait
in a queue; whenever a call completes, the queue (up to ``max_batch`` reads) leaves as
ONE read-only transaction, and each waiting thread gets its own RangeResponse. The
batch is sent without blocking by whichever thread saw the slot free up (a reader
finishing its own call, or gRPC's completion thread finishing a batch), so no thread
has to be woken up to send it.

Gathering: the threads a finished batch wakes up usually come straight back with
their next read. Sending the queue before they are back would split the readers into
two halves that take turns, each waiting a whole round trip for the other; so after a
batch of several reads, its slot waits (at most ``gather`` seconds, on gRPC's
completion thread) until as many reads are queued as were just answered. When the
readers stop coming back that fast, gathering turns itself off (and is retried now
and then).

Linearizability holds: a read is sent no earlier than it was issued, and etcd serves
a read-only Txn like a Range (a linearizable read unless every op is serializable).

Server safety: etcd 3.5.0 to 3.5.4 panic when a read-only Txn's context ends while it
is applied (etcd issue #14110): a batch whose deadline passes, or which is cancelled,
at the wrong moment would crash the member. So a batch sent to an endpoint not known
(see ``Transport.read_txn_safe``) to be unaffected goes without a gRPC deadline and
is never cancelled: its readers stop waiting for it at the attempt's deadline (the
batch is then *abandoned*: its slot is freed, its readers re-run their reads alone,
and it is left to finish on the server), and closing the client gives it a moment
to finish first.
If a batch fails for any reason, every read in it is re-run alone on the normal call
path, so errors (and retries) are exactly those of an unbatched call. A lone reader
never waits: with nothing in flight its call goes out at once, as a plain Range; and
a queued read that finds no free slot within ``max_wait`` (or three typical round
trips, on a slow link) goes out alone, since a slow call holds the slot. Only
single-key reads are batched (see ``KVMixin._range``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, List, Optional, Sequence

import grpc

from .. import codec, exceptions
from .._core.deadline import Deadline
from .._core.read_batch_policy import ReadBatchPolicy
from .._grpc import errors as _errors
from .._grpc.rpc import Method
from . import forksafe as _forksafe
from .transport import NoDeadline, Transport

log = logging.getLogger("etcd3")

_QUEUED, _SENT, _DONE, _SOLO = 0, 1, 2, 3
_NEVER = float("inf")


class _Batch:
    """Reads sent together, and how long their readers wait for the call."""

    __slots__ = ("reads", "give_up_at", "no_deadline", "over")

    def __init__(self, reads: List[_Read]) -> None:
        self.reads = reads
        # None until the call is started; then when its readers stop waiting for it
        # (inf: the call carries its own gRPC deadline, so they never need to).
        self.give_up_at: Optional[float] = None
        self.no_deadline: Optional[NoDeadline] = None
        # Set (under the batcher's lock) once the call's answer is being handed out
        # or the batch was abandoned: whichever comes first owns the readers.
        self.over = False


class _Read:
    __slots__ = ("request", "fields", "deadline", "context", "ready", "state", "result",
                 "batch")

    def __init__(self, request: bytes, fields: Sequence[Any], deadline: Deadline,
                 context: str) -> None:
        self.request = request
        self.fields = fields
        self.deadline = deadline
        self.context = context
        # Released once the read is settled (_DONE or _SOLO); a bare lock is the
        # cheapest one-shot signal between two threads.
        self.ready = threading.Lock()
        self.ready.acquire()
        self.state = _QUEUED
        self.result: Any = None
        self.batch: Optional[_Batch] = None


class ReadBatcher:
    """Batches concurrent single-key reads of one client (see the module docstring);
    when they ride together is decided by
    :class:`~etcd3._core.read_batch_policy.ReadBatchPolicy` (its parameters are
    these).

    :raises ValueError: ``max_in_flight`` or ``max_batch`` is below 1.
    """

    GATHER_MISSES_TO_PAUSE = ReadBatchPolicy.GATHER_MISSES_TO_PAUSE
    GATHER_RETRY_EVERY = ReadBatchPolicy.GATHER_RETRY_EVERY

    def __init__(self, transport: Transport, range_method: Method, txn_method: Method, *,
                 max_in_flight: int = 1, max_batch: int = 64,
                 max_wait: float = 0.02, gather: float = 0.0003) -> None:
        self._policy: ReadBatchPolicy[_Read] = ReadBatchPolicy(
            max_in_flight=max_in_flight, max_batch=max_batch, max_wait=max_wait,
            gather=gather)
        self._policy.recorder = transport.recorder
        self._transport = transport
        self._range = range_method
        self._txn = txn_method
        self._lock = threading.Lock()
        # While a finished batch's slot gathers: a held lock, released by the read
        # that brings the queue to the policy's gather target.
        self._gathering: Optional[threading.Lock] = None
        _forksafe.register(self)

    @property
    def max_in_flight(self) -> int:
        return self._policy.max_in_flight

    @property
    def max_batch(self) -> int:
        return self._policy.max_batch

    @property
    def gather(self) -> float:
        return self._policy.gather

    @gather.setter
    def gather(self, seconds: float) -> None:
        self._policy.gather = seconds

    @property
    def _in_flight(self) -> int:
        return self._policy.in_flight

    @_in_flight.setter
    def _in_flight(self, count: int) -> None:
        self._policy.in_flight = count

    @property
    def _pending(self) -> List[_Read]:
        return self._policy.pending

    @property
    def _gather_misses(self) -> int:
        return self._policy.gather_misses

    @_gather_misses.setter
    def _gather_misses(self, count: int) -> None:
        self._policy.gather_misses = count

    def _after_fork_in_child(self) -> None:
        """In a forked child: the parent's reads in flight (and lock holders) are not
        ours; start empty."""
        self._lock = threading.Lock()
        self._policy.reset()
        self._gathering = None

    def call(self, request: bytes, fields: Sequence[Any], *, timeout: Any,
             context: str = "") -> Any:
        """Run one Range (``request`` is its wire form, ``fields`` what encoded it).

        :raises Etcd3Exception: as :meth:`Transport.call` would for this Range.
        """
        policy = self._policy
        with self._lock:
            if policy.try_send():
                read = None
            else:
                read = _Read(request, fields, self._transport.deadline(timeout), context)
                policy.enqueue(read)
                gathering = self._gathering
                if gathering is not None and policy.gathered_enough():
                    self._gathering = None
                    gathering.release()
        if read is None:
            try:
                return self._transport.call(self._range, request, timeout=timeout,
                                            context=context)
            finally:
                self._release()
        if not read.ready.acquire(timeout=policy.wait_limit()):
            with self._lock:
                stuck = read.state == _QUEUED
                if stuck:
                    policy.withdraw(read)
            if stuck:  # the slots are held by slow calls: don't queue behind them
                return self._solo(read)
            self._wait_sent(read)
        if read.state == _DONE:
            return read.result
        return self._solo(read)

    def _wait_sent(self, read: _Read) -> None:
        """Wait until ``read``'s batch is answered, or abandon the batch when its
        call (sent without a deadline) is not answered in time."""
        ready = read.ready
        while True:
            batch = read.batch
            give_up_at = None if batch is None else batch.give_up_at
            if give_up_at is None:  # the call is being started: look again shortly
                if ready.acquire(timeout=0.001):
                    return
            elif give_up_at == _NEVER:
                ready.acquire()
                return
            elif ready.acquire(timeout=max(give_up_at - time.monotonic(), 0.0)):
                return
            else:
                assert batch is not None
                if not self._abandon(batch):  # its answer is being handed out
                    ready.acquire()
                return

    def _abandon(self, batch: _Batch) -> bool:
        """Stop waiting for ``batch``'s call, unless its answer is being handed out
        (False): its readers re-run their reads alone and its slot is passed on; the
        call is left to finish on the server (see the module docstring)."""
        with self._lock:
            if batch.over:
                return False
            batch.over = True
        assert batch.no_deadline is not None
        self._transport.abandon(batch.no_deadline)
        self._settle(batch.reads)
        return True

    def _release(self) -> None:
        """Free a slot, or send the queued reads in it."""
        with self._lock:
            reads = self._policy.next_batch()
            if reads is None:
                return
            batch = _Batch(reads)
            for read in reads:
                read.state = _SENT
                read.batch = batch
        self._send(batch)

    def _send(self, batch: _Batch) -> None:
        """Start the call for ``batch`` (which holds a slot) without waiting for it."""
        reads = batch.reads
        try:
            timeout = Deadline.earliest(r.deadline for r in reads).remaining()
            if timeout is not None and timeout <= 0:
                raise exceptions.ConnectionTimeoutError("batch deadline passed")
            if len(reads) == 1:
                call, no_deadline = self._transport.start_once(
                    self._range, reads[0].request, timeout=timeout)
            else:
                request = codec.encode_txn_request(
                    [], [(codec.OP_RANGE, r.fields) for r in reads])
                call, no_deadline = self._transport.start_once(
                    self._txn, request, timeout=timeout, read_only_txn=True)
        except Exception:  # each read re-runs alone and meets its own error
            batch.over = True
            self._settle(reads)
            return
        sent_at = time.monotonic()
        batch.no_deadline = no_deadline
        if no_deadline is None or no_deadline.wait is None:
            batch.give_up_at = _NEVER
        else:
            batch.give_up_at = sent_at + no_deadline.wait
        call.add_done_callback(lambda done: self._finished(batch, done, sent_at))

    def _finished(self, sent: _Batch, call: Any, sent_at: float) -> None:
        # Runs on gRPC's completion thread (or the sender's, if the call failed at
        # once): hand out the results, then pass the slot on.
        with self._lock:
            if sent.over:  # abandoned: its readers and slot have moved on
                return
            sent.over = True
        batch = sent.reads
        try:
            response = call.result()
            self._policy.answered(time.monotonic() - sent_at, len(batch))
            if len(batch) == 1:
                batch[0].result = response
                batch[0].state = _DONE
                gather = False
            else:
                header = response.header
                for read, op in zip(batch, response.responses):
                    result = op.response_range
                    result.header = header
                    read.result = result
                    read.state = _DONE
                gather = True
        except Exception as error:  # each read re-runs alone and meets its own error
            gather = False
            if isinstance(error, grpc.RpcError):
                message = _errors.etcd_message(_errors.status_of(error)[1])
                if _errors.exception_class_for(message) is exceptions.TooManyOpsError:
                    self._policy.too_many_ops(len(batch))
            log.debug("etcd3: batch of %d reads failed (%s); sending them one by one",
                      len(batch), error)
        self._settle(batch, gather=gather)

    def _settle(self, batch: List[_Read], *, gather: bool = False) -> None:
        """Wake the batch's readers (the unanswered ones re-run their read alone), then
        pass its slot on, after gathering their next reads when ``gather``."""
        gathering = self._start_gathering(len(batch)) if gather else None
        try:
            for read in batch:
                if read.state != _DONE:
                    read.state = _SOLO
                read.ready.release()
        finally:
            if gathering is not None:
                gathered = gathering.acquire(timeout=self.gather)
                with self._lock:
                    if self._gathering is gathering:
                        self._gathering = None
                    self._policy.gathering_ended(gathered)
            self._release()

    def _start_gathering(self, answered: int) -> Optional[threading.Lock]:
        """A held lock to wait on until ``answered`` more reads are queued, or None
        when gathering is off or not needed."""
        with self._lock:
            if not self._policy.start_gathering(answered):
                return None
            gathering = threading.Lock()
            gathering.acquire()
            self._gathering = gathering
        return gathering

    def _solo(self, read: _Read) -> Any:
        timeout = read.deadline.remaining()
        if timeout is not None and timeout <= 0:
            raise exceptions.ConnectionTimeoutError(
                f"Range did not complete within the deadline [{read.context}]")
        return self._transport.call(self._range, read.request, timeout=timeout,
                                    context=read.context)
