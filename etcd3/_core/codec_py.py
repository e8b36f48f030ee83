"""Pure-Python codec: the reference behaviour the compiled twin must match.

Every public function here exists, with the same results and exceptions, in
``etcd3/_speedups/_codec.pyx``. Import through :mod:`etcd3.codec`, never directly.

Encoders write protobuf wire bytes for etcd's hot requests from plain arguments;
decoders read wire bytes straight into the result types of :mod:`etcd3._core.results_py`.
Decoding follows protobuf's rules: unknown fields (any wire type, groups included) are
skipped, a known field sent with another wire type is treated as unknown, a repeated
singular message is merged, the last scalar wins. Truncated or malformed input raises
:class:`~etcd3.exceptions.CodecError`.
"""

from __future__ import annotations

from operator import index as _index
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

from ..exceptions import CodecError
from .results_py import (
    DeleteRangeResponse,
    KeyValue,
    KVMetadata,
    PutResponse,
    RangeResponse,
    ResponseHeader,
    ResponseOp,
    TxnResponse,
    WireEvent,
    WireWatchResponse,
)

#: Nesting limit for transactions inside transactions and for groups (upb's is 100).
MAX_DEPTH = 64

_U64 = 1 << 64
_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1
_I32_MIN = -(1 << 31)
_I32_MAX = (1 << 31) - 1

OP_RANGE, OP_PUT, OP_DELETE_RANGE, OP_TXN = 1, 2, 3, 4
_COMPARE_FIELD = {0: 0x20, 1: 0x28, 2: 0x30, 3: 0x3A, 4: 0x40}  # target -> oneof tag


# -- helpers shared with kv.py -------------------------------------------------------------

def to_bytes(value: Union[str, bytes], what: str = "key") -> bytes:
    """``str`` -> its UTF-8 bytes; ``bytes`` (or bytearray/memoryview) -> bytes.

    :raises TypeError: any other type (the message names the type and ``what``).
    """
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def prefix_range_end(prefix: bytes) -> bytes:
    """The range end that selects every key starting with ``prefix``.

    Trailing 0xff bytes are dropped and the last remaining byte incremented; an empty
    or all-0xff prefix gives ``b"\\0"`` (every key from ``prefix`` on), as etcd's
    ``clientv3.GetPrefixRangeEnd`` does.
    """
    if type(prefix) is not bytes:
        prefix = to_bytes(prefix, "prefix")
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


def range_pairs(kvs: Sequence[KeyValue]) -> List[Tuple[bytes, KVMetadata]]:
    """``[(value, metadata), ...]`` for decoded key-values (each is its own metadata)."""
    return [(kv.value, kv) for kv in kvs]


# -- encoding ------------------------------------------------------------------------------

def _i64(value: Any, what: str) -> int:
    number = _index(value)
    if not _I64_MIN <= number <= _I64_MAX:
        raise ValueError(f"{what} {number} is out of the int64 range")
    return number


def _i32(value: Any, what: str) -> int:
    number = _index(value)
    if not _I32_MIN <= number <= _I32_MAX:
        raise ValueError(f"{what} {number} is out of the int32 range")
    return number


def _bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def _varint(out: bytearray, value: int) -> None:
    if value < 0:
        value += _U64
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_int(out: bytearray, tag: int, value: int) -> None:
    if value:
        out.append(tag)
        _varint(out, value)


def _put_bytes(out: bytearray, tag: int, value: bytes) -> None:
    if value:
        out.append(tag)
        _varint(out, len(value))
        out += value


def _put_message(out: bytearray, tag: int, body: bytes) -> None:
    """A length-delimited field that is always present (oneof / repeated member)."""
    out.append(tag)
    _varint(out, len(body))
    out += body


