"""Picks the codec implementation: compiled (``etcd3._speedups._codec``) or pure Python.

Set ``ETCD3_NO_EXTENSIONS=1`` before import to force the pure one.
:data:`IMPLEMENTATION` is ``"compiled"`` or ``"pure"``. Other modules use the codec
(and the result types it builds, re-exported by :mod:`etcd3.results`) only through
this module. Both implementations have the same functions, results and exceptions;
see :mod:`etcd3._core.codec_py` for the reference documentation of each.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING

from ._core import codec_py as _codec_py

IMPLEMENTATION: str
_impl: ModuleType

if os.environ.get("ETCD3_NO_EXTENSIONS", "").strip() not in ("", "0"):
    _impl = _codec_py
    IMPLEMENTATION = "pure"
else:
    try:
        from ._speedups import _codec as _impl
        IMPLEMENTATION = "compiled"
    except ImportError:  # not compiled (no C compiler at install time)
        _impl = _codec_py
        IMPLEMENTATION = "pure"

if TYPE_CHECKING:
    # Both implementations have the same API; type-check against the reference one.
    from ._core.codec_py import (
        MAX_DEPTH,
        OP_DELETE_RANGE,
        OP_PUT,
        OP_RANGE,
        OP_TXN,
        decode_delete_range_response,
        decode_put_response,
        decode_range_response,
        decode_txn_response,
        decode_watch_response,
        encode_delete_range_request,
        encode_put_request,
        encode_range_request,
        encode_txn_request,
        encode_watch_cancel_request,
        encode_watch_create_request,
        encode_watch_progress_request,
        event_layout,
        prefix_range_end,
        range_pairs,
        to_bytes,
    )
    from ._core.results_py import (
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
else:
    MAX_DEPTH = _impl.MAX_DEPTH
    OP_RANGE = _impl.OP_RANGE
    OP_PUT = _impl.OP_PUT
    OP_DELETE_RANGE = _impl.OP_DELETE_RANGE
    OP_TXN = _impl.OP_TXN

    to_bytes = _impl.to_bytes
    prefix_range_end = _impl.prefix_range_end
    range_pairs = _impl.range_pairs

    encode_range_request = _impl.encode_range_request
    encode_put_request = _impl.encode_put_request
    encode_delete_range_request = _impl.encode_delete_range_request
    encode_txn_request = _impl.encode_txn_request
    encode_watch_create_request = _impl.encode_watch_create_request
    encode_watch_cancel_request = _impl.encode_watch_cancel_request
    encode_watch_progress_request = _impl.encode_watch_progress_request

    decode_range_response = _impl.decode_range_response
    decode_put_response = _impl.decode_put_response
    decode_delete_range_response = _impl.decode_delete_range_response
    decode_txn_response = _impl.decode_txn_response
    decode_watch_response = _impl.decode_watch_response
    event_layout = _impl.event_layout

    ResponseHeader = _impl.ResponseHeader
    KVMetadata = _impl.KVMetadata
    KeyValue = _impl.KeyValue
    RangeResponse = _impl.RangeResponse
    PutResponse = _impl.PutResponse
    DeleteRangeResponse = _impl.DeleteRangeResponse
    TxnResponse = _impl.TxnResponse
    ResponseOp = _impl.ResponseOp
    WireEvent = _impl.WireEvent
    WireWatchResponse = _impl.WireWatchResponse

__all__ = [
    "IMPLEMENTATION", "MAX_DEPTH", "OP_RANGE", "OP_PUT", "OP_DELETE_RANGE", "OP_TXN",
    "to_bytes", "prefix_range_end", "range_pairs",
    "encode_range_request", "encode_put_request", "encode_delete_range_request",
    "encode_txn_request", "encode_watch_create_request", "encode_watch_cancel_request",
    "encode_watch_progress_request",
    "decode_range_response", "decode_put_response", "decode_delete_range_response",
    "decode_txn_response", "decode_watch_response", "event_layout",
    "ResponseHeader", "KVMetadata", "KeyValue", "RangeResponse", "PutResponse",
    "DeleteRangeResponse", "TxnResponse", "ResponseOp", "WireEvent", "WireWatchResponse",
]
