"""The codec: both implementations against protobuf and each other, and end to end."""

from __future__ import annotations

import importlib
import os
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcd3 import codec, exceptions, results
from etcd3.etcdrpc import kv_pb2
from etcd3.etcdrpc import rpc_pb2 as pb

IMPLS = {"pure": "etcd3._core.codec_py", "compiled": "etcd3._speedups._codec"}
FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

int64 = st.integers(-(2 ** 63), 2 ** 63 - 1)
uint64 = st.integers(0, 2 ** 64 - 1)
int32 = st.integers(-(2 ** 31), 2 ** 31 - 1)
blob = st.binary(max_size=40)
edge64 = st.sampled_from([0, 1, 127, 128, 2 ** 63 - 1, -1, -(2 ** 63), 2 ** 32])


@pytest.fixture(params=sorted(IMPLS), scope="module")
def impl(request: Any) -> Any:
    """Each codec module, loaded directly (only tests do this)."""
    return importlib.import_module(IMPLS[request.param])


def test_normal_install_loads_the_compiled_codec() -> None:
    forced_pure = os.environ.get("ETCD3_NO_EXTENSIONS", "").strip() not in ("", "0")
    assert codec.IMPLEMENTATION == ("pure" if forced_pure else "compiled")
    assert results.KeyValue is codec.KeyValue
    expected = IMPLS[codec.IMPLEMENTATION]
    assert type(codec.decode_range_response(b"")).__module__ == expected.replace(
        "etcd3._core.codec_py", "etcd3._core.results_py")


def test_both_implementations_expose_the_same_names() -> None:
    names = set(codec.__all__) - {"IMPLEMENTATION"}
    for module in IMPLS.values():
        loaded = importlib.import_module(module)
        assert all(hasattr(loaded, name) for name in names), module


# -- encoders == protobuf's SerializeToString ----------------------------------------------

range_args = st.tuples(blob, st.none() | blob, int64, int64, st.integers(0, 2),
                       st.integers(0, 4), st.booleans(), st.booleans(), st.booleans(),
                       int64, int64, int64, int64)
RANGE_NAMES = ("key", "range_end", "limit", "revision", "sort_order", "sort_target",
               "serializable", "keys_only", "count_only", "min_mod_revision",
               "max_mod_revision", "min_create_revision", "max_create_revision")


def pb_range(args: Any) -> Any:
    fields = dict(zip(RANGE_NAMES, args))
    if fields["range_end"] is None:
        del fields["range_end"]
    return pb.RangeRequest(**fields)


@FAST
@given(args=range_args)
def test_range_request_matches_protobuf(impl: Any, args: Any) -> None:
    assert impl.encode_range_request(*args) == pb_range(args).SerializeToString()


