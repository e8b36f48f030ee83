"""The asyncio driver of the bulk calls: the chunks of :mod:`etcd3._core.bulk_plan`
sent as transactions, a bounded window of them in flight as tasks, settled in input
order by the same :class:`~etcd3._core.bulk_plan.Ledger` as the threaded driver's.

Cancellation: cancelling the caller cancels every transaction in flight (each may or
may not have been applied, as with a timeout), waits for them to end, and lets the
:class:`asyncio.CancelledError` propagate with a note saying which items are known
written.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import (
    Any,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Deque,
    Iterable,
    Iterator,
    Tuple,
    Union,
)

from .. import exceptions as exc
from .._core.bulk_plan import Chunk, Chunker, InputError, Ledger, Outcome, chunks
from .._grpc import rpc as _rpc
from .._grpc.bulk_methods import TXN_READ_ONLY, TXN_UNDECODED

log = logging.getLogger("etcd3")

Entry = Tuple[bytes, bytes]
Entries = Union[Iterator[Entry], AsyncIterator[Entry]]


def entries_of(items: Union[Iterable[Any], AsyncIterable[Any]],
               encode: Callable[[Any], Entry], encode_all: Callable[[Any], Iterator[Entry]]
               ) -> Entries:
    """The entries of ``items``: ``encode_all(iterator)`` for an iterable,
    ``encode(item)`` of each item of an async iterable.

    :raises TypeError: ``items`` is neither.
    """
    if isinstance(items, AsyncIterable):
        return _encoded(items, encode)
    return encode_all(iter(items))


async def _encoded(items: AsyncIterable[Any], encode: Callable[[Any], Entry]
                   ) -> AsyncIterator[Entry]:
    async for item in items:
        yield encode(item)


async def achunks(entries: Entries, *, ops_per_txn: int, max_txn_bytes: int,
                  unique_keys: bool) -> AsyncIterator[Chunk]:
    """:func:`~etcd3._core.bulk_plan.chunks` of entries that may arrive asynchronously
    (same chunks, same :class:`InputError` after the chunk before a bad item)."""
    if not isinstance(entries, AsyncIterator):
        for chunk in chunks(entries, ops_per_txn=ops_per_txn, max_txn_bytes=max_txn_bytes,
                            unique_keys=unique_keys):
            yield chunk
        return
    chunker = Chunker(ops_per_txn=ops_per_txn, max_txn_bytes=max_txn_bytes,
                      unique_keys=unique_keys)
    while True:
        try:
            key, entry = await entries.__anext__()
        except StopAsyncIteration:
            break
        except Exception as error:
            rest = chunker.rest()
            if rest is not None:
                yield rest
            raise InputError(chunker.index, None, error) from error
        try:
            full = chunker.add(key, entry)
        except InputError:
            rest = chunker.rest()
            if rest is not None:
                yield rest
            raise
        if full is not None:
            yield full
    rest = chunker.rest()
    if rest is not None:
        yield rest


async def run(transport: Any, chunk_source: AsyncIterator[Chunk],
              encode: Callable[[Chunk], bytes], on_done: Callable[[Chunk, Any], None], *,
              window: int, timeout: Any, what: str, first_alone: bool = False,
              decode: bool = True, read_only: bool = False) -> Outcome:
    """Send every chunk as one Txn, at most ``window`` in flight; settle in input order
    (see :func:`etcd3._sync.pipeline.run`: same rules, tasks instead of futures).
    ``read_only``: every op is a range, so a failed transaction may be sent again.

    :raises asyncio.CancelledError: the caller was cancelled (after the transactions
        in flight were cancelled and ended).
    """
    method = TXN_READ_ONLY if read_only else _rpc.TXN if decode else TXN_UNDECODED
    ledger = Ledger(on_done)
    pending: Deque[Tuple[Chunk, asyncio.Task[Any]]] = deque()

    async def settle() -> None:
        chunk, task = pending[0]
        await asyncio.wait((task,))  # unlike ``await task``, a cancelled caller
        pending.popleft()            # leaves the task to the cleanup below
        if task.cancelled():
            ledger.failed(chunk, exc.Etcd3Exception(f"{what}: the transaction was "
                                                    "cancelled after it was sent"))
            return
        error = task.exception()
        if error is not None:
            ledger.failed(chunk, error)
        else:
            ledger.succeeded(chunk, task.result())

    try:
        try:
            async for chunk in chunk_source:
                while ledger.must_wait(chunk, (c for c, _ in pending), len(pending),
                                       window):
                    await settle()
                if not ledger.outcome.ok:
                    break
                request = encode(chunk)
                task = asyncio.ensure_future(transport.call(
                    method, request, timeout=timeout,
                    context=f"{what}, items [{chunk.start}, {chunk.stop})"))
                pending.append((chunk, task))
                ledger.sent(chunk)
                if first_alone and chunk.start == 0:
                    await settle()
        except InputError as error:
            ledger.stopped(error)
        while pending:
            await settle()
    except asyncio.CancelledError as cancelled:
        _note(cancelled, f"etcd3: {what} was cancelled: items [0, "
                         f"{ledger.outcome.committed}) were written; items from "
                         f"{ledger.outcome.committed} on may or may not have been")
        raise
    finally:
        tasks = [task for _, task in pending]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
            for task in tasks:
                if not task.cancelled():
                    task.exception()  # retrieved: asyncio does not log it
        aclose = getattr(chunk_source, "aclose", None)
        if aclose is not None:
            await aclose()
    return ledger.outcome


def _note(error: BaseException, note: str) -> None:
    """Add ``note`` to ``error``'s traceback (Python 3.11+), else log it."""
    add_note = getattr(error, "add_note", None)
    if add_note is not None:
        add_note(note)
    else:
        log.info("%s", note)