def _range_body(out: bytearray, key: Any, range_end: Any, limit: Any, revision: Any,
                sort_order: Any, sort_target: Any, serializable: Any, keys_only: Any,
                count_only: Any, min_mod_revision: Any, max_mod_revision: Any,
                min_create_revision: Any, max_create_revision: Any) -> None:
    _put_bytes(out, 0x0A, _bytes(key, "key"))
    if range_end is not None:
        _put_bytes(out, 0x12, _bytes(range_end, "range_end"))
    _put_int(out, 0x18, _i64(limit, "limit"))
    _put_int(out, 0x20, _i64(revision, "revision"))
    _put_int(out, 0x28, _i32(sort_order, "sort_order"))
    _put_int(out, 0x30, _i32(sort_target, "sort_target"))
    _put_int(out, 0x38, 1 if serializable else 0)
    _put_int(out, 0x40, 1 if keys_only else 0)
    _put_int(out, 0x48, 1 if count_only else 0)
    _put_int(out, 0x50, _i64(min_mod_revision, "min_mod_revision"))
    _put_int(out, 0x58, _i64(max_mod_revision, "max_mod_revision"))
    _put_int(out, 0x60, _i64(min_create_revision, "min_create_revision"))
    _put_int(out, 0x68, _i64(max_create_revision, "max_create_revision"))


def encode_range_request(key: bytes, range_end: Optional[bytes] = None, limit: int = 0,
                         revision: int = 0, sort_order: int = 0, sort_target: int = 0,
                         serializable: bool = False, keys_only: bool = False,
                         count_only: bool = False, min_mod_revision: int = 0,
                         max_mod_revision: int = 0, min_create_revision: int = 0,
                         max_create_revision: int = 0) -> bytes:
    """``etcdserverpb.RangeRequest`` wire bytes (``range_end`` None: a single key).

    :raises TypeError: key/range_end not bytes, a number not an int.
    :raises ValueError: a number out of its protobuf range.
    """
    out = bytearray()
    _range_body(out, key, range_end, limit, revision, sort_order, sort_target,
                serializable, keys_only, count_only, min_mod_revision, max_mod_revision,
                min_create_revision, max_create_revision)
    return bytes(out)


def _put_body(out: bytearray, key: Any, value: Any, lease: Any, prev_kv: Any,
              ignore_value: Any = False, ignore_lease: Any = False) -> None:
    _put_bytes(out, 0x0A, _bytes(key, "key"))
    _put_bytes(out, 0x12, _bytes(value, "value"))
    _put_int(out, 0x18, _i64(lease, "lease"))
    _put_int(out, 0x20, 1 if prev_kv else 0)
    _put_int(out, 0x28, 1 if ignore_value else 0)
    _put_int(out, 0x30, 1 if ignore_lease else 0)


def encode_put_request(key: bytes, value: bytes, lease: int = 0, prev_kv: bool = False,
                       ignore_value: bool = False, ignore_lease: bool = False) -> bytes:
    """``etcdserverpb.PutRequest`` wire bytes.

    :raises TypeError: key/value not bytes, lease not an int.
    :raises ValueError: lease out of the int64 range.
    """
    out = bytearray()
    _put_body(out, key, value, lease, prev_kv, ignore_value, ignore_lease)
    return bytes(out)


def _delete_body(out: bytearray, key: Any, range_end: Any, prev_kv: Any) -> None:
    _put_bytes(out, 0x0A, _bytes(key, "key"))
    if range_end is not None:
        _put_bytes(out, 0x12, _bytes(range_end, "range_end"))
    _put_int(out, 0x18, 1 if prev_kv else 0)


def encode_delete_range_request(key: bytes, range_end: Optional[bytes] = None,
                                prev_kv: bool = False) -> bytes:
    """``etcdserverpb.DeleteRangeRequest`` wire bytes.

    :raises TypeError: key/range_end not bytes.
    """
    out = bytearray()
    _delete_body(out, key, range_end, prev_kv)
    return bytes(out)


def _compare_body(compare: Sequence[Any]) -> bytes:
    result, target, key, range_end, value = compare
    out = bytearray()
    _put_int(out, 0x08, _i32(result, "compare result"))
    target = _i32(target, "compare target")
    _put_int(out, 0x10, target)
    _put_bytes(out, 0x1A, _bytes(key, "key"))
    tag = _COMPARE_FIELD.get(target)
    if tag is None:
        raise ValueError(f"unknown compare target {target}")
    out.append(tag)  # a oneof member: sent even when zero or empty
    if target == 3:
        value = _bytes(value, "compare value")
        _varint(out, len(value))
        out += value
    else:
        _varint(out, _i64(value, "compare value"))
    if range_end is not None:
        range_end = _bytes(range_end, "range_end")
        if range_end:
            out += b"\x82\x04"  # field 64, length-delimited
            _varint(out, len(range_end))
            out += range_end
    return bytes(out)


