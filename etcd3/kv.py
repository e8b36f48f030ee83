"""Key-value calls: get/put/delete/range/compact and transactions."""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, Union

from . import codec
from ._core.ops import (
    NO_RANGE_OPTIONS,
    encode_txn,
    key_bytes,
    lease_to_id,
    optional_count,
    range_fields,
)
from ._grpc import rpc as _rpc
from ._sync.base import UNSET, ServiceBase, Timeout
from ._sync.read_batch import ReadBatcher
from ._sync.write_batch import WriteBatcher
from .etcdrpc import rpc_pb2 as pb
from .results import KVMetadata
from .transactions import BaseCompare, Transactions, shape_txn_responses

KeyType = Union[str, bytes]
ValueMeta = Tuple[bytes, KVMetadata]


def _pairs(response: Any) -> Iterator[ValueMeta]:
    return iter(codec.range_pairs(response.kvs))


class KVMixin(ServiceBase):
    """Key-value methods of :class:`~etcd3.client.Etcd3Client`."""

    transactions = Transactions()
    _read_batcher: ReadBatcher
    _write_batcher: Optional[WriteBatcher] = None

    # -- reads --------------------------------------------------------------------------

    def _range(self, key: bytes, range_end: Optional[bytes], timeout: Timeout = UNSET,
               **options: Any) -> Any:
        fields = (range_fields(key, range_end, **options) if options
                  else (key, range_end) + NO_RANGE_OPTIONS)
        request = codec.encode_range_request(*fields)
        if range_end is None:  # single-key reads are small: batch them
            return self._read_batcher.call(request, fields, timeout=timeout,
                                           context=f"key {key!r}")
        return self._call(_rpc.RANGE, request, timeout=timeout, context=f"key {key!r}")

    def get_response(self, key: KeyType, *, timeout: Timeout = UNSET, **options: Any) -> Any:
        """The raw Range response for one key (``header``, ``kvs``, ``count``, ``more``).

        Options: ``revision, serializable, keys_only, count_only, min/max_mod_revision,
        min/max_create_revision`` (and ``limit, sort_order, sort_target``).
        :raises RevisionCompactedError: ``revision`` was compacted.
        """
        return self._range(key_bytes(key), None, timeout, **options)

    def get(self, key: KeyType, **options: Any
            ) -> Union[Tuple[bytes, KVMetadata], Tuple[None, None]]:
        """The value of ``key`` and its metadata, or ``(None, None)`` if it is absent.

        :raises TypeError: ``key`` is not str/bytes. :raises ValueError: empty key.
        """
        response = self.get_response(key, **options)
        if not response.kvs:
            return None, None
        kv = response.kvs[0]
        return kv.value, kv  # a KeyValue is its own KVMetadata

    def get_prefix_response(self, key_prefix: KeyType, *, timeout: Timeout = UNSET,
                            **options: Any) -> Any:
        """The raw Range response for every key starting with ``key_prefix``."""
        if "range_end" in options or "key" in options:
            raise TypeError("Don't use key or range_end with prefix")
        prefix = codec.to_bytes(key_prefix, "key_prefix")
        return self._range(prefix or b"\0", codec.prefix_range_end(prefix), timeout,
                           **options)

    def get_prefix(self, key_prefix: KeyType, page_size: Optional[int] = None,
                   **options: Any) -> Iterator[ValueMeta]:
        """(value, KVMetadata) for every key starting with ``key_prefix``, in key order
        unless ``sort_order``/``sort_target`` say otherwise.

        With ``page_size``, keys are fetched ``page_size`` at a time, all pages at one
        revision, so memory stays bounded however large the prefix
        (see :meth:`iter_prefix`).
        """
        if page_size is not None:
            return self.iter_prefix(key_prefix, page_size=page_size, **options)
        return _pairs(self.get_prefix_response(key_prefix, **options))

    # Paged iteration of a prefix: provided by :class:`~etcd3.bulk.BulkMixin` (declared
    # here, not defined, so the mixin order of the client does not hide it).
    iter_prefix: Callable[..., Iterator[ValueMeta]]

    def get_range_response(self, range_start: KeyType, range_end: KeyType, *,
                           timeout: Timeout = UNSET, **options: Any) -> Any:
        """The raw Range response for keys in ``[range_start, range_end)``."""
        return self._range(key_bytes(range_start, "range_start"),
                           codec.to_bytes(range_end, "range_end"), timeout, **options)

    def get_range(self, range_start: KeyType, range_end: KeyType,
                  **options: Any) -> Iterator[ValueMeta]:
        """(value, KVMetadata) for keys in ``[range_start, range_end)``."""
        return _pairs(self.get_range_response(range_start, range_end, **options))

    def get_all_response(self, *, timeout: Timeout = UNSET, **options: Any) -> Any:
        """The raw Range response for every key in the store."""
        return self._range(b"\0", b"\0", timeout, **options)

    def get_all(self, **options: Any) -> Iterator[ValueMeta]:
        """(value, KVMetadata) for every key in the store."""
        return _pairs(self.get_all_response(**options))

    # -- writes -------------------------------------------------------------------------

    def put(self, key: KeyType, value: KeyType, lease: Any = None, prev_kv: bool = False,
            *, timeout: Timeout = UNSET) -> Any:
        """Set ``key`` to ``value``; returns the PutResponse (``header``, ``prev_kv``).

        :param lease: a :class:`~etcd3.leases.Lease` or lease ID to attach.
        :raises TypeError: key or value not str/bytes. :raises ValueError: empty key.
        :raises RequestTooLargeError: the request exceeds the server's limit.
        :raises LeaseNotFoundError: the lease does not exist.
        """
        # ops.put_fields' checks, called here without building its tuple: the hot path.
        data = key_bytes(key)
        if self._write_batcher is not None:
            return self._write_batcher.put(data, codec.to_bytes(value, "value"),
                                           lease_to_id(lease), prev_kv, timeout=timeout,
                                           context=f"key {data!r}")
        request = codec.encode_put_request(data, codec.to_bytes(value, "value"),
                                           lease_to_id(lease), prev_kv)
        return self._call(_rpc.PUT, request, timeout=timeout, context=f"key {data!r}")

    def put_if_not_exists(self, key: KeyType, value: KeyType, lease: Any = None) -> bool:
        """Create ``key`` only if it does not exist; True if it was created."""
        succeeded, _ = self.transaction(
            compare=[self.transactions.create(key) == 0],
            success=[self.transactions.put(key, value, lease=lease)],
            failure=[])
        return bool(succeeded)

    def replace(self, key: KeyType, initial_value: KeyType, new_value: KeyType) -> bool:
        """Set ``key`` to ``new_value`` only if it is ``initial_value``; True if it was."""
        succeeded, _ = self.transaction(
            compare=[self.transactions.value(key) == initial_value],
            success=[self.transactions.put(key, new_value)],
            failure=[])
        return bool(succeeded)

    def delete(self, key: KeyType, prev_kv: bool = False, return_response: bool = False,
               *, timeout: Timeout = UNSET) -> Any:
        """Delete ``key``; True if it existed (or the DeleteRangeResponse when
        ``return_response``)."""
        data = key_bytes(key)
        if self._write_batcher is not None:
            response = self._write_batcher.delete(data, prev_kv, timeout=timeout,
                                                  context=f"key {data!r}")
        else:
            request = codec.encode_delete_range_request(data, None, prev_kv)
            response = self._call(_rpc.DELETE_RANGE, request, timeout=timeout,
                                  context=f"key {data!r}")
        if return_response:
            return response
        return response.deleted >= 1

    def delete_prefix(self, prefix: KeyType, prev_kv: bool = False, *,
                      timeout: Timeout = UNSET) -> Any:
        """Delete every key starting with ``prefix``; returns the DeleteRangeResponse
        (``deleted`` is the count)."""
        data = codec.to_bytes(prefix, "prefix")
        request = codec.encode_delete_range_request(
            data or b"\0", codec.prefix_range_end(data), prev_kv)
        return self._call(_rpc.DELETE_RANGE, request, timeout=timeout,
                          context=f"prefix {data!r}")

    def delete_range(self, range_start: KeyType, range_end: KeyType, prev_kv: bool = False,
                     *, timeout: Timeout = UNSET) -> Any:
        """Delete keys in ``[range_start, range_end)``; returns the DeleteRangeResponse."""
        request = codec.encode_delete_range_request(
            key_bytes(range_start, "range_start"), codec.to_bytes(range_end, "range_end"),
            prev_kv)
        return self._call(_rpc.DELETE_RANGE, request, timeout=timeout)

    def compact(self, revision: int, physical: bool = False, *,
                timeout: Timeout = UNSET) -> None:
        """Discard history before ``revision``; ``physical`` waits until it is purged.

        :raises RevisionCompactedError: ``revision`` is already compacted.
        :raises FutureRevisionError: ``revision`` is in the future.
        """
        request = pb.CompactionRequest(revision=optional_count(revision, "revision"),
                                       physical=physical)
        self._call(_rpc.COMPACT, request, timeout=timeout)

    # -- transactions -------------------------------------------------------------------

    def transaction(self, compare: List[BaseCompare], success: Optional[List[Any]] = None,
                    failure: Optional[List[Any]] = None, *,
                    timeout: Timeout = UNSET) -> Tuple[bool, List[Any]]:
        """Run ops atomically: ``success`` if every compare holds, else ``failure``.

        Returns ``(succeeded, responses)``: per op, a list of (value, KVMetadata) for a
        get, or the ``ResponseOp`` for a put/delete/nested txn (as python-etcd3).
        :raises TooManyOpsError: more ops than the server allows (128 by default).
        :raises DuplicateKeyError: two writes to the same key.

        A read-only transaction (every op a get) sent to etcd 3.5.0-3.5.4, which crash
        when one's deadline passes or it is cancelled while it is applied, goes
        without a gRPC deadline: the call still returns or raises within ``timeout``,
        and the server is left to finish it.
        """
        response = self.transaction_response(compare, success, failure, timeout=timeout)
        return response.succeeded, shape_txn_responses(response)

    def transaction_response(self, compare: Sequence[BaseCompare],
                             success: Optional[Sequence[Any]] = None,
                             failure: Optional[Sequence[Any]] = None, *,
                             timeout: Timeout = UNSET) -> Any:
        """Run a transaction as :meth:`transaction` does; returns the raw TxnResponse
        (``header``, ``succeeded``, ``responses``: one ``ResponseOp`` per op).

        :raises TypeError: a compare or op not built with ``client.transactions``.
        :raises ValueError: a compare without an operator.
        """
        request = encode_txn(compare, success or (), failure or ())
        return self._call(_rpc.TXN, request, timeout=timeout)
