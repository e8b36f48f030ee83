"""Hostile bytes: every decoder returns or raises CodecError, never anything else, and
the pure and compiled codecs (and protobuf, on accept/reject) agree."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Optional, Tuple

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcd3.etcdrpc import kv_pb2
from etcd3.etcdrpc import rpc_pb2 as pb
from etcd3.exceptions import CodecError

PURE = importlib.import_module("etcd3._core.codec_py")
COMPILED = importlib.import_module("etcd3._speedups._codec")
DECODERS = [("decode_range_response", pb.RangeResponse),
            ("decode_put_response", pb.PutResponse),
            ("decode_delete_range_response", pb.DeleteRangeResponse),
            ("decode_txn_response", pb.TxnResponse),
            ("decode_watch_response", pb.WatchResponse)]
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def outcome(decode: Callable[[bytes], Any], data: bytes) -> Tuple[bool, Optional[str]]:
    """(accepted, a canonical rendering of the result)."""
    try:
        return True, render(decode(data))
    except CodecError:
        return False, None


def render(obj: Any) -> str:
    """Every public attribute, recursively, so both implementations compare equal."""
    if isinstance(obj, (bytes, str, int, bool)) or obj is None:
        return repr(obj)
    if isinstance(obj, list):
        return "[" + ",".join(render(item) for item in obj) + "]"
    names = [n for n in dir(obj) if not n.startswith("_") and n not in (
        "HasField", "WhichOneof", "from_pb", "PUT", "DELETE", "kind", "response")]
    return type(obj).__name__ + "{" + ",".join(
        f"{name}={render(getattr(obj, name))}" for name in sorted(names)) + "}"


def check(data: bytes) -> None:
    for name, message in DECODERS:
        pure = outcome(getattr(PURE, name), data)
        compiled = outcome(getattr(COMPILED, name), data)
        assert pure == compiled, (name, data)
        try:
            message.FromString(data)
            accepted = True
        except DecodeError:
            accepted = False
        assert pure[0] == accepted, (name, data, accepted)


@FUZZ
@given(data=st.binary(max_size=64))
def test_random_bytes(data: bytes) -> None:
    check(data)


tags = st.sampled_from([0x08, 0x0A, 0x10, 0x12, 0x18, 0x1A, 0x20, 0x22, 0x28, 0x2A, 0x32,
                        0x5A, 0x0B, 0x0C, 0x0D, 0x09, 0xF8, 0x00, 0x07])
fragments = st.one_of(tags.map(lambda t: bytes([t])), st.binary(max_size=3),
                      st.integers(0, 200).map(lambda n: bytes([n])))


@FUZZ
@given(parts=st.lists(fragments, max_size=30))
def test_tag_shaped_bytes(parts: Any) -> None:
    check(b"".join(parts))


def _sample_messages() -> list:
    kv = kv_pb2.KeyValue(key=b"key", value=b"v" * 130, create_revision=2 ** 40,
                         mod_revision=-1, version=3, lease=7)
    header = pb.ResponseHeader(cluster_id=2 ** 64 - 1, member_id=5, revision=9, raft_term=2)
    txn = pb.TxnResponse(header=header, succeeded=True, responses=[
        pb.ResponseOp(response_range=pb.RangeResponse(header=header, kvs=[kv], count=1)),
        pb.ResponseOp(response_put=pb.PutResponse(header=header, prev_kv=kv)),
        pb.ResponseOp(response_txn=pb.TxnResponse(responses=[
            pb.ResponseOp(response_delete_range=pb.DeleteRangeResponse(deleted=2))]))])
    return [
        pb.RangeResponse(header=header, kvs=[kv, kv], more=True, count=2),
        pb.PutResponse(header=header, prev_kv=kv),
        pb.DeleteRangeResponse(header=header, deleted=1, prev_kvs=[kv]),
        txn,
        pb.WatchResponse(header=header, watch_id=3, created=True, cancel_reason="é",
                         events=[kv_pb2.Event(type=1, kv=kv, prev_kv=kv)]),
    ]


@pytest.mark.parametrize("message", _sample_messages(), ids=lambda m: type(m).__name__)
def test_every_truncation(message: Any) -> None:
    data = message.SerializeToString()
    for end in range(len(data) + 1):
        check(data[:end])


@FUZZ
@given(index=st.integers(0, 10 ** 6), byte=st.integers(0, 255),
       which=st.integers(0, 4))
def test_single_byte_corruption(index: int, byte: int, which: int) -> None:
    data = bytearray(_SAMPLES[which])
    data[index % len(data)] = byte
    check(bytes(data))


_SAMPLES = [m.SerializeToString() for m in _sample_messages()]
