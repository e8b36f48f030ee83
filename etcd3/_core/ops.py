"""Key-value operations: one model for every request that reads or writes keys.

As etcd's Go client has one ``Op`` for Get/Put/Delete/Txn (``client/v3/op.go``), this
module has one set of operation objects, checked once when they are made, that give
the codec its fields. Every path encodes through them: direct calls
(:mod:`etcd3.kv`), ``client.transactions`` (:mod:`etcd3.transactions` re-exports the
classes under their python-etcd3 names), locks, elections, STM and bulk calls.

Direct calls, where every nanosecond counts, use the same checks and field functions
(:func:`range_fields`, :func:`key_bytes`, :func:`lease_to_id`...) without making an
object.

Numbers follow etcd's protobuf enums (checked against them by the unit tests).
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

from .. import codec

KeyType = Union[str, bytes]

_to_bytes = codec.to_bytes

#: ``RangeRequest.SortOrder`` by the name :meth:`~etcd3.Etcd3Client.get` takes.
SORT_ORDERS = {None: 0, "none": 0, "ascend": 1, "descend": 2}
#: ``RangeRequest.SortTarget`` by the name :meth:`~etcd3.Etcd3Client.get` takes.
SORT_TARGETS = {None: 0, "key": 0, "version": 1, "create": 2, "mod": 3, "value": 4}

# Compare.CompareResult
EQUAL, GREATER, LESS, NOT_EQUAL = 0, 1, 2, 3
# Compare.CompareTarget
VERSION, CREATE, MOD, VALUE, LEASE = 0, 1, 2, 3, 4

#: RangeRequest fields in :func:`codec.encode_range_request`'s order.
RangeFields = Tuple[Any, ...]
#: PutRequest fields: ``(key, value, lease, prev_kv)``.
PutFields = Tuple[bytes, bytes, int, Any]
#: DeleteRangeRequest fields: ``(key, range_end, prev_kv)``.
DeleteFields = Tuple[bytes, Optional[bytes], Any]
#: Compare fields: ``(result, target, key, range_end, value)``.
CompareFields = Tuple[int, int, bytes, Optional[bytes], Union[bytes, int]]
#: A RequestOp as the codec takes it: ``(kind, fields)``.
RequestOp = Tuple[int, Tuple[Any, ...]]
#: TxnRequest fields: ``(compares, success, failure)``.
TxnFields = Tuple[List[CompareFields], List[RequestOp], List[RequestOp]]


# -- argument checks (each exists here only) ----------------------------------------------

def key_bytes(key: Any, what: str = "key") -> bytes:
    """The key as bytes; rejects empty keys and non-str/bytes types.

    :raises TypeError: ``key`` is not str or bytes.
    :raises ValueError: ``key`` is empty.
    """
    data = _to_bytes(key, what)
    if not data:
        raise ValueError(f"{what} must not be empty")
    return data


def optional_bytes(value: Any, what: str) -> Optional[bytes]:
    """None, or ``value`` as bytes. :raises TypeError: not str or bytes."""
    return None if value is None else _to_bytes(value, what)


def lease_to_id(lease: Any) -> int:
    """A lease ID from a :class:`~etcd3.leases.Lease`, an int, or None (0).

    :raises TypeError: anything else.
    """
    if lease is None:
        return 0
    if type(lease) is int:
        return lease
    lease_id = getattr(lease, "id", lease)
    if isinstance(lease_id, bool) or not isinstance(lease_id, (int, str)):
        raise TypeError(f"lease must be a Lease or an int ID, not {type(lease).__name__}")
    return int(lease_id)


def int_value(value: Any, what: str) -> int:
    """``value`` as an int (anything ``int()`` takes, except bools).

    :raises TypeError: a bool, or not convertible.
    """
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not bool")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None


def optional_count(value: Any, name: str) -> int:
    """A non-negative int option; None means 0 (unset).

    :raises TypeError: not an int (bools included).
    :raises ValueError: negative.
    """
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0")
    return value


# -- request fields --------------------------------------------------------------------------

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
) -> RangeFields:
    """The checked RangeRequest fields, in the order :func:`codec.encode_range_request`
    takes them (``key``/``range_end`` are taken as they are: already bytes).

    :raises ValueError: unknown sort order/target, negative numbers.
    :raises TypeError: wrong option types, an unknown option.
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
    return (key, range_end, optional_count(limit, "limit"),
            optional_count(revision, "revision"), order, target, bool(serializable),
            bool(keys_only), bool(count_only),
            optional_count(min_mod_revision, "min_mod_revision"),
            optional_count(max_mod_revision, "max_mod_revision"),
            optional_count(min_create_revision, "min_create_revision"),
            optional_count(max_create_revision, "max_create_revision"))


#: The RangeRequest fields after ``key, range_end`` when no option is given.
NO_RANGE_OPTIONS = range_fields(b"")[2:]


