"""Result types returned by the client (python-etcd3-compatible shapes).

The classes come from the active codec (compiled or pure, see :mod:`etcd3.codec`), which
builds them straight from wire bytes; both implementations have the same attributes.

- :class:`ResponseHeader`: ``cluster_id, member_id, revision, raft_term``.
- :class:`KVMetadata`: ``key, create_revision, mod_revision, version, lease_id,
  response_header`` — what ``get`` returns next to the value.
- :class:`KeyValue`: ``mvccpb.KeyValue``'s attributes (``key, value, create_revision,
  mod_revision, version, lease``); it is a :class:`KVMetadata` too.
- :class:`RangeResponse` (``header, kvs, more, count``), :class:`PutResponse`
  (``header, prev_kv``), :class:`DeleteRangeResponse` (``header, deleted, prev_kvs``),
  :class:`TxnResponse` (``header, succeeded, responses``) with :class:`ResponseOp`
  items: the attributes of etcd's protobuf messages of the same names.
- :class:`WireWatchResponse` with :class:`WireEvent` items: etcd's ``WatchResponse``
  and ``mvccpb.Event`` as they come off the wire (what the codec decodes when given no
  event types). Watches hand out :class:`etcd3.events.WatchResponse` with
  :class:`~etcd3.events.PutEvent` / :class:`~etcd3.events.DeleteEvent` instead.
"""

from __future__ import annotations

from .codec import (
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

__all__ = ["ResponseHeader", "KVMetadata", "KeyValue", "RangeResponse", "PutResponse",
           "DeleteRangeResponse", "TxnResponse", "ResponseOp", "WireEvent", "WireWatchResponse"]
