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

from . import codec
from ._core import ops
from ._sync import pipeline as _pipeline
from ._sync.base import UNSET, ServiceBase, Timeout
from ._sync.pipeline import Chunk
from .exceptions import BulkWriteError
from .results import KVMetadata

KeyType = Union[str, bytes]
ValueMeta = Tuple[bytes, KVMetadata]
PrevKvCallback = Callable[[bytes, Optional[bytes], Optional[KVMetadata]], None]

#: etcd's --max-request-bytes default is 1.5 MiB; leave room for the raft envelope.
DEFAULT_MAX_TXN_BYTES = 1_400_000
#: etcd's --max-txn-ops default.
DEFAULT_OPS_PER_TXN = 128

def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1")
    return value


# Each op is encoded as a one-op TxnRequest: concatenated, they are the chunk's
# TxnRequest (protobuf appends repeated fields), and each one's size is known.

def _put_entries(items: Iterable[Any], lease_id: int, prev_kv: bool
                 ) -> Iterator[Tuple[bytes, bytes]]:
    encode, op = codec.encode_txn_request, codec.OP_PUT
    for key, value in items:
        fields = ops.put_fields(key, value, lease_id, prev_kv)
        yield fields[0], encode((), [(op, fields)])


def _delete_entries(keys: Iterable[Any]) -> Iterator[Tuple[bytes, bytes]]:
    encode, op = codec.encode_txn_request, codec.OP_DELETE_RANGE
    for key in keys:
        fields = ops.delete_fields(key)
        yield fields[0], encode((), [(op, fields)])


def _key_entries(keys: Iterable[Any]) -> Iterator[Tuple[bytes, bytes]]:
    # Range ops are encoded when sent (they carry the revision known by then); the
    # entry only has to be as long as the encoded op, for chunking.
    for key in keys:
        key = ops.key_bytes(key)
        yield key, key + b"\0" * 32


def _join(chunk: Chunk) -> bytes:
    return b"".join(chunk.parts)


