"""Key-value calls: get/put/delete/range/compact and transactions."""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, Union

from . import codec
from ._grpc import rpc as _rpc
from ._sync.base import UNSET, ServiceBase
from ._sync.read_batch import ReadBatcher
from .etcdrpc import rpc_pb2 as pb
from .results import KVMetadata
from .transactions import (
    BaseCompare,
    Delete,
    Get,
    Put,
    Transactions,
    Txn,
    _int,
    key_bytes,
    lease_to_id,
    shape_txn_responses,
)

KeyType = Union[str, bytes]
ValueMeta = Tuple[bytes, KVMetadata]

SORT_ORDERS = {None: pb.RangeRequest.NONE, "none": pb.RangeRequest.NONE,
               "ascend": pb.RangeRequest.ASCEND, "descend": pb.RangeRequest.DESCEND}
SORT_TARGETS = {None: pb.RangeRequest.KEY, "key": pb.RangeRequest.KEY,
                "version": pb.RangeRequest.VERSION, "create": pb.RangeRequest.CREATE,
                "mod": pb.RangeRequest.MOD, "value": pb.RangeRequest.VALUE}


def _opt_int(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0")
    return value


def range_fields(
    key: bytes,
    range_end: Optional[bytes] = None,
    limit: Optional[int] = None,
    revision: Optional[int] = None,
    sort_order: Optional[str] = None,
    sort_target: Optional[str] = "key",
    serializable: bool = False,
    keys_only: bool = False,
    count_only: bool = False,
    min_mod_revision: Optional[int] = None,
    max_mod_revision: Optional[int] = None,
    min_create_revision: Optional[int] = None,
    max_create_revision: Optional[int] = None,
) -> Tuple[Any, ...]:
    """The checked RangeRequest fields, in the order :func:`codec.encode_range_request`
    takes them.

    :raises ValueError: unknown sort order/target, negative numbers.
    :raises TypeError: wrong option types.
    """
    try:
        order = SORT_ORDERS[sort_order]
    except (KeyError, TypeError):
        raise ValueError(f'unknown sort_order {sort_order!r}; use "ascend" or "descend"'
                         ) from None
    try:
        target = SORT_TARGETS[sort_target]
    except (KeyError, TypeError):
        raise ValueError(f'unknown sort_target {sort_target!r}; use "key", "version", '
                         '"create", "mod" or "value"') from None
    return (key, range_end, _opt_int(limit, "limit"), _opt_int(revision, "revision"),
            order, target, bool(serializable), bool(keys_only), bool(count_only),
            _opt_int(min_mod_revision, "min_mod_revision"),
            _opt_int(max_mod_revision, "max_mod_revision"),
            _opt_int(min_create_revision, "min_create_revision"),
            _opt_int(max_create_revision, "max_create_revision"))


_RANGE_FIELD_NAMES = ("key", "range_end", "limit", "revision", "sort_order", "sort_target",
                      "serializable", "keys_only", "count_only", "min_mod_revision",
                      "max_mod_revision", "min_create_revision", "max_create_revision")


def build_range_request(key: bytes, range_end: Optional[bytes] = None,
                        **options: Any) -> Any:
    """A protobuf ``RangeRequest`` with every option applied (see :func:`range_fields`)."""
    fields = dict(zip(_RANGE_FIELD_NAMES, range_fields(key, range_end, **options)))
    if fields["range_end"] is None:
        del fields["range_end"]
    return pb.RangeRequest(**fields)


def _compare_fields(item: Any) -> Tuple[Any, ...]:
    if not isinstance(item, BaseCompare):
        raise TypeError(f"compare items must be built with client.transactions "
                        f"(value/version/create/mod/lease), not {type(item).__name__}")
    if item.op is None:
        raise ValueError(f"compare on {item.key!r} has no operator; use ==, !=, < or >")
    target = item.target
    value: Union[bytes, int]
    if target == pb.Compare.VALUE:
        value = codec.to_bytes(item.value, "value compare")
    elif target == pb.Compare.LEASE:
        value = lease_to_id(item.value)
    else:
        value = _int(item.value, "compare value")
    return (item.op, target, item.key, item.range_end, value)


def _op_fields(op: Any) -> Tuple[int, Tuple[Any, ...]]:
    if isinstance(op, Put):
        return codec.OP_PUT, (op.key, op.value, op.lease, op.prev_kv)
    if isinstance(op, Get):
        return codec.OP_RANGE, range_fields(op.key, op.range_end, **op.range_options)
    if isinstance(op, Delete):
        return codec.OP_DELETE_RANGE, (op.key, op.range_end, op.prev_kv)
    if isinstance(op, Txn):
        return codec.OP_TXN, txn_fields(op.compare, op.success, op.failure)
    raise TypeError(f"transaction ops must be client.transactions.put/get/"
                    f"delete/txn, not {type(op).__name__}")


def txn_fields(compare: Sequence[Any], success: Sequence[Any], failure: Sequence[Any]
               ) -> Tuple[List[Any], List[Any], List[Any]]:
    """The checked compares and ops in :func:`codec.encode_txn_request`'s form.

    :raises TypeError: a compare or op of the wrong type.
    :raises ValueError: a compare without an operator.
    """
    return ([_compare_fields(item) for item in compare],
            [_op_fields(op) for op in success], [_op_fields(op) for op in failure])


def encode_txn(compare: Sequence[Any], success: Sequence[Any] = (),
               failure: Sequence[Any] = ()) -> bytes:
    """TxnRequest wire bytes for client.transactions compares and ops."""
    return codec.encode_txn_request(*txn_fields(compare, success, failure))


def _pairs(response: Any) -> Iterator[ValueMeta]:
    return iter(codec.range_pairs(response.kvs))


class KVMixin(ServiceBase):
    """Key-value methods of :class:`~etcd3.client.Etcd3Client`."""

    transactions = Transactions()
    _read_batcher: ReadBatcher

    # -- reads --------------------------------------------------------------------------

    def _range(self, key: bytes, range_end: Optional[bytes], timeout: Any = UNSET,
               **options: Any) -> Any:
        fields = range_fields(key, range_end, **options)
        request = codec.encode_range_request(*fields)
        if range_end is None:  # single-key reads are small: batch them
            return self._read_batcher.call(request, fields, timeout=timeout,
                                           context=f"key {key!r}")
        return self._call(_rpc.RANGE, request, timeout=timeout, context=f"key {key!r}")

    def get_response(self, key: KeyType, *, timeout: Any = UNSET, **options: Any) -> Any:
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

    def get_prefix_response(self, key_prefix: KeyType, *, timeout: Any = UNSET,
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
                           timeout: Any = UNSET, **options: Any) -> Any:
        """The raw Range response for keys in ``[range_start, range_end)``."""
        return self._range(key_bytes(range_start, "range_start"),
                           codec.to_bytes(range_end, "range_end"), timeout, **options)

    def get_range(self, range_start: KeyType, range_end: KeyType,
                  **options: Any) -> Iterator[ValueMeta]:
        """(value, KVMetadata) for keys in ``[range_start, range_end)``."""
        return _pairs(self.get_range_response(range_start, range_end, **options))

    def get_all_response(self, *, timeout: Any = UNSET, **options: Any) -> Any:
        """The raw Range response for every key in the store."""
        return self._range(b"\0", b"\0", timeout, **options)

    def get_all(self, **options: Any) -> Iterator[ValueMeta]:
        """(value, KVMetadata) for every key in the store."""
        return _pairs(self.get_all_response(**options))

    # -- writes -------------------------------------------------------------------------

    def put(self, key: KeyType, value: KeyType, lease: Any = None, prev_kv: bool = False,
            *, timeout: Any = UNSET) -> Any:
        """Set ``key`` to ``value``; returns the PutResponse (``header``, ``prev_kv``).

        :param lease: a :class:`~etcd3.leases.Lease` or lease ID to attach.
        :raises TypeError: key or value not str/bytes. :raises ValueError: empty key.
        :raises RequestTooLargeError: the request exceeds the server's limit.
        :raises LeaseNotFoundError: the lease does not exist.
        """
        data = key_bytes(key)
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
               *, timeout: Any = UNSET) -> Any:
        """Delete ``key``; True if it existed (or the DeleteRangeResponse when
        ``return_response``)."""
        data = key_bytes(key)
        request = codec.encode_delete_range_request(data, None, prev_kv)
        response = self._call(_rpc.DELETE_RANGE, request, timeout=timeout,
                              context=f"key {data!r}")
        if return_response:
            return response
        return response.deleted >= 1

    def delete_prefix(self, prefix: KeyType, prev_kv: bool = False, *,
                      timeout: Any = UNSET) -> Any:
        """Delete every key starting with ``prefix``; returns the DeleteRangeResponse
        (``deleted`` is the count)."""
        data = codec.to_bytes(prefix, "prefix")
        request = codec.encode_delete_range_request(
            data or b"\0", codec.prefix_range_end(data), prev_kv)
        return self._call(_rpc.DELETE_RANGE, request, timeout=timeout,
                          context=f"prefix {data!r}")

    def delete_range(self, range_start: KeyType, range_end: KeyType, prev_kv: bool = False,
                     *, timeout: Any = UNSET) -> Any:
        """Delete keys in ``[range_start, range_end)``; returns the DeleteRangeResponse."""
        request = codec.encode_delete_range_request(
            key_bytes(range_start, "range_start"), codec.to_bytes(range_end, "range_end"),
            prev_kv)
        return self._call(_rpc.DELETE_RANGE, request, timeout=timeout)

    def compact(self, revision: int, physical: bool = False, *,
                timeout: Any = UNSET) -> None:
        """Discard history before ``revision``; ``physical`` waits until it is purged.

        :raises RevisionCompactedError: ``revision`` is already compacted.
        :raises FutureRevisionError: ``revision`` is in the future.
        """
        request = pb.CompactionRequest(revision=_opt_int(revision, "revision"),
                                       physical=physical)
        self._call(_rpc.COMPACT, request, timeout=timeout)

    # -- transactions -------------------------------------------------------------------

    def transaction(self, compare: List[BaseCompare], success: Optional[List[Any]] = None,
                    failure: Optional[List[Any]] = None, *,
                    timeout: Any = UNSET) -> Tuple[bool, List[Any]]:
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
        request = encode_txn(compare, success or (), failure or ())
        response = self._call(_rpc.TXN, request, timeout=timeout)
        return response.succeeded, shape_txn_responses(response)
