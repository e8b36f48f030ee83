"""Bulk calls (put_many, delete_many, get_many) and paged range reads (iter_prefix,
iter_range).

Bulk calls stream their input: items are cut into transactions of at most
``ops_per_txn`` ops and ``max_txn_bytes`` encoded bytes (under etcd's defaults,
--max-txn-ops=128 and --max-request-bytes=1.5 MiB) and up to ``window`` transactions
are on the wire at once, so a generator of any length is loaded in bounded memory.
A key that repeats inside one transaction starts a new one (etcd rejects two writes to
a key in one txn), so ``put_many`` means exactly "these puts, in this order": every
value is written, the last one wins, watchers see each.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from . import _progress, codec
from ._core import bulk_ops as _ops
from ._core import ops
from ._core.bulk_ops import (
    DEFAULT_MAX_TXN_BYTES,
    DEFAULT_OPS_PER_TXN,
    PrevKvCallback,
    ValueMeta,
    check_settings,
    opt_revision,
)
from ._core.bulk_plan import Chunk, chunks
from ._grpc.error_causes import may_have_applied
from ._sync import pipeline as _pipeline
from ._sync.base import UNSET, ServiceBase, Timeout
from .exceptions import BulkWriteError

KeyType = Union[str, bytes]


class BulkMixin(ServiceBase):
    """Bulk and paged methods of :class:`~etcd3.client.Etcd3Client`."""

    # KVMixin's (declared, not defined, so the client's mixin order does not hide it).
    get_range_response: Callable[..., Any]

    # -- writes -------------------------------------------------------------------------

    def put_many(
        self,
        items: Union[Iterable[Tuple[KeyType, KeyType]], Mapping[KeyType, KeyType]],
        *,
        lease: Any = None,
        prev_kv: Optional[PrevKvCallback] = None,
        ops_per_txn: int = DEFAULT_OPS_PER_TXN,
        max_txn_bytes: int = DEFAULT_MAX_TXN_BYTES,
        window: int = 4,
        progress: Any = None,
        timeout: Timeout = UNSET,
    ) -> int:
        """Put every ``(key, value)`` of ``items`` (any iterable, generator or mapping),
        in order, and return how many were written.

        Items are read lazily and sent as transactions of at most ``ops_per_txn`` puts
        and ``max_txn_bytes`` bytes, ``window`` of them in flight at once. Each
        transaction is atomic; the whole call is not. A key repeated within one
        transaction starts the next one, so every put happens in order.

        :param lease: a :class:`~etcd3.leases.Lease` or lease ID attached to every key.
        :param prev_kv: a callable ``(key, previous value or None, previous KVMetadata
            or None)`` called for every item, in input order, as its batch commits.
        :param progress: a callable taking the number of items written so far (called
            in input order as batches commit), or ``True`` for a counter on stderr
            when it is a terminal.
        :param timeout: seconds for each transaction (default: the client's timeout).
        :raises BulkWriteError: a batch failed or an item was bad (its ``__cause__``
            says why); ``committed`` items, in input order, were written, and
            ``later_committed`` lists batches after the failure that were written too.
        :raises BulkRequestTooLargeError: (a :class:`RequestTooLargeError` and a
            :class:`BulkWriteError`) one item is over ``max_txn_bytes``; the message
            names its key; every item before it was written, none after.
        """
        check_settings(ops_per_txn, max_txn_bytes, window)
        _ops.check_prev_kv(prev_kv)
        lease_id = ops.lease_to_id(lease)
        if isinstance(items, Mapping):
            items = items.items()
        report, finish = _progress.progress_reporter(progress, "put_many", items,
                                               self._transport.recorder)
        items = iter(items)  # not iterable: TypeError now, before anything is sent
        done = 0

        def on_done(chunk: Chunk, response: Any) -> None:
            nonlocal done
            done = chunk.stop
            if prev_kv:
                _ops.report_prev_kvs(chunk, response, prev_kv)
            report(done)

        self._write(_ops.put_entries(items, lease_id, bool(prev_kv)), on_done, "put_many",
                    ops_per_txn, max_txn_bytes, window, timeout, finish,
                    decode=bool(prev_kv))
        return done

    def delete_many(
        self,
        keys: Iterable[KeyType],
        *,
        ops_per_txn: int = DEFAULT_OPS_PER_TXN,
        max_txn_bytes: int = DEFAULT_MAX_TXN_BYTES,
        window: int = 4,
        progress: Any = None,
        timeout: Timeout = UNSET,
    ) -> int:
        """Delete every key of ``keys`` (any iterable), batched like :meth:`put_many`;
        returns how many of them existed.

        :raises BulkWriteError: as :meth:`put_many`; ``committed`` counts input keys.
        """
        check_settings(ops_per_txn, max_txn_bytes, window)
        report, finish = _progress.progress_reporter(progress, "delete_many", keys,
                                               self._transport.recorder)
        deleted = 0

        def on_done(chunk: Chunk, response: Any) -> None:
            nonlocal deleted
            deleted += _ops.deleted_count(response)
            report(chunk.stop)

        self._write(_ops.delete_entries(iter(keys)), on_done, "delete_many", ops_per_txn,
                    max_txn_bytes, window, timeout, finish, decode=True)
        return deleted

    def _write(self, entries: Iterator[Tuple[bytes, bytes]],
               on_done: Callable[[Chunk, Any], None], what: str, ops_per_txn: int,
               max_txn_bytes: int, window: int, timeout: Any,
               finish: Callable[[], None], decode: bool) -> None:
        chunk_iter = chunks(entries, ops_per_txn=ops_per_txn, max_txn_bytes=max_txn_bytes,
                            unique_keys=True)
        try:
            outcome = _pipeline.run(self._transport, chunk_iter, _ops.join, on_done,
                                    window=window, timeout=timeout, what=what,
                                    decode=decode)
        finally:
            finish()
        if not outcome.ok:
            raise outcome.write_error(what, may_have_applied)

    # -- reads --------------------------------------------------------------------------

    def get_many(
        self,
        keys: Iterable[KeyType],
        *,
        revision: Optional[int] = None,
        serializable: bool = False,
        ops_per_txn: int = DEFAULT_OPS_PER_TXN,
        window: int = 4,
        timeout: Timeout = UNSET,
    ) -> List[Union[ValueMeta, Tuple[None, None]]]:
        """``(value, KVMetadata)`` — or ``(None, None)`` when absent — for each key of
        ``keys``, in input order, all read at one revision.

        Keys are read ``ops_per_txn`` at a time, ``window`` transactions in flight; the
        first batch's revision (or ``revision``) is used for every batch, so the result
        is a consistent snapshot.

        :raises RevisionCompactedError: the revision was compacted meanwhile.
        :raises Etcd3Exception: the first failed batch's error.
        """
        check_settings(ops_per_txn, 1, window)
        pinned = opt_revision(revision)
        results: List[Union[ValueMeta, Tuple[None, None]]] = []

        def encode(chunk: Chunk) -> Any:
            return _ops.get_many_request(chunk, pinned, serializable)

        def on_done(chunk: Chunk, response: Any) -> None:
            nonlocal pinned
            if not pinned:
                pinned = response.header.revision
            results.extend(_ops.get_many_results(response))

        chunk_iter = chunks(_ops.key_entries(iter(keys)), ops_per_txn=ops_per_txn,
                            max_txn_bytes=DEFAULT_MAX_TXN_BYTES, unique_keys=False)
        outcome = _pipeline.run(self._transport, chunk_iter, encode, on_done,
                                window=window, timeout=timeout, what="get_many",
                                first_alone=not pinned, read_only=True)
        error = outcome.read_error()
        if error is not None:
            raise error
        return results

    def iter_prefix(self, key_prefix: KeyType, page_size: int = 1000,
                    **options: Any) -> Iterator[ValueMeta]:
        """``(value, KVMetadata)`` for every key starting with ``key_prefix``, in key
        order, fetched ``page_size`` keys per request.

        Memory holds one page at a time. Every page is read at the first page's
        revision (or ``revision=``), so the result is one consistent snapshot even
        while others write. Other options: ``keys_only``, ``serializable``,
        ``timeout``, and ``min/max_mod_revision``, ``min/max_create_revision`` (applied
        here to each page, because etcd ignores a limit when they are set).

        :raises RevisionCompactedError: that revision was compacted mid-iteration.
        :raises ValueError: ``page_size`` < 1, a sort other than ascending by key, or
            ``limit``/``count_only``.
        """
        prefix = codec.to_bytes(key_prefix, "key_prefix")
        return self._pages(prefix or b"\0", codec.prefix_range_end(prefix), page_size,
                           options)

    def iter_range(self, range_start: KeyType, range_end: KeyType, page_size: int = 1000,
                   **options: Any) -> Iterator[ValueMeta]:
        """Like :meth:`iter_prefix`, for the keys in ``[range_start, range_end)``."""
        return self._pages(ops.key_bytes(range_start, "range_start"),
                           codec.to_bytes(range_end, "range_end"), page_size, options)

    def _pages(self, start: bytes, end: bytes, page_size: int,
               options: Dict[str, Any]) -> Iterator[ValueMeta]:
        return self._page_generator(_ops.page_plan(start, end, page_size, options, UNSET))

    def _page_generator(self, plan: _ops.PagePlan) -> Iterator[ValueMeta]:
        more = True
        while more:
            response = self.get_range_response(plan.start, plan.end, timeout=plan.timeout,
                                               limit=plan.page_size,
                                               revision=plan.revision or None,
                                               **plan.options)
            kvs = plan.filter(response.kvs)
            more = plan.advance(response)
            del response  # one page in memory at a time
            yield from codec.range_pairs(kvs)
            del kvs


__all__ = ["BulkMixin", "BulkWriteError", "DEFAULT_MAX_TXN_BYTES", "DEFAULT_OPS_PER_TXN"]