def _settings(ops_per_txn: int, max_txn_bytes: int, window: int) -> None:
    _check_count(ops_per_txn, "ops_per_txn")
    _check_count(max_txn_bytes, "max_txn_bytes")
    _check_count(window, "window")


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
        _settings(ops_per_txn, max_txn_bytes, window)
        if isinstance(prev_kv, bool) and prev_kv:
            raise TypeError("prev_kv takes a callable(key, value, metadata) that receives "
                            "each previous value")
        lease_id = ops.lease_to_id(lease)
        if isinstance(items, Mapping):
            items = items.items()
        report, finish = _pipeline.progress_reporter(progress, "put_many", items)
        items = iter(items)  # not iterable: TypeError now, before anything is sent
        done = 0

        def on_done(chunk: Chunk, response: Any) -> None:
            nonlocal done
            done = chunk.stop
            if prev_kv:
                for key, op in zip(chunk.keys, response.responses):
                    put = op.response_put
                    if put.HasField("prev_kv"):
                        kv = put.prev_kv
                        prev_kv(key, kv.value, kv)  # a KeyValue is its own KVMetadata
                    else:
                        prev_kv(key, None, None)
            report(done)

        self._write(_put_entries(items, lease_id, bool(prev_kv)), on_done, "put_many",
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
        _settings(ops_per_txn, max_txn_bytes, window)
        report, finish = _pipeline.progress_reporter(progress, "delete_many", keys)
        deleted = 0

        def on_done(chunk: Chunk, response: Any) -> None:
            nonlocal deleted
            deleted += sum(op.response_delete_range.deleted for op in response.responses)
            report(chunk.stop)

        self._write(_delete_entries(iter(keys)), on_done, "delete_many", ops_per_txn,
                    max_txn_bytes, window, timeout, finish, decode=True)
        return deleted

    def _write(self, entries: Iterator[Tuple[bytes, bytes]],
               on_done: Callable[[Chunk, Any], None], what: str, ops_per_txn: int,
               max_txn_bytes: int, window: int, timeout: Any,
               finish: Callable[[], None], decode: bool) -> None:
        chunk_iter = _pipeline.chunks(entries, ops_per_txn=ops_per_txn,
                                      max_txn_bytes=max_txn_bytes, unique_keys=True)
        try:
            outcome = _pipeline.run(self._transport, chunk_iter, _join, on_done,
                                    window=window, timeout=timeout, what=what,
                                    decode=decode)
        finally:
            finish()
        if not outcome.ok:
            raise outcome.write_error(what)

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
        _settings(ops_per_txn, 1, window)
        pinned = _opt_revision(revision)
        results: List[Union[ValueMeta, Tuple[None, None]]] = []

        def encode(chunk: Chunk) -> Any:
            return codec.encode_txn_request((), [
                (codec.OP_RANGE, ops.range_fields(key, None, revision=pinned,
                                              serializable=serializable))
                for key in chunk.keys])

        def on_done(chunk: Chunk, response: Any) -> None:
            nonlocal pinned
            if not pinned:
                pinned = response.header.revision
            for op in response.responses:
                kvs = op.response_range.kvs
                results.append((kvs[0].value, kvs[0]) if kvs else (None, None))

        chunk_iter = _pipeline.chunks(_key_entries(iter(keys)), ops_per_txn=ops_per_txn,
                                      max_txn_bytes=DEFAULT_MAX_TXN_BYTES,
                                      unique_keys=False)
        outcome = _pipeline.run(self._transport, chunk_iter, encode, on_done,
                                window=window, timeout=timeout, what="get_many",
                                first_alone=not pinned)
        if outcome.failures:
            raise outcome.failures[0][1]
        if outcome.stop_error is not None:
            raise outcome.stop_error.error
        if outcome.callback_error is not None:
            raise outcome.callback_error
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
        _check_count(page_size, "page_size")
        for name in ("limit", "count_only"):
            if options.pop(name, None):
                raise ValueError(f"{name} can't be used with paged reads")
        # etcd sorts a whole range (ignoring the limit) for any other order: paging
        # would cost O(n^2) on the server.
        if options.pop("sort_order", None) not in (None, "none", "ascend"):
            raise ValueError("paged reads are in ascending key order only")
        if options.pop("sort_target", None) not in (None, "key"):
            raise ValueError("paged reads are in key order; sort_target must be 'key'")
        bounds = [_opt_revision(options.pop(name, None)) for name in _FILTERS]
        timeout = options.pop("timeout", UNSET)
        revision = _opt_revision(options.pop("revision", None))
        ops.range_fields(start, end, **options)  # reject bad options before iterating
        return self._page_generator(start, end, page_size, revision, bounds, timeout,
                                    options)

    def _page_generator(self, start: bytes, end: bytes, page_size: int, revision: int,
                        bounds: List[int], timeout: Any, options: Dict[str, Any]
                        ) -> Iterator[ValueMeta]:
        min_mod, max_mod, min_create, max_create = bounds
        while True:
            response = self.get_range_response(start, end, timeout=timeout,
                                               limit=page_size, revision=revision or None,
                                               **options)
            revision = revision or response.header.revision
            kvs = response.kvs
            if not kvs:
                return
            last = kvs[-1].key
            if any(bounds):
                kvs = [kv for kv in kvs
                       if (not min_mod or kv.mod_revision >= min_mod)
                       and (not max_mod or kv.mod_revision <= max_mod)
                       and (not min_create or kv.create_revision >= min_create)
                       and (not max_create or kv.create_revision <= max_create)]
            yield from codec.range_pairs(kvs)
            if not response.more:
                return
            start = last + b"\0"
            del response, kvs


_FILTERS = ("min_mod_revision", "max_mod_revision", "min_create_revision",
            "max_create_revision")


def _opt_revision(revision: Optional[int]) -> int:
    return ops.optional_count(revision, "revision")


__all__ = ["BulkMixin", "BulkWriteError", "DEFAULT_MAX_TXN_BYTES", "DEFAULT_OPS_PER_TXN"]
