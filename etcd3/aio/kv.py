"""Key-value calls of the asyncio client: the threaded :mod:`etcd3.kv`'s methods,
same names, arguments and results, awaited (or iterated with ``async for``)."""

from __future__ import annotations

from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from .. import codec
from .._core.ops import (
    NO_RANGE_OPTIONS,
    encode_txn,
    key_bytes,
    lease_to_id,
    optional_count,
    range_fields,
)
from .._grpc import rpc as _rpc
from ..etcdrpc import rpc_pb2 as pb
from ..kv import KeyType, ValueMeta
from ..results import KVMetadata
from ..transactions import BaseCompare, Transactions, shape_txn_responses
from ._base import UNSET, AioServiceBase, Timeout
from ._read_batch import AioReadBatcher
from ._write_batch import AioWriteBatcher

_READ_BATCHER = "read_batch"
_WRITE_BATCHER = "write_batch"


class AioKVMixin(AioServiceBase):
    """Key-value methods of :class:`~etcd3.aio.Etcd3Client`."""

    transactions = Transactions()
    _read_batch_in_flight: int
    _write_batch_in_flight: Optional[int]

    # -- reads --------------------------------------------------------------------------

    def _prepare_range(self, key: bytes, range_end: Optional[bytes],
                       timeout: Timeout = UNSET,
                       **options: Any) -> Callable[[], Awaitable[Any]]:
        """Check and encode a Range now; returns the call to await for it (so that
        bad options fail when an iterator method is called, not when it is read)."""
        fields = (range_fields(key, range_end, **options) if options
                  else (key, range_end) + NO_RANGE_OPTIONS)
        request = codec.encode_range_request(*fields)
        return lambda: self._read(request, fields, timeout, f"key {key!r}")

    async def _range(self, key: bytes, range_end: Optional[bytes],
                     timeout: Timeout = UNSET, **options: Any) -> Any:
        return await self._prepare_range(key, range_end, timeout, **options)()

    async def _read(self, request: bytes, fields: Tuple[Any, ...], timeout: Timeout,
                    context: str) -> Any:
        """Send one Range; concurrent single-key reads may share a read-only Txn
        (see :mod:`etcd3.aio._read_batch`)."""
        if fields[1] is None:
            batcher = self._engine(_READ_BATCHER, self._new_read_batcher)
            return await batcher.call(request, fields, timeout=timeout, context=context)
        return await self._transport.call(_rpc.RANGE, request, timeout=timeout,
                                          context=context)

    def _new_read_batcher(self) -> AioReadBatcher:
        return AioReadBatcher(self._transport, _rpc.RANGE, _rpc.TXN,
                              max_in_flight=self._read_batch_in_flight)

    def _get_one(self, key: KeyType, timeout: Timeout, options: Dict[str, Any]
                 ) -> Awaitable[Any]:
        """The Range of one key, checked and encoded now, sent through the read
        batcher when awaited (the hot path: no coroutine in between)."""
        data = key_bytes(key)
        fields = (range_fields(data, None, **options) if options
                  else (data, None) + NO_RANGE_OPTIONS)
        batcher = self._engine(_READ_BATCHER, self._new_read_batcher)
        return batcher.call(codec.encode_range_request(*fields), fields, timeout=timeout,
                            context=f"key {data!r}")

    async def get_response(self, key: KeyType, *, timeout: Timeout = UNSET,
                           **options: Any) -> Any:
        """The raw Range response for one key (see :meth:`etcd3.Etcd3Client.get_response`)."""
        return await self._get_one(key, timeout, options)

    async def get(self, key: KeyType, **options: Any
                  ) -> Union[Tuple[bytes, KVMetadata], Tuple[None, None]]:
        """The value of ``key`` and its metadata, or ``(None, None)`` if it is absent.

        :raises TypeError: ``key`` is not str/bytes. :raises ValueError: empty key.
        """
        response = await self._get_one(key, options.pop("timeout", UNSET), options)
        if not response.kvs:
            return None, None
        kv = response.kvs[0]
        return kv.value, kv

    async def get_prefix_response(self, key_prefix: KeyType, *, timeout: Timeout = UNSET,
                                  **options: Any) -> Any:
        """The raw Range response for every key starting with ``key_prefix``."""
        return await self._range(*_prefix_bounds(key_prefix, options), timeout, **options)

    def get_prefix(self, key_prefix: KeyType, page_size: Optional[int] = None,
                   **options: Any) -> AsyncIterator[ValueMeta]:
        """``async for value, meta in client.get_prefix(p)``: every key starting with
        ``key_prefix``, in key order unless ``sort_order``/``sort_target`` say
        otherwise. With ``page_size``, fetched that many keys at a time, all pages at
        one revision (see :meth:`iter_prefix`).

        :raises TypeError, ValueError: bad options (when called, before iterating).
        """
        if page_size is not None:
            return self.iter_prefix(key_prefix, page_size=page_size, **options)
        return _pairs(self._prepare_range(*_prefix_bounds(key_prefix, options), **options))

    #: Paged iteration of a prefix: :class:`~etcd3.aio.bulk.AioBulkMixin`'s (a method
    #: here would hide it: this mixin comes first in the client's bases).
    iter_prefix: Callable[..., AsyncIterator[ValueMeta]]

    async def get_range_response(self, range_start: KeyType, range_end: KeyType, *,
                                 timeout: Timeout = UNSET, **options: Any) -> Any:
        """The raw Range response for keys in ``[range_start, range_end)``."""
        return await self._range(key_bytes(range_start, "range_start"),
                                 codec.to_bytes(range_end, "range_end"), timeout,
                                 **options)

    def get_range(self, range_start: KeyType, range_end: KeyType,
                  **options: Any) -> AsyncIterator[ValueMeta]:
        """``async for value, meta in ...``: keys in ``[range_start, range_end)``.

        :raises TypeError, ValueError: bad keys or options (when called).
        """
        return _pairs(self._prepare_range(key_bytes(range_start, "range_start"),
                                          codec.to_bytes(range_end, "range_end"),
                                          **options))

    async def get_all_response(self, *, timeout: Timeout = UNSET, **options: Any) -> Any:
        """The raw Range response for every key in the store."""
        return await self._range(b"\0", b"\0", timeout, **options)

    def get_all(self, **options: Any) -> AsyncIterator[ValueMeta]:
        """``async for value, meta in ...``: every key in the store.

        :raises TypeError, ValueError: bad options (when called).
        """
        return _pairs(self._prepare_range(b"\0", b"\0", **options))

    # -- writes -------------------------------------------------------------------------

    async def put(self, key: KeyType, value: KeyType, lease: Any = None,
                  prev_kv: bool = False, *, timeout: Timeout = UNSET) -> Any:
        """Set ``key`` to ``value``; returns the PutResponse (``header``, ``prev_kv``).

        :raises TypeError: key or value not str/bytes. :raises ValueError: empty key.
        :raises RequestTooLargeError: the request exceeds the server's limit.
        :raises LeaseNotFoundError: the lease does not exist.
        """
        data = key_bytes(key)
        if self._write_batch_in_flight is not None:
            batcher = self._engine(_WRITE_BATCHER, self._new_write_batcher)
            return await batcher.put(data, codec.to_bytes(value, "value"),
                                     lease_to_id(lease), prev_kv, timeout=timeout,
                                     context=f"key {data!r}")
        request = codec.encode_put_request(data, codec.to_bytes(value, "value"),
                                           lease_to_id(lease), prev_kv)
        return await self._transport.call(_rpc.PUT, request, timeout=timeout,
                                          context=f"key {data!r}")

    def _new_write_batcher(self) -> AioWriteBatcher:
        assert self._write_batch_in_flight is not None
        return AioWriteBatcher(self._transport, max_in_flight=self._write_batch_in_flight)

    async def put_if_not_exists(self, key: KeyType, value: KeyType,
                                lease: Any = None) -> bool:
        """Create ``key`` only if it does not exist; True if it was created."""
        succeeded, _ = await self.transaction(
            compare=[self.transactions.create(key) == 0],
            success=[self.transactions.put(key, value, lease=lease)],
            failure=[])
        return bool(succeeded)

    async def replace(self, key: KeyType, initial_value: KeyType,
                      new_value: KeyType) -> bool:
        """Set ``key`` to ``new_value`` only if it is ``initial_value``; True if it was."""
        succeeded, _ = await self.transaction(
            compare=[self.transactions.value(key) == initial_value],
            success=[self.transactions.put(key, new_value)],
            failure=[])
        return bool(succeeded)

    async def delete(self, key: KeyType, prev_kv: bool = False,
                     return_response: bool = False, *, timeout: Timeout = UNSET) -> Any:
        """Delete ``key``; True if it existed (or the DeleteRangeResponse when
        ``return_response``)."""
        data = key_bytes(key)
        if self._write_batch_in_flight is not None:
            batcher = self._engine(_WRITE_BATCHER, self._new_write_batcher)
            response = await batcher.delete(data, prev_kv, timeout=timeout,
                                            context=f"key {data!r}")
        else:
            request = codec.encode_delete_range_request(data, None, prev_kv)
            response = await self._transport.call(_rpc.DELETE_RANGE, request,
                                                  timeout=timeout,
                                                  context=f"key {data!r}")
        if return_response:
            return response
        return response.deleted >= 1

    async def delete_prefix(self, prefix: KeyType, prev_kv: bool = False, *,
                            timeout: Timeout = UNSET) -> Any:
        """Delete every key starting with ``prefix``; returns the DeleteRangeResponse."""
        data = codec.to_bytes(prefix, "prefix")
        request = codec.encode_delete_range_request(
            data or b"\0", codec.prefix_range_end(data), prev_kv)
        return await self._call(_rpc.DELETE_RANGE, request, timeout=timeout,
                                context=f"prefix {data!r}")

    async def delete_range(self, range_start: KeyType, range_end: KeyType,
                           prev_kv: bool = False, *, timeout: Timeout = UNSET) -> Any:
        """Delete keys in ``[range_start, range_end)``; returns the DeleteRangeResponse."""
        request = codec.encode_delete_range_request(
            key_bytes(range_start, "range_start"), codec.to_bytes(range_end, "range_end"),
            prev_kv)
        return await self._call(_rpc.DELETE_RANGE, request, timeout=timeout)

    async def compact(self, revision: int, physical: bool = False, *,
                      timeout: Timeout = UNSET) -> None:
        """Discard history before ``revision``; ``physical`` waits until it is purged.

        :raises RevisionCompactedError: ``revision`` is already compacted.
        :raises FutureRevisionError: ``revision`` is in the future.
        """
        request = pb.CompactionRequest(revision=optional_count(revision, "revision"),
                                       physical=physical)
        await self._call(_rpc.COMPACT, request, timeout=timeout)

    # -- transactions -------------------------------------------------------------------

    async def transaction(self, compare: List[BaseCompare],
                          success: Optional[List[Any]] = None,
                          failure: Optional[List[Any]] = None, *,
                          timeout: Timeout = UNSET) -> Tuple[bool, List[Any]]:
        """Run ops atomically: ``success`` if every compare holds, else ``failure``;
        returns ``(succeeded, responses)`` (see :meth:`etcd3.Etcd3Client.transaction`).

        :raises TooManyOpsError: more ops than the server allows (128 by default).
        :raises DuplicateKeyError: two writes to the same key.
        """
        response = await self.transaction_response(compare, success, failure,
                                                   timeout=timeout)
        return response.succeeded, shape_txn_responses(response)

    async def transaction_response(self, compare: Sequence[BaseCompare],
                                   success: Optional[Sequence[Any]] = None,
                                   failure: Optional[Sequence[Any]] = None, *,
                                   timeout: Timeout = UNSET) -> Any:
        """Run a transaction; returns the raw TxnResponse.

        :raises TypeError: a compare or op not built with ``client.transactions``.
        :raises ValueError: a compare without an operator.
        """
        request = encode_txn(compare, success or (), failure or ())
        return await self._call(_rpc.TXN, request, timeout=timeout)


def _prefix_bounds(key_prefix: KeyType, options: Dict[str, Any]) -> Tuple[bytes, bytes]:
    """The Range bounds of a prefix read.

    :raises TypeError: ``options`` name a key or range_end, or the prefix is not
        str/bytes.
    """
    if "range_end" in options or "key" in options:
        raise TypeError("Don't use key or range_end with prefix")
    prefix = codec.to_bytes(key_prefix, "key_prefix")
    return prefix or b"\0", codec.prefix_range_end(prefix)


async def _pairs(fetch: Callable[[], Awaitable[Any]]) -> AsyncIterator[ValueMeta]:
    """(value, meta) of each key of ``await fetch()``, fetched when iteration starts."""
    response = await fetch()
    for pair in codec.range_pairs(response.kvs):
        yield pair
