"""The threaded driver of the bulk calls: send the chunks of
:mod:`etcd3._core.bulk_plan` as transactions, keep a bounded window of them in
flight as futures, and settle them in input order on the calling thread.

Items are pulled lazily, so memory holds at most ``window`` transactions on the wire
plus the one being filled.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, Iterator, Tuple

from .. import exceptions as exc
from .._core.bulk_plan import Chunk, InputError, Ledger, Outcome
from .._grpc import rpc as _rpc
from .._grpc.bulk_methods import TXN_READ_ONLY, TXN_UNDECODED


def run(transport: Any, chunk_iter: Iterator[Chunk], encode: Callable[[Chunk], bytes],
        on_done: Callable[[Chunk, Any], None], *, window: int, timeout: Any,
        what: str, first_alone: bool = False, decode: bool = True,
        read_only: bool = False) -> Outcome:
    """Send every chunk as one Txn, at most ``window`` in flight; settle in input order.

    Transactions in flight together may be applied in any order, so a chunk that
    writes a key an in-flight chunk also writes waits for it: writes to one key are
    applied in input order.
    ``on_done(chunk, response)`` runs (on this thread, in input order) for each chunk
    of the committed prefix. The first failure stops sending; chunks already in flight
    are still waited for, so the outcome accounts for every item sent. With
    ``first_alone`` the first chunk completes before the next is sent. Without
    ``decode``, ``on_done`` gets the reply's wire bytes (nothing in it is needed).
    ``read_only``: every op of every chunk is a range, so a failed transaction may be
    sent again (as a read is).
    """
    method = TXN_READ_ONLY if read_only else _rpc.TXN if decode else TXN_UNDECODED
    ledger = Ledger(on_done)
    pending: Deque[Tuple[Chunk, Any]] = deque()

    def settle() -> None:
        chunk, future = pending.popleft()
        try:
            response = future.result()
        except Exception as error:
            ledger.failed(chunk, error)
            return
        ledger.succeeded(chunk, response)

    try:
        for chunk in chunk_iter:
            while ledger.must_wait(chunk, (c for c, _ in pending), len(pending), window):
                settle()
            if not ledger.outcome.ok:
                break
            try:
                future = transport.call_future(
                    method, encode(chunk), timeout=timeout,
                    context=f"{what}, items [{chunk.start}, {chunk.stop})")
            except exc.ClientClosedError as error:
                ledger.failed(chunk, error)
                break
            pending.append((chunk, future))
            ledger.sent(chunk)
            if first_alone and chunk.start == 0:
                settle()
    except InputError as error:
        ledger.stopped(error)
    while pending:
        settle()
    return ledger.outcome
