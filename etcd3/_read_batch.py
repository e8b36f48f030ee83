"""Read batching: concurrent Range calls from many threads share one read-only Txn.

A sync gRPC call costs hundreds of microseconds of client CPU and a server round trip,
so many threads issuing gets through one client saturate on per-call overhead long
before the network. While ``max_in_flight`` Range calls are on the wire, further reads
wait in a queue; when a call completes, the queue (up to ``max_batch`` reads) leaves
as ONE read-only transaction whose range ops are answered together, and each waiting
thread gets its own RangeResponse back.

Linearizability holds: a read is sent no earlier than it was issued, and etcd serves
a read-only Txn like a Range (a linearizable read unless every op is serializable).
If a batch fails for any reason, every read in it is re-run alone on the normal call
path, so errors (and retries) are exactly those of an unbatched call. A lone reader
never waits: with nothing in flight its call goes out at once, as a plain Range.
"""

from __future__ import annotations

import threading
import time
from typing import Any, List, Optional, Sequence

from . import codec, exceptions
from ._transport import Method, Transport

_WAITING, _LEAD, _SOLO, _DONE = 0, 1, 2, 3


class _Read:
    __slots__ = ("request", "fields", "deadline", "context", "event", "role", "result",
                 "batch")

    def __init__(self, request: bytes, fields: Sequence[Any], deadline: Optional[float],
                 context: str) -> None:
        self.request = request
        self.fields = fields
        self.deadline = deadline
        self.context = context
        self.event = threading.Event()
        self.role = _WAITING
        self.result: Any = None
        self.batch: List[_Read] = []


class ReadBatcher:
    """Batches concurrent Range calls of one client (see the module docstring).

    :param max_in_flight: Range RPCs allowed on the wire before reads are queued.
    :param max_batch: reads per batch (etcd's --max-txn-ops is 128 by default; a
        server with a lower limit makes the batcher shrink this on the first refusal).
    """

    def __init__(self, transport: Transport, range_method: Method, txn_method: Method, *,
                 max_in_flight: int = 2, max_batch: int = 64) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be >= 1")
        self._transport = transport
        self._range = range_method
        self._txn = txn_method
        self.max_in_flight = max_in_flight
        self.max_batch = max_batch
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
        read.event.wait()
        if read.role == _LEAD:
            self._lead(read)
        if read.role == _DONE:
            return read.result
        return self._solo(read)

    def _release(self) -> None:
        """Free an RPC slot, or hand it to the next queued batch."""
        with self._lock:
            if not self._pending:
                self._in_flight -= 1
                return
            batch = self._pending[:self.max_batch]
            del self._pending[:self.max_batch]
        leader = batch[0]
        leader.batch = batch
        leader.role = _LEAD
        leader.event.set()

    def _lead(self, leader: _Read) -> None:
        batch = leader.batch
        try:
            if len(batch) == 1:
                leader.role = _SOLO
                return
            deadlines = [r.deadline for r in batch if r.deadline is not None]
            timeout = None
            if deadlines:
                timeout = min(deadlines) - time.monotonic()
                if timeout <= 0:
                    return  # every read falls back to its own call (and deadline)
            request = codec.encode_txn_request(
                [], [(codec.OP_RANGE, r.fields) for r in batch])
            try:
                response = self._transport.call(self._txn, request, timeout=timeout)
            except exceptions.TooManyOpsError:
                self.max_batch = max(1, len(batch) // 2)
                return
            except exceptions.Etcd3Exception:
                return
            header = response.header
            for read, op in zip(batch, response.responses):
                result = op.response_range
                result.header = header
                read.result = result
                read.role = _DONE
        finally:
            for read in batch:
                if read.role != _DONE:
                    read.role = _SOLO
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