_OP_TAGS = {OP_RANGE: 0x0A, OP_PUT: 0x12, OP_DELETE_RANGE: 0x1A, OP_TXN: 0x22}


def _op(out: bytearray, tag: int, op: Sequence[Any], depth: int) -> None:
    """A RequestOp{<kind>: body}; the oneof member is always present."""
    kind, args = op
    body = bytearray()
    if kind == OP_RANGE:
        (key, range_end, limit, revision, sort_order, sort_target, serializable,
         keys_only, count_only, min_mod, max_mod, min_create, max_create) = args
        _range_body(body, key, range_end, limit, revision, sort_order, sort_target,
                    serializable, keys_only, count_only, min_mod, max_mod, min_create,
                    max_create)
    elif kind == OP_PUT:
        key, value, lease, prev_kv = args
        _put_body(body, key, value, lease, prev_kv)
    elif kind == OP_DELETE_RANGE:
        key, range_end, prev_kv = args
        _delete_body(body, key, range_end, prev_kv)
    elif kind == OP_TXN:
        compares, success, failure = args
        _txn_body(body, compares, success, failure, depth + 1)
    else:
        raise ValueError(f"unknown transaction op kind {kind!r}")
    request_op = bytearray()
    _put_message(request_op, _OP_TAGS[kind], bytes(body))
    _put_message(out, tag, bytes(request_op))


def _txn_body(out: bytearray, compares: Iterable[Any], success: Iterable[Any],
              failure: Iterable[Any], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"transactions nested deeper than {MAX_DEPTH} levels")
    for compare in compares:
        _put_message(out, 0x0A, _compare_body(compare))
    for op in success:
        _op(out, 0x12, op, depth)
    for op in failure:
        _op(out, 0x1A, op, depth)


def encode_txn_request(compares: Iterable[Any], success: Iterable[Any] = (),
                       failure: Iterable[Any] = ()) -> bytes:
    """``etcdserverpb.TxnRequest`` wire bytes.

    ``compares``: ``(result, target, key, range_end, value)`` tuples (``value`` is bytes
    for the VALUE target, an int otherwise; ``range_end`` may be None). ``success`` /
    ``failure``: ``(kind, args)`` pairs, kind :data:`OP_RANGE` (args as
    :func:`encode_range_request`), :data:`OP_PUT` (``key, value, lease, prev_kv``),
    :data:`OP_DELETE_RANGE` (``key, range_end, prev_kv``) or :data:`OP_TXN`
    (``compares, success, failure``).

    :raises TypeError: wrong argument types. :raises ValueError: unknown kinds/targets,
        numbers out of range, nesting deeper than :data:`MAX_DEPTH`.
    """
    out = bytearray()
    _txn_body(out, compares, success, failure, 0)
    return bytes(out)


def encode_watch_create_request(key: bytes, range_end: Optional[bytes] = None,
                                start_revision: int = 0, progress_notify: bool = False,
                                filters: Iterable[int] = (), prev_kv: bool = False,
                                watch_id: int = 0, fragment: bool = False) -> bytes:
    """``etcdserverpb.WatchRequest`` wire bytes carrying a ``create_request``.

    ``filters``: ``WatchCreateRequest.FilterType`` numbers (0 NOPUT, 1 NODELETE).
    :raises TypeError: wrong argument types. :raises ValueError: numbers out of range.
    """
    out = bytearray()
    _put_bytes(out, 0x0A, _bytes(key, "key"))
    if range_end is not None:
        _put_bytes(out, 0x12, _bytes(range_end, "range_end"))
    _put_int(out, 0x18, _i64(start_revision, "start_revision"))
    _put_int(out, 0x20, 1 if progress_notify else 0)
    packed = bytearray()
    for item in filters:
        _varint(packed, _i32(item, "filter"))
    if packed:
        _put_message(out, 0x2A, bytes(packed))
    _put_int(out, 0x30, 1 if prev_kv else 0)
    _put_int(out, 0x38, _i64(watch_id, "watch_id"))
    _put_int(out, 0x40, 1 if fragment else 0)
    request = bytearray()
    _put_message(request, 0x0A, bytes(out))
    return bytes(request)


def encode_watch_cancel_request(watch_id: int) -> bytes:
    """``etcdserverpb.WatchRequest`` wire bytes carrying a ``cancel_request``."""
    body = bytearray()
    _put_int(body, 0x08, _i64(watch_id, "watch_id"))
    out = bytearray()
    _put_message(out, 0x12, bytes(body))
    return bytes(out)


