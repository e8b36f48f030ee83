"""Compare and operation builders for :meth:`Etcd3Client.transaction`.

Used as in python-etcd3::

    client.transaction(
        compare=[client.transactions.value('/k') == 'v',
                 client.transactions.version('/k') > 0],
        success=[client.transactions.put('/k', 'new')],
        failure=[client.transactions.get('/k')],
    )
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Union

from . import codec
from .etcdrpc import rpc_pb2 as pb

KeyType = Union[str, bytes]


def key_bytes(key: Any, what: str = "key") -> bytes:
    """The key as bytes; rejects empty keys and non-str/bytes types.

    :raises TypeError: ``key`` is not str or bytes.
    :raises ValueError: ``key`` is empty.
    """
    data = codec.to_bytes(key, what)
    if not data:
        raise ValueError(f"{what} must not be empty")
    return data


def lease_to_id(lease: Any) -> int:
    """A lease ID from a :class:`~etcd3.leases.Lease`, an int, or None (0).

    :raises TypeError: anything else.
    """
    if lease is None:
        return 0
    lease_id = getattr(lease, "id", lease)
    if isinstance(lease_id, bool) or not isinstance(lease_id, (int, str)):
        raise TypeError(f"lease must be a Lease or an int ID, not {type(lease).__name__}")
    return int(lease_id)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not bool")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None


class BaseCompare:
    """A comparison on a key (or range), completed by ``==``, ``!=``, ``<`` or ``>``."""

    target: pb.Compare.CompareTarget = pb.Compare.VALUE

    def __init__(self, key: KeyType, range_end: Optional[KeyType] = None) -> None:
        self.key = key_bytes(key)
        self.range_end = None if range_end is None else codec.to_bytes(range_end, "range_end")
        self.value: Any = None
        self.op: Optional[pb.Compare.CompareResult] = None

    def _set(self, other: Any, op: pb.Compare.CompareResult) -> BaseCompare:
        self.value = other
        self.op = op
        self._check_value()
        return self

    def __eq__(self, other: Any) -> BaseCompare:  # type: ignore[override]
        return self._set(other, pb.Compare.EQUAL)

    def __ne__(self, other: Any) -> BaseCompare:  # type: ignore[override]
        return self._set(other, pb.Compare.NOT_EQUAL)

    def __lt__(self, other: Any) -> BaseCompare:
        return self._set(other, pb.Compare.LESS)

    def __gt__(self, other: Any) -> BaseCompare:
        return self._set(other, pb.Compare.GREATER)

    __hash__ = object.__hash__

    def _check_value(self) -> None:
        _int(self.value, f"{type(self).__name__.lower()} compare value")

    def _fill(self, compare: Any) -> None:
        raise NotImplementedError

    def build_message(self) -> Any:
        """The ``etcdserverpb.Compare`` message.

        :raises ValueError: no operator was applied (e.g. ``value(k)`` alone).
        """
        if self.op is None:
            raise ValueError(f"compare on {self.key!r} has no operator; use ==, !=, < or >")
        compare = pb.Compare(key=self.key, result=self.op, target=self.target)
        if self.range_end is not None:
            compare.range_end = self.range_end
        self._fill(compare)
        return compare

    def __repr__(self) -> str:
        ops = {None: "?", pb.Compare.EQUAL: "==", pb.Compare.NOT_EQUAL: "!=",
               pb.Compare.LESS: "<", pb.Compare.GREATER: ">"}
        return f"{type(self).__name__.lower()}({self.key!r}) {ops[self.op]} {self.value!r}"


class Value(BaseCompare):
    """Compare the value of a key."""

    target = pb.Compare.VALUE

    def _check_value(self) -> None:
        codec.to_bytes(self.value, "value compare")

    def _fill(self, compare: Any) -> None:
        compare.value = codec.to_bytes(self.value, "value compare")


class Version(BaseCompare):
    """Compare the version of a key (0 when it does not exist)."""

    target = pb.Compare.VERSION

    def _fill(self, compare: Any) -> None:
        compare.version = _int(self.value, "version")


class Create(BaseCompare):
    """Compare the create revision of a key (0 when it does not exist)."""

    target = pb.Compare.CREATE

    def _fill(self, compare: Any) -> None:
        compare.create_revision = _int(self.value, "create revision")


class Mod(BaseCompare):
    """Compare the mod revision of a key."""

    target = pb.Compare.MOD

    def _fill(self, compare: Any) -> None:
        compare.mod_revision = _int(self.value, "mod revision")


class Lease(BaseCompare):
    """Compare the lease ID attached to a key."""

    target = pb.Compare.LEASE

    def _check_value(self) -> None:
        lease_to_id(self.value)

    def _fill(self, compare: Any) -> None:
        compare.lease = lease_to_id(self.value)


class Put:
    """A put operation inside a transaction."""

    def __init__(self, key: KeyType, value: KeyType, lease: Any = None,
                 prev_kv: bool = False) -> None:
        self.key = key_bytes(key)
        self.value = codec.to_bytes(value, "value")
        self.lease = lease_to_id(lease)
        self.prev_kv = prev_kv


class Get:
    """A range (get) operation inside a transaction; options as :meth:`get`."""

    def __init__(self, key: KeyType, range_end: Optional[KeyType] = None,
                 **range_options: Any) -> None:
        self.key = key_bytes(key)
        self.range_end = None if range_end is None else codec.to_bytes(range_end, "range_end")
        self.range_options = range_options


class Delete:
    """A delete operation inside a transaction."""

    def __init__(self, key: KeyType, range_end: Optional[KeyType] = None,
                 prev_kv: bool = False) -> None:
        self.key = key_bytes(key)
        self.range_end = None if range_end is None else codec.to_bytes(range_end, "range_end")
        self.prev_kv = prev_kv


class Txn:
    """A nested transaction operation (etcd >= 3.3)."""

    def __init__(self, compare: Sequence[BaseCompare],
                 success: Optional[Sequence[Any]] = None,
                 failure: Optional[Sequence[Any]] = None) -> None:
        self.compare = list(compare)
        self.success = list(success or ())
        self.failure = list(failure or ())


Op = Union[Put, Get, Delete, Txn]


class Transactions:
    """``client.transactions``: the builders, as python-etcd3 exposes them."""

    def __init__(self) -> None:
        self.value = Value
        self.version = Version
        self.create = Create
        self.mod = Mod
        self.lease = Lease
        self.put = Put
        self.get = Get
        self.delete = Delete
        self.txn = Txn


def build_txn_request(compare: Sequence[BaseCompare], success: Sequence[Any],
                      failure: Sequence[Any]) -> Any:
    """The ``TxnRequest`` message for the given compares and ops.

    :raises TypeError: a compare or op of the wrong type.
    """
    from .kv import build_range_request  # the one place range options are checked

    request = pb.TxnRequest()
    for item in compare:
        if not isinstance(item, BaseCompare):
            raise TypeError(f"compare items must be built with client.transactions "
                            f"(value/version/create/mod/lease), not {type(item).__name__}")
        request.compare.append(item.build_message())

    def fill(ops: Sequence[Any], target: Any) -> None:
        for op in ops:
            request_op = target.add()
            if isinstance(op, Put):
                request_op.request_put.CopyFrom(pb.PutRequest(
                    key=op.key, value=op.value, lease=op.lease, prev_kv=op.prev_kv))
            elif isinstance(op, Get):
                request_op.request_range.CopyFrom(
                    build_range_request(op.key, op.range_end, **op.range_options))
            elif isinstance(op, Delete):
                delete = pb.DeleteRangeRequest(key=op.key, prev_kv=op.prev_kv)
                if op.range_end is not None:
                    delete.range_end = op.range_end
                request_op.request_delete_range.CopyFrom(delete)
            elif isinstance(op, Txn):
                request_op.request_txn.CopyFrom(
                    build_txn_request(op.compare, op.success, op.failure))
            else:
                raise TypeError(f"transaction ops must be client.transactions.put/get/"
                                f"delete/txn, not {type(op).__name__}")

    fill(success, request.success)
    fill(failure, request.failure)
    return request


def shape_txn_responses(txn_response: Any) -> List[Any]:
    """python-etcd3's shape: a get yields a list of (value, KVMetadata); a put, delete or
    nested txn yields its ``ResponseOp``."""
    from .results import KVMetadata

    header = txn_response.header
    shaped: List[Any] = []
    for response in txn_response.responses:
        if response.WhichOneof("response") == "response_range":
            shaped.append([(kv.value, KVMetadata.from_pb(kv, header))
                           for kv in response.response_range.kvs])
        else:
            shaped.append(response)
    return shaped
