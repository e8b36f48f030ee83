"""Read batching: concurrent single-key reads from many threads share one read-only Txn.

A sync gRPC call costs hundreds of microseconds of client CPU and a server round trip,
so many threads issuing gets through one client saturate on per-call overhead long
before the network. While ``max_in_flight`` reads are on the wire, further reads wait
in a queue; whenever a call completes, the queue (up to ``max_batch`` reads) leaves as
ONE read-only transaction, sent by the first waiting thread, and each waiting thread
gets its own RangeResponse back.

Linearizability holds: a read is sent no earlier than it was issued, and etcd serves
a read-only Txn like a Range (a linearizable read unless every op is serializable).
If a batch fails for any reason, every read in it is re-run alone on the normal call
path, so errors (and retries) are exactly those of an unbatched call. A lone reader
never waits: with nothing in flight its call goes out at once, as a plain Range; and
a queued read that finds no free slot within ``max_wait`` (a slow call holds it) goes
out alone. Only single-key reads are batched (see ``KVMixin._range``).
"""

from __future__ import annotations

import threading
import time
from typing import Any, List, Optional, Sequence

from . import codec, exceptions
from ._transport import Method, Transport

_WAITING, _LEAD, _SOLO, _DONE = 0, 1, 2, 3


class _Read:
    __slots__ = ("request", "fields", "deadline", "context", "event", "state", "result",
                 "batch")

    def __init__(self, request: bytes, fields: Sequence[Any], deadline: Optional[float],
                 context: str) -> None:
        self.request = request
        self.fields = fields
        self.deadline = deadline
        self.context = context
        self.event = threading.Event()
        self.state = _WAITING
        self.result: Any = None
        self.batch: List[_Read] = []


class ReadBatcher:
    """Batches concurrent single-key reads of one client (see the module docstring).

    :param max_in_flight: reads (single or batched) allowed on the wire before
        further reads are queued.
    :param max_batch: reads per batch (etcd's --max-txn-ops is 128 by default; a
        server with a lower limit makes the batcher shrink this on the first refusal).
    :param max_wait: seconds a queued read waits for a free slot before it is sent
        on its own, so a slow call in flight never holds other reads back for long.
    """

    def __init__(self, transport: Transport, range_method: Method, txn_method: Method, *,
                 max_in_flight: int = 1, max_batch: int = 64,
                 max_wait: float = 0.02) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be >= 1")
        self._transport = transport
        self._range = range_method
        self._txn = txn_method
        self.max_in_flight = max_in_flight
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._in_flight = 0
        self._pending: List[_Read] = []

    def call(self, request: bytes, fields: Sequence[Any], *, timeout: Any,
             context: str = "") -> Any:
        """Run one Range (``request`` is its wire form, ``fields`` what encoded it).

        :raises Etcd3Exception: as :meth:`Transport.call` would for this Range.
        """
        with self._lock:
            if self._in_flight < self.max_in_flight:
                self._in_flight += 1
                read = None
            else:
                read = _Read(request, fields, self._transport.deadline(timeout), context)
                self._pending.append(read)
        if read is None:
            try:
                return self._transport.call(self._range, request, timeout=timeout,
                                            context=context)
            finally:
                self._release()
        if not read.event.wait(self.max_wait):
            with self._lock:
                stuck = read in self._pending
                if stuck:
                    self._pending.remove(read)
            if stuck:  # the slots are held by slow calls: don't queue behind them
                return self._solo(read)
            read.event.wait()
        if read.state == _LEAD:
            self._lead(read)
        if read.state == _DONE:
            return read.result
        return self._solo(read)

    def _release(self) -> None:
        """Free a slot, or hand it to the first queued read, which sends the batch."""
        with self._lock:
            if not self._pending:
                self._in_flight -= 1
                return
            batch = self._pending[:self.max_batch]
            del self._pending[:self.max_batch]
        leader = batch[0]
        leader.batch = batch
        leader.state = _LEAD
        leader.event.set()

    def _lead(self, leader: _Read) -> None:
        """Send the leader's batch (it holds a slot), hand out the results, pass the
        slot on."""
        batch = leader.batch
        try:
            deadlines = [r.deadline for r in batch if r.deadline is not None]
            timeout: Optional[float] = None
            if deadlines:
                timeout = min(deadlines) - time.monotonic()
                if timeout <= 0:
                    return  # every read falls back to its own call (and deadline)
            if len(batch) == 1:
                leader.result = self._transport.call(self._range, leader.request,
                                                     timeout=timeout,
                                                     context=leader.context)
                leader.state = _DONE
                return
            request = codec.encode_txn_request(
                [], [(codec.OP_RANGE, r.fields) for r in batch])
            try:
                response = self._transport.call(self._txn, request, timeout=timeout)
            except exceptions.TooManyOpsError:
                self.max_batch = max(1, len(batch) // 2)
                return
            header = response.header
            for read, op in zip(batch, response.responses):
                result = op.response_range
                result.header = header
                read.result = result
                read.state = _DONE
        except exceptions.Etcd3Exception:
            return  # each read re-runs alone and meets its own error
        finally:
            for read in batch:
                if read.state != _DONE:
                    read.state = _SOLO
                if read is not leader:
                    read.event.set()
            self._release()

    def _solo(self, read: _Read) -> Any:
        timeout: Optional[float] = None
        if read.deadline is not None:
            timeout = read.deadline - time.monotonic()
            if timeout <= 0:
                raise exceptions.ConnectionTimeoutError(
                    f"Range did not complete within the deadline [{read.context}]")
        return self._transport.call(self._range, read.request, timeout=timeout,
                                    context=read.context)