def encode_watch_progress_request() -> bytes:
    """``etcdserverpb.WatchRequest`` wire bytes carrying a ``progress_request``."""
    return b"\x1a\x00"


# -- decoding ------------------------------------------------------------------------------

def _varint_at(data: bytes, pos: int, end: int) -> Tuple[int, int]:
    """(unsigned 64-bit value, next position); protobuf drops bits above 64."""
    result = 0
    shift = 0
    while pos < end:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & (_U64 - 1), pos
        shift += 7
        if shift >= 70:
            raise CodecError("malformed varint (more than 10 bytes)")
    raise CodecError("truncated message (varint runs past the end)")


def _signed(value: int) -> int:
    return value - _U64 if value > _I64_MAX else value


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value > _I32_MAX else value


def _tag_at(data: bytes, pos: int, end: int) -> Tuple[int, int]:
    tag, pos = _varint_at(data, pos, end)
    if tag > 0xFFFFFFFF or tag < 8:
        raise CodecError(f"malformed field tag {tag}")
    return tag, pos


def _length_at(data: bytes, pos: int, end: int) -> Tuple[int, int]:
    """(position, end) of a length-delimited field's contents."""
    length, pos = _varint_at(data, pos, end)
    if length > end - pos:
        raise CodecError("truncated message (a field runs past the end)")
    return pos, pos + length


def _skip(data: bytes, pos: int, end: int, tag: int, depth: int) -> int:
    """Skip an unknown field whose tag has been read; returns the next position."""
    wire_type = tag & 7
    if wire_type == 0:
        return _varint_at(data, pos, end)[1]
    if wire_type == 2:
        return _length_at(data, pos, end)[1]
    if wire_type == 1 or wire_type == 5:
        pos += 8 if wire_type == 1 else 4
        if pos > end:
            raise CodecError("truncated message (fixed-width field runs past the end)")
        return pos
    if wire_type == 3:
        if depth >= MAX_DEPTH:
            raise CodecError("message nested too deeply")
        while True:
            if pos >= end:
                raise CodecError("truncated message (unterminated group)")
            inner, pos = _tag_at(data, pos, end)
            if inner & 7 == 4:
                if inner >> 3 != tag >> 3:
                    raise CodecError("malformed message (mismatched end of group)")
                return pos
            pos = _skip(data, pos, end, inner, depth + 1)
    raise CodecError(f"malformed message (wire type {wire_type})")


def _header(data: bytes, pos: int, end: int, header: ResponseHeader) -> None:
    while pos < end:
        tag, pos = _tag_at(data, pos, end)
        if tag == 0x08:
            header.cluster_id, pos = _varint_at(data, pos, end)
        elif tag == 0x10:
            header.member_id, pos = _varint_at(data, pos, end)
        elif tag == 0x18:
            value, pos = _varint_at(data, pos, end)
            header.revision = _signed(value)
        elif tag == 0x20:
            header.raft_term, pos = _varint_at(data, pos, end)
        else:
            pos = _skip(data, pos, end, tag, 0)


