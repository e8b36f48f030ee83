"""The operation model (etcd3._core.ops): each check and its message, and that every
operation encodes, with both codecs, exactly as protobuf encodes the same request."""

from __future__ import annotations

import importlib
import pickle
from typing import Any, Callable, Dict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcd3 import codec, transactions
from etcd3._core import ops
from etcd3.etcdrpc import rpc_pb2 as pb
from etcd3.leases import Lease

IMPLS = {"pure": "etcd3._core.codec_py", "compiled": "etcd3._speedups._codec"}
FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(params=sorted(IMPLS), scope="module")
def impl(request: Any) -> Any:
    """Each codec module, loaded directly."""
    return importlib.import_module(IMPLS[request.param])


# -- the numbers are etcd's ----------------------------------------------------------------

def test_enum_numbers_are_etcds() -> None:
    assert ops.SORT_ORDERS == {None: pb.RangeRequest.NONE, "none": pb.RangeRequest.NONE,
                               "ascend": pb.RangeRequest.ASCEND,
                               "descend": pb.RangeRequest.DESCEND}
    assert ops.SORT_TARGETS == {None: pb.RangeRequest.KEY, "key": pb.RangeRequest.KEY,
                                "version": pb.RangeRequest.VERSION,
                                "create": pb.RangeRequest.CREATE,
                                "mod": pb.RangeRequest.MOD, "value": pb.RangeRequest.VALUE}
    assert (ops.EQUAL, ops.GREATER, ops.LESS, ops.NOT_EQUAL) == (
        pb.Compare.EQUAL, pb.Compare.GREATER, pb.Compare.LESS, pb.Compare.NOT_EQUAL)
    assert (ops.VERSION, ops.CREATE, ops.MOD, ops.VALUE, ops.LEASE) == (
        pb.Compare.VERSION, pb.Compare.CREATE, pb.Compare.MOD, pb.Compare.VALUE,
        pb.Compare.LEASE)
    assert (codec.OP_RANGE, codec.OP_PUT, codec.OP_DELETE_RANGE, codec.OP_TXN) == (
        1, 2, 3, 4)  # RequestOp's oneof field numbers


def test_transactions_module_is_the_public_home_of_the_ops() -> None:
    t = transactions.Transactions()
    assert (t.value, t.version, t.create, t.mod, t.lease, t.put, t.get, t.delete,
            t.txn) == (ops.Value, ops.Version, ops.Create, ops.Mod, ops.Lease, ops.Put,
                       ops.Get, ops.Delete, ops.Txn)
    assert transactions.Put is ops.Put and transactions.key_bytes is ops.key_bytes
    assert ops.Put.__module__ == "etcd3.transactions"
    put = pickle.loads(pickle.dumps(transactions.Put("k", "v", lease=5)))
    assert (put.key, put.value, put.lease, put.prev_kv) == (b"k", b"v", 5, False)


# -- checks: each raises its one message ---------------------------------------------------