@FAST
@given(key=blob, value=st.binary(max_size=300), lease=int64 | edge64,
       flags=st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_put_request_matches_protobuf(impl: Any, key: bytes, value: bytes, lease: int,
                                      flags: Any) -> None:
    expected = pb.PutRequest(key=key, value=value, lease=lease, prev_kv=flags[0],
                             ignore_value=flags[1], ignore_lease=flags[2])
    assert impl.encode_put_request(key, value, lease, *flags) == \
        expected.SerializeToString()


@FAST
@given(key=blob, range_end=st.none() | blob, prev_kv=st.booleans())
def test_delete_range_request_matches_protobuf(impl: Any, key: bytes, range_end: Any,
                                               prev_kv: bool) -> None:
    expected = pb.DeleteRangeRequest(key=key, prev_kv=prev_kv)
    if range_end is not None:
        expected.range_end = range_end
    assert impl.encode_delete_range_request(key, range_end, prev_kv) == \
        expected.SerializeToString()


COMPARE_FIELDS = {0: "version", 1: "create_revision", 2: "mod_revision", 3: "value",
                  4: "lease"}
compares = st.integers(0, 4).flatmap(lambda target: st.tuples(
    st.integers(0, 3), st.just(target), blob, st.none() | blob,
    blob if target == 3 else (int64 | edge64)))


def pb_compare(item: Any) -> Any:
    result, target, key, range_end, value = item
    message = pb.Compare(result=result, target=target, key=key,
                         **{COMPARE_FIELDS[target]: value})
    if range_end is not None:
        message.range_end = range_end
    return message


def ops(depth: int) -> Any:
    simple = st.one_of(
        st.tuples(st.just(1), range_args),
        st.tuples(st.just(2), st.tuples(blob, blob, int64, st.booleans())),
        st.tuples(st.just(3), st.tuples(blob, st.none() | blob, st.booleans())))
    if depth == 0:
        return simple
    nested = st.tuples(st.just(4), st.tuples(st.lists(compares, max_size=2),
                                             st.lists(ops(depth - 1), max_size=2),
                                             st.lists(ops(depth - 1), max_size=2)))
    return simple | nested


def pb_txn(compare: Any, success: Any, failure: Any) -> Any:
    request = pb.TxnRequest(compare=[pb_compare(c) for c in compare])
    for ops_, target in ((success, request.success), (failure, request.failure)):
        for kind, args in ops_:
            op = target.add()
            if kind == 1:
                op.request_range.CopyFrom(pb_range(args))
            elif kind == 2:
                op.request_put.CopyFrom(pb.PutRequest(key=args[0], value=args[1],
                                                      lease=args[2], prev_kv=args[3]))
            elif kind == 3:
                delete = pb.DeleteRangeRequest(key=args[0], prev_kv=args[2])
                if args[1] is not None:
                    delete.range_end = args[1]
                op.request_delete_range.CopyFrom(delete)
            else:
                op.request_txn.CopyFrom(pb_txn(*args))
    return request


@FAST
@given(compare=st.lists(compares, max_size=4), success=st.lists(ops(2), max_size=4),
       failure=st.lists(ops(1), max_size=3))
def test_txn_request_matches_protobuf(impl: Any, compare: Any, success: Any,
                                      failure: Any) -> None:
    assert impl.encode_txn_request(compare, success, failure) == \
        pb_txn(compare, success, failure).SerializeToString()


def test_txn_request_with_large_bodies_matches_protobuf(impl: Any) -> None:
    # bodies over 127 and 16383 bytes need wider length prefixes
    put = (2, (b"k" * 200, b"v" * 20000, 7, True))
    nested = (4, ([(0, 3, b"k", None, b"x" * 300)], [put] * 3, [put]))
    args = ([(1, 0, b"a", b"b", 0)], [put, nested] * 64, [nested])
    assert impl.encode_txn_request(*args) == pb_txn(*args).SerializeToString()


@FAST
@given(key=blob, range_end=st.none() | blob, start=int64, progress=st.booleans(),
       filters=st.lists(st.integers(0, 1), max_size=2), prev_kv=st.booleans(),
       watch_id=int64, fragment=st.booleans())
def test_watch_requests_match_protobuf(impl: Any, key: bytes, range_end: Any, start: int,
                                       progress: bool, filters: Any, prev_kv: bool,
                                       watch_id: int, fragment: bool) -> None:
    create = pb.WatchCreateRequest(key=key, start_revision=start,
                                   progress_notify=progress, filters=filters,
                                   prev_kv=prev_kv, watch_id=watch_id, fragment=fragment)
    if range_end is not None:
        create.range_end = range_end
    assert impl.encode_watch_create_request(
        key, range_end, start, progress, filters, prev_kv, watch_id, fragment) == \
        pb.WatchRequest(create_request=create).SerializeToString()
    cancel = pb.WatchRequest(cancel_request=pb.WatchCancelRequest(watch_id=watch_id))
    assert impl.encode_watch_cancel_request(watch_id) == cancel.SerializeToString()
    progress_request = pb.WatchRequest(progress_request=pb.WatchProgressRequest())
    assert impl.encode_watch_progress_request() == progress_request.SerializeToString()


@pytest.mark.parametrize("bad, error", [(2 ** 63, ValueError), (-(2 ** 63) - 1, ValueError),
                                        (1.5, TypeError), ("1", TypeError)])
def test_encoders_reject_bad_numbers(impl: Any, bad: Any, error: type) -> None:
    with pytest.raises(error):
        impl.encode_put_request(b"k", b"v", bad)
    with pytest.raises(error):
        impl.encode_range_request(b"k", None, bad)
    with pytest.raises(error):
        impl.encode_txn_request([(0, 0, b"k", None, bad)])


@pytest.mark.parametrize("call", [
    lambda m: m.encode_put_request("k", b"v"),
    lambda m: m.encode_put_request(b"k", None),
    lambda m: m.encode_range_request(b"k", "z"),
    lambda m: m.encode_delete_range_request(None),
    lambda m: m.encode_txn_request([(0, 3, b"k", None, 5)]),
    lambda m: m.encode_watch_create_request(b"k", filters=[None]),
])
def test_encoders_reject_bad_types(impl: Any, call: Any) -> None:
    with pytest.raises(TypeError):
        call(impl)


@pytest.mark.parametrize("call", [
    lambda m: m.encode_txn_request([(0, 9, b"k", None, 5)]),
    lambda m: m.encode_txn_request([], [(9, ())]),
    lambda m: m.encode_txn_request([], [(2, (b"k", b"v"))]),
    lambda m: m.encode_range_request(b"k", None, 0, 0, 2 ** 31),
])
def test_encoders_reject_bad_values(impl: Any, call: Any) -> None:
    with pytest.raises(ValueError):
        call(impl)


def test_too_deeply_nested_txn_is_refused(impl: Any) -> None:
    txn: Any = ([], [], [])
    for _ in range(impl.MAX_DEPTH + 2):
        txn = ([], [(4, txn)], [])
    with pytest.raises(ValueError):
        impl.encode_txn_request(*txn)


# -- decoders == protobuf's parse ----------------------------------------------------------

def kv_tuple(kv: Any) -> Any:
    return (kv.key, kv.create_revision, kv.mod_revision, kv.version, kv.value, kv.lease)


def header_tuple(header: Any) -> Any:
    return (header.cluster_id, header.member_id, header.revision, header.raft_term)


headers = st.builds(pb.ResponseHeader, cluster_id=uint64, member_id=uint64,
                    revision=int64, raft_term=uint64)
kvs = st.builds(kv_pb2.KeyValue, key=blob, create_revision=int64 | edge64,
                mod_revision=int64, version=int64, value=st.binary(max_size=200),
                lease=int64)


@FAST
@given(header=headers, items=st.lists(kvs, max_size=8), more=st.booleans(), count=int64)
def test_range_response_matches_protobuf(impl: Any, header: Any, items: Any, more: bool,
                                         count: int) -> None:
    message = pb.RangeResponse(header=header, kvs=items, more=more, count=count)
    decoded = impl.decode_range_response(message.SerializeToString())
    assert header_tuple(decoded.header) == header_tuple(header)
    assert [kv_tuple(kv) for kv in decoded.kvs] == [kv_tuple(kv) for kv in items]
    assert (decoded.more, decoded.count) == (more, count)
    assert all(kv.response_header is decoded.header for kv in decoded.kvs)
    pairs = impl.range_pairs(decoded.kvs)
    assert [(value, meta.key, meta.lease_id) for value, meta in pairs] == \
        [(kv.value, kv.key, kv.lease) for kv in items]


@FAST
@given(header=headers, prev=st.none() | kvs, deleted=int64, prevs=st.lists(kvs, max_size=4))
def test_put_and_delete_responses_match_protobuf(impl: Any, header: Any, prev: Any,
                                                 deleted: int, prevs: Any) -> None:
    put = pb.PutResponse(header=header, prev_kv=prev)
    decoded = impl.decode_put_response(put.SerializeToString())
    assert header_tuple(decoded.header) == header_tuple(header)
    assert decoded.HasField("prev_kv") == put.HasField("prev_kv")
    assert kv_tuple(decoded.prev_kv) == kv_tuple(put.prev_kv)
    delete = pb.DeleteRangeResponse(header=header, deleted=deleted, prev_kvs=prevs)
    decoded = impl.decode_delete_range_response(delete.SerializeToString())
    assert decoded.deleted == deleted
    assert [kv_tuple(kv) for kv in decoded.prev_kvs] == [kv_tuple(kv) for kv in prevs]


def response_ops(depth: int) -> Any:
    simple = st.one_of(
        st.builds(lambda h, k, m, c: pb.ResponseOp(response_range=pb.RangeResponse(
            header=h, kvs=k, more=m, count=c)), headers, st.lists(kvs, max_size=3),
            st.booleans(), int64),
        st.builds(lambda h, p: pb.ResponseOp(response_put=pb.PutResponse(
            header=h, prev_kv=p)), headers, st.none() | kvs),
        st.builds(lambda h, d: pb.ResponseOp(response_delete_range=pb.DeleteRangeResponse(
            header=h, deleted=d)), headers, int64))
    if depth == 0:
        return simple
    return simple | st.builds(lambda h, s, r: pb.ResponseOp(response_txn=pb.TxnResponse(
        header=h, succeeded=s, responses=r)), headers, st.booleans(),
        st.lists(response_ops(depth - 1), max_size=3))


def assert_txn_equal(ours: Any, theirs: Any) -> None:
    assert header_tuple(ours.header) == header_tuple(theirs.header)
    assert ours.succeeded == theirs.succeeded
    assert len(ours.responses) == len(theirs.responses)
    for op, expected in zip(ours.responses, theirs.responses):
        which = expected.WhichOneof("response")
        assert op.WhichOneof("response") == which
        mine, other = getattr(op, which), getattr(expected, which)
        assert header_tuple(mine.header) == header_tuple(other.header)
        if which == "response_range":
            assert [kv_tuple(kv) for kv in mine.kvs] == [kv_tuple(kv) for kv in other.kvs]
            assert (mine.more, mine.count) == (other.more, other.count)
        elif which == "response_put":
            assert kv_tuple(mine.prev_kv) == kv_tuple(other.prev_kv)
        elif which == "response_delete_range":
            assert mine.deleted == other.deleted
        else:
            assert_txn_equal(mine, other)


@FAST
@given(header=headers, succeeded=st.booleans(), items=st.lists(response_ops(2), max_size=5))
def test_txn_response_matches_protobuf(impl: Any, header: Any, succeeded: bool,
                                       items: Any) -> None:
    message = pb.TxnResponse(header=header, succeeded=succeeded, responses=items)
    decoded = impl.decode_txn_response(message.SerializeToString())
    assert_txn_equal(decoded, message)
    for op in decoded.responses:
        if op.WhichOneof("response") == "response_range":
            assert all(kv.response_header is decoded.header for kv in op.response_range.kvs)


events = st.builds(kv_pb2.Event, type=st.integers(0, 1), kv=kvs, prev_kv=st.none() | kvs)


@FAST
@given(header=headers, items=st.lists(events, max_size=6), watch_id=int64,
       flags=st.tuples(st.booleans(), st.booleans(), st.booleans()), compact=int64,
       reason=st.text(max_size=20))
def test_watch_response_matches_protobuf(impl: Any, header: Any, items: Any, watch_id: int,
                                         flags: Any, compact: int, reason: str) -> None:
    message = pb.WatchResponse(header=header, watch_id=watch_id, created=flags[0],
                               canceled=flags[1], fragment=flags[2],
                               compact_revision=compact, cancel_reason=reason, events=items)
    decoded = impl.decode_watch_response(message.SerializeToString())
    assert header_tuple(decoded.header) == header_tuple(header)
    assert (decoded.watch_id, decoded.created, decoded.canceled, decoded.fragment,
            decoded.compact_revision, decoded.cancel_reason) == \
        (watch_id, *flags, compact, reason)
    assert [(e.type, kv_tuple(e.kv), e.HasField("prev_kv"), kv_tuple(e.prev_kv))
            for e in decoded.events] == \
        [(e.type, kv_tuple(e.kv), e.HasField("prev_kv"), kv_tuple(e.prev_kv))
         for e in items]


def test_watch_response_into_user_event_types(impl: Any) -> None:
    from etcd3 import events as user_events

    message = pb.WatchResponse(events=[
        kv_pb2.Event(type=0, kv=kv_pb2.KeyValue(key=b"a", value=b"1", mod_revision=5)),
        kv_pb2.Event(type=1, kv=kv_pb2.KeyValue(key=b"a", mod_revision=6),
                     prev_kv=kv_pb2.KeyValue(key=b"a", value=b"1", lease=9))])
    decoded = impl.decode_watch_response(
        message.SerializeToString(), (user_events.PutEvent, user_events.DeleteEvent))
    expected = [user_events.event_from_pb(e) for e in message.events]
    assert [type(e) for e in decoded.events] == [type(e) for e in expected]
    for mine, theirs in zip(decoded.events, expected):
        assert (mine.key, mine.value, mine.mod_revision, mine.lease) == \
            (theirs.key, theirs.value, theirs.mod_revision, theirs.lease)
        assert (mine.prev_kv is None) == (theirs.prev_kv is None)
    assert decoded.events[1].prev_value == b"1"


class _AttributeEvent:  # not __slots__: decoded attribute by attribute
    pass


class _AttributeDeleteEvent(_AttributeEvent):
    pass


@FAST
@given(items=st.lists(events, max_size=6), header=headers)
def test_event_layouts_decode_like_protobuf(impl: Any, items: Any, header: Any) -> None:
    from etcd3 import events as user_events

    data = pb.WatchResponse(header=header, events=items).SerializeToString()
    expected = [user_events.event_from_pb(e) for e in items]
    fields = ("key", "value", "create_revision", "mod_revision", "version", "lease")
    for put_type, delete_type in ((user_events.PutEvent, user_events.DeleteEvent),
                                  (_AttributeEvent, _AttributeDeleteEvent)):
        layout = impl.event_layout(put_type, delete_type)
        assert (layout[0], layout[1]) == (put_type, delete_type)
        decoded = impl.decode_watch_response(data, layout).events
        assert [type(e) for e in decoded] == [
            delete_type if isinstance(e, user_events.DeleteEvent) else put_type
            for e in expected]
        for mine, theirs in zip(decoded, expected):
            assert [getattr(mine, f) for f in fields] == [getattr(theirs, f) for f in fields]
            assert (mine.prev_kv is None) == (theirs.prev_kv is None)
            if theirs.prev_kv is not None:
                assert kv_tuple(mine.prev_kv) == kv_tuple(theirs.prev_kv)


def test_unknown_fields_are_skipped(impl: Any) -> None:
    unknown = (b"\xf8\x07\x05"             # field 127 varint
               b"\xf9\x07" + b"\0" * 8 +    # field 127 fixed64
               b"\xfd\x07" + b"\0" * 4 +    # field 127 fixed32
               b"\xfa\x07\x02ab"            # field 127 bytes
               b"\xfb\x07\x08\x01\xfc\x07")  # field 127 group holding a varint
    kv = kv_pb2.KeyValue(key=b"k", value=b"v", version=3).SerializeToString()
    data = (unknown + b"\x12" + bytes([len(kv + unknown)]) + kv + unknown +
            b"\x08\x01")  # field 1 (header) sent as a varint: a wire-type mismatch
    assert pb.RangeResponse.FromString(data).kvs[0].version == 3
    decoded = impl.decode_range_response(data)
    assert [kv_tuple(k) for k in decoded.kvs] == [(b"k", 0, 0, 3, b"v", 0)]


def test_repeated_singular_messages_merge_like_protobuf(impl: Any) -> None:
    first = pb.PutResponse(header=pb.ResponseHeader(revision=5),
                           prev_kv=kv_pb2.KeyValue(key=b"k", version=2)).SerializeToString()
    second = pb.PutResponse(header=pb.ResponseHeader(raft_term=7),
                            prev_kv=kv_pb2.KeyValue(value=b"v")).SerializeToString()
    expected = pb.PutResponse.FromString(first + second)
    decoded = impl.decode_put_response(first + second)
    assert header_tuple(decoded.header) == header_tuple(expected.header)
    assert kv_tuple(decoded.prev_kv) == kv_tuple(expected.prev_kv)


@pytest.mark.parametrize("data", [
    b"\x12\x05ab",                  # length past the end
    b"\x12\x80",                    # truncated varint
    b"\x0a\x03\x08\xff\xff",        # truncated varint inside the header
    b"\x20" + b"\xff" * 10 + b"\x01",  # 11-byte varint
    b"\x00\x01",                    # field number 0
    b"\x0f",                        # wire type 7
    b"\x0c",                        # end group without a start
    b"\x0b\x08\x01",                # unterminated group
    b"\x0b\x14",                    # group ended by another field's end
    b"\x19\x00\x00",                # truncated fixed64
])
def test_malformed_bytes_raise_codec_error(impl: Any, data: bytes) -> None:
    with pytest.raises(pb.message.DecodeError if False else Exception):
        pb.RangeResponse.FromString(data)
    for decode in (impl.decode_range_response, impl.decode_put_response,
                   impl.decode_delete_range_response, impl.decode_txn_response,
                   impl.decode_watch_response):
        with pytest.raises(exceptions.CodecError):
            decode(data)


def test_deeply_nested_txn_response_raises_codec_error(impl: Any) -> None:
    data = b""
    for _ in range(impl.MAX_DEPTH + 5):
        op = b"\x22" + _len(data) + data
        data = b"\x1a" + _len(op) + op
    with pytest.raises(exceptions.CodecError):
        impl.decode_txn_response(data)


def _len(data: bytes) -> bytes:
    out = bytearray()
    n = len(data)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def test_invalid_utf8_cancel_reason_raises_codec_error(impl: Any) -> None:
    with pytest.raises(exceptions.CodecError):
        impl.decode_watch_response(b"\x32\x01\xff")


# -- the result types ----------------------------------------------------------------------

def test_result_types_behave_the_same(impl: Any) -> None:
    kv = impl.KeyValue(b"k", 1, 2, 3, b"v", 4)
    assert (kv.lease, kv.lease_id, kv.response_header) == (4, 4, None)
    assert kv == impl.KeyValue(b"k", 1, 2, 3, b"v", 4) and kv != impl.KeyValue(b"k")
    assert kv == kv_pb2.KeyValue(key=b"k", create_revision=1, mod_revision=2, version=3,
                                 value=b"v", lease=4)
    assert isinstance(kv, impl.KVMetadata)
    meta = impl.KVMetadata.from_pb(kv, "header")
    assert (meta.key, meta.lease_id, meta.response_header) == (b"k", 4, "header")
    assert meta == impl.KVMetadata(b"k", 1, 2, 3, 4, None)
    with pytest.raises(TypeError):
        hash(kv)
    assert "KeyValue(key=b'k'" in repr(kv) and "KVMetadata(key=b'k'" in repr(meta)
    header = impl.ResponseHeader(1, 2, 3, 4)
    assert header == pb.ResponseHeader(cluster_id=1, member_id=2, revision=3, raft_term=4)
    op = impl.ResponseOp(2, impl.PutResponse(header))
    assert op.WhichOneof("response") == "response_put"
    assert op.response_put.header.revision == 3 and op.response_range.kvs == []
    assert impl.ResponseOp().WhichOneof("response") is None
    put = impl.PutResponse()
    assert not put.HasField("prev_kv") and put.prev_kv.key == b""
    event = impl.WireEvent(1, kv)
    assert (event.type, event.kv, event.HasField("prev_kv")) == (1, kv, False)
    assert impl.WireEvent.DELETE == 1 and impl.WireWatchResponse().events == []


def test_decoded_keys_read_set_and_pickle_like_plain_attributes(impl: Any) -> None:
    message = pb.RangeResponse(header=pb.ResponseHeader(revision=9))
    for key in (b"/a", b"/bb", b""):
        message.kvs.add(key=key, value=b"v" + key, mod_revision=5)
    kvs = impl.decode_range_response(message.SerializeToString()).kvs
    first, second, empty = kvs
    assert pickle.loads(pickle.dumps(first)).key == b"/a"
    assert [kv.key for kv in kvs] == [b"/a", b"/bb", b""]
    assert second.key is second.key  # cut once, then kept
    second.key = b"/renamed"
    assert (second.key, second.value, empty.key) == (b"/renamed", b"v/bb", b"")
    meta = impl.range_pairs(kvs)[0][1]
    meta.key = b"/x"
    assert meta == impl.KVMetadata(b"/x", 0, 5, 0, 0, None)