def _kv(data: bytes, pos: int, end: int, header: Any,
        into: Optional[KeyValue] = None) -> KeyValue:
    if into is None:
        key = value = b""
        create = mod = version = lease = 0
    else:
        key, value = into.key, into.value
        create, mod, version, lease = (into.create_revision, into.mod_revision,
                                       into.version, into.lease_id)
    while pos < end:
        tag = data[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _tag_at(data, pos, end)
        if tag == 0x0A or tag == 0x2A:
            start, pos = _length_at(data, pos, end)
            if tag == 0x0A:
                key = data[start:pos]
            else:
                value = data[start:pos]
        elif tag == 0x10:
            create, pos = _varint_at(data, pos, end)
        elif tag == 0x18:
            mod, pos = _varint_at(data, pos, end)
        elif tag == 0x20:
            version, pos = _varint_at(data, pos, end)
        elif tag == 0x30:
            lease, pos = _varint_at(data, pos, end)
        else:
            if tag < 8:
                raise CodecError(f"malformed field tag {tag}")
            pos = _skip(data, pos, end, tag, 0)
    kv = KeyValue(key, _signed(create), _signed(mod), _signed(version), value,
                  _signed(lease))
    kv.response_header = header
    return kv


def _range(data: bytes, pos: int, end: int, response: RangeResponse,
           kv_header: Any) -> None:
    kvs = response.kvs
    while pos < end:
        tag, pos = _tag_at(data, pos, end)
        if tag == 0x12:
            start, pos = _length_at(data, pos, end)
            kvs.append(_kv(data, start, pos, kv_header))
        elif tag == 0x0A:
            start, pos = _length_at(data, pos, end)
            _header(data, start, pos, response.header)
        elif tag == 0x18:
            value, pos = _varint_at(data, pos, end)
            response.more = value != 0
        elif tag == 0x20:
            value, pos = _varint_at(data, pos, end)
            response.count = _signed(value)
        else:
            pos = _skip(data, pos, end, tag, 0)


def _put(data: bytes, pos: int, end: int, response: PutResponse) -> None:
    while pos < end:
        tag, pos = _tag_at(data, pos, end)
        if tag == 0x0A:
            start, pos = _length_at(data, pos, end)
            _header(data, start, pos, response.header)
        elif tag == 0x12:
            start, pos = _length_at(data, pos, end)
            response._prev_kv = _kv(data, start, pos, response.header, response._prev_kv)
        else:
            pos = _skip(data, pos, end, tag, 0)


def _delete(data: bytes, pos: int, end: int, response: DeleteRangeResponse) -> None:
    while pos < end:
        tag, pos = _tag_at(data, pos, end)
        if tag == 0x0A:
            start, pos = _length_at(data, pos, end)
            _header(data, start, pos, response.header)
        elif tag == 0x10:
            value, pos = _varint_at(data, pos, end)
            response.deleted = _signed(value)
        elif tag == 0x1A:
            start, pos = _length_at(data, pos, end)
            response.prev_kvs.append(_kv(data, start, pos, response.header))
        else:
            pos = _skip(data, pos, end, tag, 0)


_OP_TYPES = (RangeResponse, PutResponse, DeleteRangeResponse, TxnResponse)


def _response_op(data: bytes, pos: int, end: int, kv_header: Any, depth: int) -> ResponseOp:
    op = ResponseOp()
    while pos < end:
        tag, pos = _tag_at(data, pos, end)
        kind = tag >> 3
        if tag & 7 == 2 and 1 <= kind <= 4:
            start, pos = _length_at(data, pos, end)
            if op.kind != kind:  # a oneof: another member replaces it; the same merges
                op.kind, op.response = kind, _OP_TYPES[kind - 1]()
            if kind == 1:
                _range(data, start, pos, op.response, kv_header)
            elif kind == 2:
                _put(data, start, pos, op.response)
            elif kind == 3:
                _delete(data, start, pos, op.response)
            else:
                _txn(data, start, pos, op.response, kv_header, depth + 1)
        else:
            pos = _skip(data, pos, end, tag, 0)
    return op


def _txn(data: bytes, pos: int, end: int, response: TxnResponse, kv_header: Any,
         depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CodecError("transaction responses nested too deeply")
    if kv_header is None:
        kv_header = response.header
    while pos < end:
        tag, pos = _tag_at(data, pos, end)
        if tag == 0x1A:
            start, pos = _length_at(data, pos, end)
            response.responses.append(_response_op(data, start, pos, kv_header, depth))
        elif tag == 0x0A:
            start, pos = _length_at(data, pos, end)
            _header(data, start, pos, response.header)
        elif tag == 0x10:
            value, pos = _varint_at(data, pos, end)
            response.succeeded = value != 0
        else:
            pos = _skip(data, pos, end, tag, 0)


def _as_bytes(data: Any) -> bytes:
    if type(data) is bytes:
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"wire data must be bytes, not {type(data).__name__}")


def decode_range_response(data: bytes) -> RangeResponse:
    """A :class:`RangeResponse` from ``etcdserverpb.RangeResponse`` wire bytes.

    Each key-value's ``response_header`` is the response's header.
    :raises CodecError: truncated or malformed bytes.
    """
    data = _as_bytes(data)
    response = RangeResponse()
    _range(data, 0, len(data), response, response.header)
    return response


def decode_put_response(data: bytes) -> PutResponse:
    """A :class:`PutResponse` from wire bytes. :raises CodecError: bad bytes."""
    data = _as_bytes(data)
    response = PutResponse()
    _put(data, 0, len(data), response)
    return response


def decode_delete_range_response(data: bytes) -> DeleteRangeResponse:
    """A :class:`DeleteRangeResponse` from wire bytes. :raises CodecError: bad bytes."""
    data = _as_bytes(data)
    response = DeleteRangeResponse()
    _delete(data, 0, len(data), response)
    return response


def decode_txn_response(data: bytes) -> TxnResponse:
    """A :class:`TxnResponse` from wire bytes.

    Key-values read by the transaction (at any nesting level) carry the outermost
    transaction's header as ``response_header``.
    :raises CodecError: truncated or malformed bytes, nesting deeper than MAX_DEPTH.
    """
    data = _as_bytes(data)
    response = TxnResponse()
    _txn(data, 0, len(data), response, None, 0)
    return response


def _event(data: bytes, pos: int, end: int, header: Any) -> Tuple[int, Any, Any]:
    kind = 0
    kv = prev = None
    while pos < end:
        tag, pos = _tag_at(data, pos, end)
        if tag == 0x12:
            start, pos = _length_at(data, pos, end)
            kv = _kv(data, start, pos, header, kv)
        elif tag == 0x1A:
            start, pos = _length_at(data, pos, end)
            prev = _kv(data, start, pos, header, prev)
        elif tag == 0x08:
            value, pos = _varint_at(data, pos, end)
            kind = _int32(value)
        else:
            pos = _skip(data, pos, end, tag, 0)
    return kind, kv, prev


def event_layout(put_type: type, delete_type: type) -> Sequence[type]:
    """What to pass as ``event_types`` to :func:`decode_watch_response` for these
    classes: build it once. (The compiled codec returns an object that also knows
    where the classes keep their ``__slots__``, and fills them directly.)"""
    return (put_type, delete_type)


def _user_event(types: Sequence[Any], kind: int, kv: Any, prev: Any) -> Any:
    event = object.__new__(types[1] if kind == 1 else types[0])
    if kv is None:
        kv = KeyValue()
    event.key = kv.key
    event.value = kv.value
    event.create_revision = kv.create_revision
    event.mod_revision = kv.mod_revision
    event.version = kv.version
    event.lease = kv.lease_id
    event.prev_kv = prev if prev is not None and prev.key else None
    return event


_WATCH_VARINTS = {0x10: "watch_id", 0x18: "created", 0x20: "canceled",
                  0x28: "compact_revision", 0x38: "fragment"}


def decode_watch_response(data: bytes, event_types: Optional[Sequence[Any]] = None
                          ) -> WireWatchResponse:
    """A :class:`WireWatchResponse` from ``etcdserverpb.WatchResponse`` wire bytes.

    ``events`` holds :class:`WireEvent` objects (``mvccpb.Event``'s shape), or, when
    ``event_types`` is ``(PutEventClass, DeleteEventClass)``, instances of those
    classes made without calling ``__init__`` and given the attributes ``key, value,
    create_revision, mod_revision, version, lease, prev_kv`` (``prev_kv`` None when
    absent or empty).
    :raises CodecError: truncated or malformed bytes.
    """
    data = _as_bytes(data)
    response = WireWatchResponse()
    header = response.header
    events = response.events
    pos, end = 0, len(data)
    while pos < end:
        tag, pos = _tag_at(data, pos, end)
        if tag == 0x5A:
            start, pos = _length_at(data, pos, end)
            kind, kv, prev = _event(data, start, pos, header)
            if event_types is None:
                events.append(WireEvent(kind, kv, prev))
            else:
                events.append(_user_event(event_types, kind, kv, prev))
        elif tag == 0x0A:
            start, pos = _length_at(data, pos, end)
            _header(data, start, pos, header)
        elif tag == 0x32:
            start, pos = _length_at(data, pos, end)
            try:
                response.cancel_reason = data[start:pos].decode("utf-8")
            except UnicodeDecodeError:
                raise CodecError("malformed message (cancel_reason is not UTF-8)") from None
        elif tag in _WATCH_VARINTS:
            value, pos = _varint_at(data, pos, end)
            name = _WATCH_VARINTS[tag]
            if tag == 0x10 or tag == 0x28:
                setattr(response, name, _signed(value))
            else:
                setattr(response, name, value != 0)
        else:
            pos = _skip(data, pos, end, tag, 0)
    return response