BAD: Dict[str, tuple] = {
    "key type": (lambda: ops.Put(5, "v"), TypeError, "key must be str or bytes, not int"),
    "empty key": (lambda: ops.Get(""), ValueError, "key must not be empty"),
    "value type": (lambda: ops.Put("k", None), TypeError,
                   "value must be str or bytes, not NoneType"),
    "lease type": (lambda: ops.Put("k", "v", lease=1.5), TypeError,
                   "lease must be a Lease or an int ID, not float"),
    "lease bool": (lambda: ops.Put("k", "v", lease=True), TypeError,
                   "lease must be a Lease or an int ID, not bool"),
    "range_end type": (lambda: ops.Delete("k", 3), TypeError,
                       "range_end must be str or bytes, not int"),
    "sort_order": (lambda: ops.Get("k", sort_order="up"), ValueError,
                   "unknown sort_order 'up'; use \"ascend\" or \"descend\""),
    "sort_target": (lambda: ops.Get("k", sort_target="size"), ValueError,
                    "unknown sort_target 'size'; use \"key\", \"version\", \"create\", "
                    "\"mod\" or \"value\""),
    "negative limit": (lambda: ops.Get("k", limit=-1), ValueError, "limit must be >= 0"),
    "revision type": (lambda: ops.Get("k", revision="3"), TypeError,
                      "revision must be an int, not str"),
    "revision bool": (lambda: ops.Get("k", revision=True), TypeError,
                      "revision must be an int, not bool"),
    "unknown option": (lambda: ops.Get("k", colour="red"), TypeError,
                       "range_fields() got an unexpected keyword argument 'colour'"),
    "version operand": (lambda: ops.Version("k") == "x", TypeError,
                        "version compare value must be an int, not str"),
    "create operand": (lambda: ops.Create("k") > True, TypeError,
                       "create compare value must be an int, not bool"),
    "mod operand": (lambda: ops.Mod("k") < None, TypeError,
                    "mod compare value must be an int, not NoneType"),
    "value operand": (lambda: ops.Value("k") == 1, TypeError,
                      "value compare must be str or bytes, not int"),
    "lease operand": (lambda: ops.Lease("k") != 2.0, TypeError,
                      "lease must be a Lease or an int ID, not float"),
    "no operator": (lambda: ops.encode_txn([ops.Value("k")]), ValueError,
                    "compare on b'k' has no operator; use ==, !=, < or >"),
    "compare type": (lambda: ops.encode_txn([("k", "==", "v")]), TypeError,
                     "compare items must be built with client.transactions "
                     "(value/version/create/mod/lease), not tuple"),
    "op type": (lambda: ops.encode_txn([], [ops.Value("k") == "v"]), TypeError,
                "transaction ops must be client.transactions.put/get/delete/txn, "
                "not Value"),
    "nested op type": (lambda: ops.Txn([], [], [ops.Txn([], ["get k"])]).encode(),
                       TypeError, "transaction ops must be client.transactions.put/get/"
                       "delete/txn, not str"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_check_raises_its_message(case: str) -> None:
    call, error, message = BAD[case]
    with pytest.raises(error) as raised:
        call()
    assert str(raised.value) == message


def test_a_compare_checks_its_operand_when_the_operator_is_applied() -> None:
    compare = ops.Version("k")
    assert repr(compare) == "version(b'k') ? None"
    with pytest.raises(TypeError):
        compare == "one"  # noqa: B015
    assert repr(ops.Value("k") == "v") == "value(b'k') == 'v'"
    assert repr(ops.Mod("k") < 3) == "mod(b'k') < 3"


def test_lease_forms() -> None:
    lease = Lease(7, 60)
    assert [ops.lease_to_id(x) for x in (None, 0, 5, "12", lease)] == [0, 0, 5, 12, 7]
    assert (ops.Lease("k") == lease).fields()[4] == 7
    assert ops.Put("k", "v", lease=lease).lease == 7


def test_direct_call_fields_are_the_ops_fields() -> None:
    assert (b"k", None) + ops.NO_RANGE_OPTIONS == ops.Get("k").fields() == \
        ops.range_fields(b"k")
    options = {"revision": 4, "serializable": True, "keys_only": True}
    assert ops.range_fields(b"k", b"z", **options) == ops.Get("k", "z", **options).fields()
    put = ops.Put("k", "v", 3, True)
    assert ops.put_fields("k", "v", 3, True) == (put.key, put.value, put.lease, put.prev_kv)
    delete = ops.Delete("k", "z", True)
    assert ops.delete_fields("k", "z", True) == (delete.key, delete.range_end,
                                                 delete.prev_kv)


# -- encoding == protobuf's, both codecs ---------------------------------------------------

RANGE_OPTION_NAMES = ("limit", "revision", "serializable", "keys_only", "count_only",
                      "min_mod_revision", "max_mod_revision", "min_create_revision",
                      "max_create_revision")
keys = st.binary(min_size=1, max_size=12)
counts = st.none() | st.integers(0, 2 ** 40)
range_options = st.fixed_dictionaries({}, optional={
    **{name: (counts if "only" not in name and name != "serializable" else st.booleans())
       for name in RANGE_OPTION_NAMES},
    "sort_order": st.sampled_from(sorted(ops.SORT_ORDERS, key=str)),
    "sort_target": st.sampled_from(sorted(ops.SORT_TARGETS, key=str))})


def pb_range(key: bytes, range_end: Any, options: Dict[str, Any]) -> Any:
    message = pb.RangeRequest(key=key, sort_order=ops.SORT_ORDERS[options.get("sort_order")],
                              sort_target=ops.SORT_TARGETS[options.get("sort_target")])
    if range_end is not None:
        message.range_end = range_end
    for name in RANGE_OPTION_NAMES:
        if options.get(name) is not None:
            setattr(message, name, options[name])
    return message


@FAST
@given(key=keys, range_end=st.none() | keys, options=range_options)
def test_get_encodes_as_protobuf(impl: Any, key: bytes, range_end: Any,
                                 options: Dict[str, Any]) -> None:
    get = ops.Get(key, range_end, **options)
    expected = pb_range(key, range_end, options).SerializeToString()
    assert impl.encode_range_request(*get.fields()) == expected
    assert impl.encode_range_request(*ops.range_fields(key, range_end, **options)
                                     ) == expected
    assert get.encode() == expected  # the active codec


@FAST
@given(key=keys, value=st.binary(max_size=40), lease=st.integers(0, 2 ** 63 - 1),
       prev_kv=st.booleans())
def test_put_encodes_as_protobuf(impl: Any, key: bytes, value: bytes, lease: int,
                                 prev_kv: bool) -> None:
    put = ops.Put(key, value, lease, prev_kv)
    expected = pb.PutRequest(key=key, value=value, lease=lease,
                             prev_kv=prev_kv).SerializeToString()
    assert impl.encode_put_request(*ops.put_fields(key, value, lease, prev_kv)) == expected
    assert put.encode() == expected


@FAST
@given(key=keys, range_end=st.none() | keys, prev_kv=st.booleans())
def test_delete_encodes_as_protobuf(impl: Any, key: bytes, range_end: Any,
                                    prev_kv: bool) -> None:
    expected = pb.DeleteRangeRequest(key=key, range_end=range_end or b"",
                                     prev_kv=prev_kv).SerializeToString()
    assert impl.encode_delete_range_request(*ops.delete_fields(key, range_end, prev_kv)
                                            ) == expected
    assert ops.Delete(key, range_end, prev_kv).encode() == expected


COMPARES: Dict[str, Callable[[bytes, Any], Any]] = {
    "value": lambda key, end: ops.Value(key, end) == b"v",
    "version": lambda key, end: ops.Version(key, end) > 0,
    "create": lambda key, end: ops.Create(key, end) == 0,
    "mod": lambda key, end: ops.Mod(key, end) < 2 ** 40,
    "lease": lambda key, end: ops.Lease(key, end) != Lease(9, 1),
}
PB_COMPARES = {
    "value": lambda key: pb.Compare(key=key, result=pb.Compare.EQUAL,
                                    target=pb.Compare.VALUE, value=b"v"),
    "version": lambda key: pb.Compare(key=key, result=pb.Compare.GREATER,
                                      target=pb.Compare.VERSION, version=0),
    "create": lambda key: pb.Compare(key=key, result=pb.Compare.EQUAL,
                                     target=pb.Compare.CREATE, create_revision=0),
    "mod": lambda key: pb.Compare(key=key, result=pb.Compare.LESS, target=pb.Compare.MOD,
                                  mod_revision=2 ** 40),
    "lease": lambda key: pb.Compare(key=key, result=pb.Compare.NOT_EQUAL,
                                    target=pb.Compare.LEASE, lease=9),
}


@pytest.mark.parametrize("kind", sorted(COMPARES))
@pytest.mark.parametrize("range_end", [None, b"z"])
def test_compares_encode_as_protobuf(impl: Any, kind: str, range_end: Any) -> None:
    compare = COMPARES[kind](b"k", range_end)
    expected = PB_COMPARES[kind](b"k")
    if range_end is not None:
        expected.range_end = range_end
    wire = impl.encode_txn_request(*ops.txn_fields([compare]))
    assert wire == pb.TxnRequest(compare=[expected]).SerializeToString()
    assert compare.build_message() == expected


def test_a_transaction_encodes_as_protobuf(impl: Any) -> None:
    lease = Lease(0x1F, 60)
    inner = ops.Txn([ops.Version("n") == 1], [ops.Delete("n", prev_kv=True)],
                    [ops.Get("n", keys_only=True)])
    txn = ops.Txn(
        [ops.Value("a") == "x", ops.Create("b", "c") > 3],
        [ops.Put("a", "y", lease=lease), ops.Get("p", "q", sort_order="descend",
                                                    sort_target="mod", limit=2),
         inner],
        [ops.Delete("a", "b"), ops.Get("a")])
    expected = pb.TxnRequest(
        compare=[pb.Compare(key=b"a", target=pb.Compare.VALUE, value=b"x"),
                 pb.Compare(key=b"b", range_end=b"c", target=pb.Compare.CREATE,
                            result=pb.Compare.GREATER, create_revision=3)],
        success=[
            pb.RequestOp(request_put=pb.PutRequest(key=b"a", value=b"y", lease=0x1F)),
            pb.RequestOp(request_range=pb.RangeRequest(
                key=b"p", range_end=b"q", limit=2, sort_order=pb.RangeRequest.DESCEND,
                sort_target=pb.RangeRequest.MOD)),
            pb.RequestOp(request_txn=pb.TxnRequest(
                compare=[pb.Compare(key=b"n", target=pb.Compare.VERSION, version=1)],
                success=[pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(
                    key=b"n", prev_kv=True))],
                failure=[pb.RequestOp(request_range=pb.RangeRequest(
                    key=b"n", keys_only=True))]))],
        failure=[
            pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=b"a",
                                                                    range_end=b"b")),
            pb.RequestOp(request_range=pb.RangeRequest(key=b"a"))]).SerializeToString()
    assert impl.encode_txn_request(*txn.fields()) == expected
    assert txn.encode() == expected
    assert ops.encode_txn(txn.compare, txn.success, txn.failure) == expected
    assert txn.request_op() == (codec.OP_TXN, txn.fields())