def put_fields(key: Any, value: Any, lease: Any = None, prev_kv: Any = False) -> PutFields:
    """The checked PutRequest fields ``(key, value, lease id, prev_kv)``.

    :raises TypeError: key or value not str/bytes, a bad lease.
    :raises ValueError: empty key.
    """
    return (key_bytes(key), _to_bytes(value, "value"),
            0 if lease is None else lease_to_id(lease), prev_kv)


def delete_fields(key: Any, range_end: Any = None, prev_kv: Any = False) -> DeleteFields:
    """The checked DeleteRangeRequest fields ``(key, range_end, prev_kv)``.

    :raises TypeError: key or range_end not str/bytes.
    :raises ValueError: empty key.
    """
    if range_end is None:
        return key_bytes(key), None, prev_kv
    return key_bytes(key), _to_bytes(range_end, "range_end"), prev_kv


# -- compares --------------------------------------------------------------------------------

_OPERATORS = {None: "?", EQUAL: "==", NOT_EQUAL: "!=", LESS: "<", GREATER: ">"}


class BaseCompare:
    """A comparison on a key (or range), completed by ``==``, ``!=``, ``<`` or ``>``.

    The operand is checked when the operator is applied.

    :raises TypeError: key or operand of the wrong type.
    :raises ValueError: empty key.
    """

    target: int = VALUE

    def __init__(self, key: KeyType, range_end: Optional[KeyType] = None) -> None:
        self.key = key_bytes(key)
        self.range_end = optional_bytes(range_end, "range_end")
        self.value: Any = None
        self.op: Optional[int] = None
        self._operand: Union[bytes, int] = 0

    def _set(self, other: Any, op: int) -> BaseCompare:
        self.value = other
        self.op = op
        self._operand = self._checked(other)
        return self

    def __eq__(self, other: Any) -> BaseCompare:  # type: ignore[override]
        return self._set(other, EQUAL)

    def __ne__(self, other: Any) -> BaseCompare:  # type: ignore[override]
        return self._set(other, NOT_EQUAL)

    def __lt__(self, other: Any) -> BaseCompare:
        return self._set(other, LESS)

    def __gt__(self, other: Any) -> BaseCompare:
        return self._set(other, GREATER)

    __hash__ = object.__hash__

    def _checked(self, value: Any) -> Union[bytes, int]:
        """The operand as the wire carries it. :raises TypeError: wrong type."""
        return int_value(value, f"{type(self).__name__.lower()} compare value")

    def fields(self) -> CompareFields:
        """``(result, target, key, range_end, value)`` for the codec.

        :raises ValueError: no operator was applied (e.g. ``value(k)`` alone).
        """
        if self.op is None:
            raise ValueError(f"compare on {self.key!r} has no operator; use ==, !=, < or >")
        return (self.op, self.target, self.key, self.range_end, self._operand)

    def build_message(self) -> Any:
        """The ``etcdserverpb.Compare`` protobuf message (python-etcd3's method).

        :raises ValueError: no operator was applied.
        """
        from ..etcdrpc import rpc_pb2  # protobuf only for this compatibility method

        wire = codec.encode_txn_request([self.fields()])
        return rpc_pb2.TxnRequest.FromString(wire).compare[0]

    def __repr__(self) -> str:
        return (f"{type(self).__name__.lower()}({self.key!r}) "
                f"{_OPERATORS[self.op]} {self.value!r}")


class Value(BaseCompare):
    """Compare the value of a key."""

    target = VALUE

    def _checked(self, value: Any) -> Union[bytes, int]:
        return codec.to_bytes(value, "value compare")


class Version(BaseCompare):
    """Compare the version of a key (0 when it does not exist)."""

    target = VERSION


class Create(BaseCompare):
    """Compare the create revision of a key (0 when it does not exist)."""

    target = CREATE


class Mod(BaseCompare):
    """Compare the mod revision of a key."""

    target = MOD


class Lease(BaseCompare):
    """Compare the lease ID attached to a key."""

    target = LEASE

    def _checked(self, value: Any) -> Union[bytes, int]:
        return lease_to_id(value)


# -- operations ------------------------------------------------------------------------------

class Put:
    """Set ``key`` to ``value`` (attached to ``lease``, a Lease or an ID).

    :raises TypeError: key or value not str/bytes, a bad lease.
    :raises ValueError: empty key.
    """

    def __init__(self, key: KeyType, value: KeyType, lease: Any = None,
                 prev_kv: bool = False) -> None:
        self.key, self.value, self.lease, self.prev_kv = put_fields(key, value, lease,
                                                                    prev_kv)

    def request_op(self) -> RequestOp:
        """``(codec.OP_PUT, fields)``: this op inside a transaction."""
        return codec.OP_PUT, (self.key, self.value, self.lease, self.prev_kv)

    def encode(self) -> bytes:
        """PutRequest wire bytes."""
        return codec.encode_put_request(self.key, self.value, self.lease, self.prev_kv)


