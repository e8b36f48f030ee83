"""Bulk calls (put_many, delete_many, get_many) and paged range reads (iter_prefix,
iter_range) of the asyncio client: the threaded :mod:`etcd3.bulk`'s methods, same
names, arguments, results and failure accounting, awaited (paged reads are async
iterators).

Items are read lazily (a plain iterable, a mapping, or an async iterable) and cut
into transactions of at most ``ops_per_txn`` ops and ``max_txn_bytes`` bytes, with
``window`` of them in flight at once as tasks. A failed bulk write raises
:class:`~etcd3.exceptions.BulkWriteError`, whose ``committed``,
``later_committed``, ``failed_keys`` and ``uncertain`` say exactly what was written,
what may have been, and what was not sent. A cancelled bulk call cancels its
transactions in flight and re-raises the :class:`asyncio.CancelledError` (noted with
the items known written).
"""

from __future__ import annotations

from typing import (
    Any,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from .. import _progress, codec
from .._core import bulk_ops as _ops
from .._core import ops
from .._core.bulk_ops import (
    DEFAULT_MAX_TXN_BYTES,
    DEFAULT_OPS_PER_TXN,
    PrevKvCallback,
    ValueMeta,
    check_settings,
    opt_revision,
)
from .._core.bulk_plan import Chunk
from .._grpc.error_causes import may_have_applied
from . import _bulk_pipeline as _pipeline
from ._base import UNSET, AioServiceBase, Timeout

KeyType = Union[str, bytes]
Items = Union[Iterable[Tuple[KeyType, KeyType]], Mapping[KeyType, KeyType],
              AsyncIterable[Tuple[KeyType, KeyType]]]
Keys = Union[Iterable[KeyType], AsyncIterable[KeyType]]

__all__ = ["AioBulkMixin", "DEFAULT_MAX_TXN_BYTES", "DEFAULT_OPS_PER_TXN"]


class AioBulkMixin(AioServiceBase):
    """Bulk and paged methods of :class:`~etcd3.aio.Etcd3Client`."""

    # -- writes -------------------------------------------------------------------------

    async def put_many(
        self,
        items: Items,
        *,
        lease: Any = None,
        prev_kv: Optional[PrevKvCallback] = None,
        ops_per_txn: int = DEFAULT_OPS_PER_TXN,
        max_txn_bytes: int = DEFAULT_MAX_TXN_BYTES,
        window: int = 4,
        progress: Any = None,
        timeout: Timeout = UNSET,
    ) -> int:
        """Put every ``(key, value)`` of ``items`` (an iterable, generator, mapping or
        async iterable), in order, and return how many were written.

        Each transaction is atomic; the whole call is not. A key repeated within one
        transaction starts the next one, so every put happens in order.

        :param lease: a lease (or lease ID) attached to every key.
        :param prev_kv: a callable ``(key, previous value or None, previous KVMetadata
            or None)`` called for every item, in input order, as its batch commits.
        :param progress: a callable taking the number of items written so far, or
            ``True`` for a counter on stderr when it is a terminal.
        :param timeout: seconds for each transaction (default: the client's timeout).
        :raises BulkWriteError: a batch failed or an item was bad (its ``__cause__``
            says why); ``committed`` items, in input order, were written, and
            ``later_committed`` lists batches after the failure that were written too.
        :raises BulkRequestTooLargeError: one item is over ``max_txn_bytes``; every
            item before it was written, none after.
        :raises TypeError: ``items`` is not iterable, or ``prev_kv=True``.
        """
        check_settings(ops_per_txn, max_txn_bytes, window)
        _ops.check_prev_kv(prev_kv)
        lease_id = ops.lease_to_id(lease)
        if isinstance(items, Mapping):
            items = items.items()
        report, finish = _progress.progress_reporter(progress, "put_many", items,
                                               self._transport.recorder)
        with_prev = bool(prev_kv)
        entries = _pipeline.entries_of(
            items, lambda item: _ops.put_entry(item, lease_id, with_prev),
            lambda it: _ops.put_entries(it, lease_id, with_prev))
        done = 0

        def on_done(chunk: Chunk, response: Any) -> None:
            nonlocal done
            done = chunk.stop
            if prev_kv:
                _ops.report_prev_kvs(chunk, response, prev_kv)
            report(done)

        await self._write(entries, on_done, "put_many", ops_per_txn, max_txn_bytes,
                          window, timeout, finish, decode=with_prev)
        return done

    async def delete_many(
        self,
        keys: Keys,
        *,
        ops_per_txn: int = DEFAULT_OPS_PER_TXN,
        max_txn_bytes: int = DEFAULT_MAX_TXN_BYTES,
        window: int = 4,
        progress: Any = None,
        timeout: Timeout = UNSET,
    ) -> int:
        """Delete every key of ``keys`` (an iterable or async iterable), batched like
        :meth:`put_many`; returns how many of them existed.

        :raises BulkWriteError: as :meth:`put_many`; ``committed`` counts input keys.
        """
        check_settings(ops_per_txn, max_txn_bytes, window)
        report, finish = _progress.progress_reporter(progress, "delete_many", keys,
                                               self._transport.recorder)
        entries = _pipeline.entries_of(keys, _ops.delete_entry, _ops.delete_entries)
        deleted = 0

        def on_done(chunk: Chunk, response: Any) -> None:
            nonlocal deleted
            deleted += _ops.deleted_count(response)
            report(chunk.stop)

        await self._write(entries, on_done, "delete_many", ops_per_txn, max_txn_bytes,
                          window, timeout, finish, decode=True)
        return deleted

    async def _write(self, entries: _pipeline.Entries,
                     on_done: Callable[[Chunk, Any], None], what: str, ops_per_txn: int,
                     max_txn_bytes: int, window: int, timeout: Any,
                     finish: Callable[[], None], decode: bool) -> None:
        source = _pipeline.achunks(entries, ops_per_txn=ops_per_txn,
                                   max_txn_bytes=max_txn_bytes, unique_keys=True)
        try:
            outcome = await _pipeline.run(self._transport, source, _ops.join, on_done,
                                          window=window, timeout=timeout, what=what,
                                          decode=decode)
        finally:
            finish()
        if not outcome.ok:
            raise outcome.write_error(what, may_have_applied)

    # -- reads --------------------------------------------------------------------------

    async def get_many(
        self,
        keys: Keys,
        *,
        revision: Optional[int] = None,
        serializable: bool = False,
        ops_per_txn: int = DEFAULT_OPS_PER_TXN,
        window: int = 4,
        timeout: Timeout = UNSET,
    ) -> List[Union[ValueMeta, Tuple[None, None]]]:
        """``(value, KVMetadata)`` — or ``(None, None)`` when absent — for each key of
        ``keys``, in input order, all read at one revision (the first batch's, or
        ``revision``): a consistent snapshot.

        Keys are read ``ops_per_txn`` at a time, ``window`` transactions in flight. On
        etcd 3.5.0-3.5.4 these read-only transactions are never cancelled on the
        server (the transport's rule: such servers crash on it).
        :raises RevisionCompactedError: the revision was compacted meanwhile.
        :raises Etcd3Exception: the first failed batch's error.
        """
        check_settings(ops_per_txn, 1, window)
        pinned = opt_revision(revision)
        results: List[Union[ValueMeta, Tuple[None, None]]] = []

        def encode(chunk: Chunk) -> bytes:
            return _ops.get_many_request(chunk, pinned, serializable)

        def on_done(chunk: Chunk, response: Any) -> None:
            nonlocal pinned
            if not pinned:
                pinned = response.header.revision
            results.extend(_ops.get_many_results(response))

        entries = _pipeline.entries_of(keys, _ops.key_entry, _ops.key_entries)
        source = _pipeline.achunks(entries, ops_per_txn=ops_per_txn,
                                   max_txn_bytes=DEFAULT_MAX_TXN_BYTES, unique_keys=False)
        outcome = await _pipeline.run(self._transport, source, encode, on_done,
                                      window=window, timeout=timeout, what="get_many",
                                      first_alone=not pinned, read_only=True)
        error = outcome.read_error()
        if error is not None:
            raise error
        return results

    def iter_prefix(self, key_prefix: KeyType, page_size: int = 1000,
                    **options: Any) -> AsyncIterator[ValueMeta]:
        """``async for value, meta in client.iter_prefix(p)``: every key starting with
        ``key_prefix``, in key order, fetched ``page_size`` keys per request.

        Memory holds one page at a time. Every page is read at the first page's
        revision (or ``revision=``): one consistent snapshot even while others write.
        Other options: ``keys_only``, ``serializable``, ``timeout``, and
        ``min/max_mod_revision``, ``min/max_create_revision`` (applied to each page).

        :raises RevisionCompactedError: that revision was compacted mid-iteration.
        :raises ValueError: (at once) ``page_size`` < 1, a sort other than ascending
            by key, or ``limit``/``count_only``.
        """
        prefix = codec.to_bytes(key_prefix, "key_prefix")
        return self._pages(prefix or b"\0", codec.prefix_range_end(prefix), page_size,
                           options)

    def iter_range(self, range_start: KeyType, range_end: KeyType, page_size: int = 1000,
                   **options: Any) -> AsyncIterator[ValueMeta]:
        """Like :meth:`iter_prefix`, for the keys in ``[range_start, range_end)``."""
        return self._pages(ops.key_bytes(range_start, "range_start"),
                           codec.to_bytes(range_end, "range_end"), page_size, options)

    def _pages(self, start: bytes, end: bytes, page_size: int,
               options: Dict[str, Any]) -> AsyncIterator[ValueMeta]:
        return self._page_generator(_ops.page_plan(start, end, page_size, options, UNSET))

    async def _page_generator(self, plan: _ops.PagePlan) -> AsyncIterator[ValueMeta]:
        get_range_response = self.get_range_response  # type: ignore[attr-defined]
        more = True
        while more:
            response = await get_range_response(plan.start, plan.end,
                                                timeout=plan.timeout,
                                                limit=plan.page_size,
                                                revision=plan.revision or None,
                                                **plan.options)
            kvs = plan.filter(response.kvs)
            more = plan.advance(response)
            del response  # one page in memory at a time
            for pair in codec.range_pairs(kvs):
                yield pair
            del kvs