class Get:
    """Read ``key``, or ``[key, range_end)``; options as :meth:`~etcd3.Etcd3Client.get`
    (``limit, revision, sort_order, sort_target, serializable, keys_only, count_only,
    min/max_mod_revision, min/max_create_revision``).

    :raises TypeError: key or range_end not str/bytes, bad option types.
    :raises ValueError: empty key, unknown sort order/target, negative numbers.
    """

    def __init__(self, key: KeyType, range_end: Optional[KeyType] = None,
                 **range_options: Any) -> None:
        self.key = key_bytes(key)
        self.range_end = optional_bytes(range_end, "range_end")
        self.range_options = range_options
        self._options = (range_fields(self.key, None, **range_options)[2:]
                         if range_options else NO_RANGE_OPTIONS)

    def fields(self) -> RangeFields:
        """The RangeRequest fields in :func:`codec.encode_range_request`'s order."""
        return (self.key, self.range_end) + self._options

    def request_op(self) -> RequestOp:
        """``(codec.OP_RANGE, fields)``: this op inside a transaction."""
        return codec.OP_RANGE, self.fields()

    def encode(self) -> bytes:
        """RangeRequest wire bytes."""
        return codec.encode_range_request(*self.fields())


class Delete:
    """Delete ``key``, or the keys in ``[key, range_end)``.

    :raises TypeError: key or range_end not str/bytes.
    :raises ValueError: empty key.
    """

    def __init__(self, key: KeyType, range_end: Optional[KeyType] = None,
                 prev_kv: bool = False) -> None:
        self.key, self.range_end, self.prev_kv = delete_fields(key, range_end, prev_kv)

    def request_op(self) -> RequestOp:
        """``(codec.OP_DELETE_RANGE, fields)``: this op inside a transaction."""
        return codec.OP_DELETE_RANGE, (self.key, self.range_end, self.prev_kv)

    def encode(self) -> bytes:
        """DeleteRangeRequest wire bytes."""
        return codec.encode_delete_range_request(self.key, self.range_end, self.prev_kv)


class Txn:
    """A transaction: ``success`` ops if every compare holds, else ``failure`` ops.

    Nested in another transaction it needs etcd >= 3.3. Compares and ops are checked
    when it is encoded (:meth:`fields`).
    """

    def __init__(self, compare: Sequence[BaseCompare],
                 success: Optional[Sequence[Any]] = None,
                 failure: Optional[Sequence[Any]] = None) -> None:
        self.compare = list(compare)
        self.success = list(success or ())
        self.failure = list(failure or ())

    def fields(self) -> TxnFields:
        """The checked compares and ops in :func:`codec.encode_txn_request`'s form.

        :raises TypeError: a compare or op of the wrong type.
        :raises ValueError: a compare without an operator.
        """
        return txn_fields(self.compare, self.success, self.failure)

    def request_op(self) -> RequestOp:
        """``(codec.OP_TXN, fields)``: this transaction nested in another."""
        return codec.OP_TXN, self.fields()

    def encode(self) -> bytes:
        """TxnRequest wire bytes. :raises TypeError, ValueError: as :meth:`fields`."""
        return codec.encode_txn_request(*self.fields())


Op = Union[Put, Get, Delete, Txn]
_OPS = (Put, Get, Delete, Txn)


def _compare_fields(item: Any) -> CompareFields:
    if not isinstance(item, BaseCompare):
        raise TypeError(f"compare items must be built with client.transactions "
                        f"(value/version/create/mod/lease), not {type(item).__name__}")
    return item.fields()


def _request_op(op: Any) -> RequestOp:
    if not isinstance(op, _OPS):
        raise TypeError(f"transaction ops must be client.transactions.put/get/"
                        f"delete/txn, not {type(op).__name__}")
    return op.request_op()


def txn_fields(compare: Sequence[Any], success: Sequence[Any] = (),
               failure: Sequence[Any] = ()) -> TxnFields:
    """The checked compares and ops in :func:`codec.encode_txn_request`'s form.

    :raises TypeError: a compare or op of the wrong type.
    :raises ValueError: a compare without an operator.
    """
    return ([_compare_fields(item) for item in compare],
            [_request_op(op) for op in success], [_request_op(op) for op in failure])


def encode_txn(compare: Sequence[Any], success: Sequence[Any] = (),
               failure: Sequence[Any] = ()) -> bytes:
    """TxnRequest wire bytes for these compares and ops.

    :raises TypeError: a compare or op of the wrong type.
    :raises ValueError: a compare without an operator.
    """
    return codec.encode_txn_request(*txn_fields(compare, success, failure))

