"""Pure-Python result types; ``etcd3/_speedups/_codec.pyx`` defines the same classes.

Import them from :mod:`etcd3.results` (which re-exports the active implementation's),
never from here. The shapes follow etcd's protobuf messages attribute for attribute, so
code written against python-etcd3 (which returned protobuf objects) keeps working.
"""

from __future__ import annotations

from typing import Any, List, Optional, cast


class ResponseHeader:
    """The header etcd puts on every response."""

    __slots__ = ("cluster_id", "member_id", "revision", "raft_term")

    def __init__(self, cluster_id: int = 0, member_id: int = 0, revision: int = 0,
                 raft_term: int = 0) -> None:
        self.cluster_id = cluster_id
        self.member_id = member_id
        self.revision = revision
        self.raft_term = raft_term

    def __eq__(self, other: object) -> bool:
        if not hasattr(other, "revision"):
            return NotImplemented
        return (self.cluster_id, self.member_id, self.revision, self.raft_term) == (
            getattr(other, "cluster_id", None), getattr(other, "member_id", None),
            getattr(other, "revision", None), getattr(other, "raft_term", None))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"ResponseHeader(cluster_id={self.cluster_id}, member_id={self.member_id}, "
                f"revision={self.revision}, raft_term={self.raft_term})")


class KVMetadata:
    """Everything about a key except its value.

    ``key`` (bytes), ``create_revision``, ``mod_revision``, ``version``, ``lease_id``
    and ``response_header`` (the header of the response it came in; for keys read
    inside a transaction, the transaction's header).
    """

    __slots__ = ("key", "create_revision", "mod_revision", "version", "lease_id",
                 "response_header")

    def __init__(self, key: bytes, create_revision: int, mod_revision: int, version: int,
                 lease_id: int, response_header: Any) -> None:
        self.key = key
        self.create_revision = create_revision
        self.mod_revision = mod_revision
        self.version = version
        self.lease_id = lease_id
        self.response_header = response_header

    @classmethod
    def from_pb(cls, kv: Any, header: Any) -> KVMetadata:
        """Build from a ``mvccpb.KeyValue``-shaped object and a response header."""
        return cls(kv.key, kv.create_revision, kv.mod_revision, kv.version, kv.lease, header)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KVMetadata):
            return NotImplemented
        return (self.key, self.create_revision, self.mod_revision, self.version,
                self.lease_id) == (other.key, other.create_revision, other.mod_revision,
                                   other.version, other.lease_id)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"KVMetadata(key={self.key!r}, create_revision={self.create_revision}, "
                f"mod_revision={self.mod_revision}, version={self.version}, "
                f"lease_id={self.lease_id})")


class KeyValue(KVMetadata):
    """A key with its value and metadata (``mvccpb.KeyValue``'s attributes).

    It is also the key's :class:`KVMetadata` (``lease_id`` is ``lease``), so reads
    return ``(kv.value, kv)`` without building a second object per key.
    """

    __slots__ = ("value",)

    def __init__(self, key: bytes = b"", create_revision: int = 0, mod_revision: int = 0,
                 version: int = 0, value: bytes = b"", lease: int = 0) -> None:
        self.key = key
        self.create_revision = create_revision
        self.mod_revision = mod_revision
        self.version = version
        self.value = value
        self.lease_id = lease
        self.response_header = None

    @property
    def lease(self) -> int:
        """The ID of the lease attached to the key (0: none)."""
        return self.lease_id

    @lease.setter
    def lease(self, lease: int) -> None:
        self.lease_id = lease

    def __eq__(self, other: object) -> bool:
        if not hasattr(other, "mod_revision") or not hasattr(other, "value"):
            return NotImplemented
        return (self.key, self.create_revision, self.mod_revision, self.version,
                self.value, self.lease_id) == (
            other.key, other.create_revision, other.mod_revision,  # type: ignore[attr-defined]
            other.version, other.value, getattr(other, "lease", None))  # type: ignore[attr-defined]

    __hash__ = None

    def __repr__(self) -> str:
        return (f"KeyValue(key={self.key!r}, value={self.value!r}, "
                f"mod_revision={self.mod_revision}, version={self.version})")


def _empty_kv(kv: Optional[KeyValue]) -> KeyValue:
    return kv if kv is not None else KeyValue()


class RangeResponse:
    """A Range reply: ``header``, ``kvs`` (list of KeyValue), ``more``, ``count``."""

    __slots__ = ("header", "kvs", "more", "count")

    def __init__(self, header: Optional[ResponseHeader] = None,
                 kvs: Optional[List[KeyValue]] = None, more: bool = False,
                 count: int = 0) -> None:
        self.header = header if header is not None else ResponseHeader()
        self.kvs = kvs if kvs is not None else []
        self.more = more
        self.count = count

    def __repr__(self) -> str:
        return (f"RangeResponse(count={self.count}, more={self.more}, "
                f"kvs=<{len(self.kvs)} items>, header={self.header!r})")


class PutResponse:
    """A Put reply: ``header`` and ``prev_kv`` (an empty KeyValue unless the put asked
    for it and the key existed; ``HasField("prev_kv")`` tells)."""

    __slots__ = ("header", "_prev_kv")

    def __init__(self, header: Optional[ResponseHeader] = None,
                 prev_kv: Optional[KeyValue] = None) -> None:
        self.header = header if header is not None else ResponseHeader()
        self._prev_kv = prev_kv

    @property
    def prev_kv(self) -> KeyValue:
        return _empty_kv(self._prev_kv)

    def HasField(self, name: str) -> bool:  # noqa: N802 - protobuf's name
        """Whether ``prev_kv`` (or ``header``) was sent, as on the protobuf message."""
        return (self._prev_kv if name == "prev_kv" else self.header) is not None

    def __repr__(self) -> str:
        return f"PutResponse(header={self.header!r}, prev_kv={self._prev_kv!r})"


class DeleteRangeResponse:
    """A DeleteRange reply: ``header``, ``deleted`` (count), ``prev_kvs`` (list)."""

    __slots__ = ("header", "deleted", "prev_kvs")

    def __init__(self, header: Optional[ResponseHeader] = None, deleted: int = 0,
                 prev_kvs: Optional[List[KeyValue]] = None) -> None:
        self.header = header if header is not None else ResponseHeader()
        self.deleted = deleted
        self.prev_kvs = prev_kvs if prev_kvs is not None else []

    def __repr__(self) -> str:
        return (f"DeleteRangeResponse(deleted={self.deleted}, "
                f"prev_kvs=<{len(self.prev_kvs)} items>, header={self.header!r})")


class TxnResponse:
    """A Txn reply: ``header``, ``succeeded``, ``responses`` (list of ResponseOp)."""

    __slots__ = ("header", "succeeded", "responses")

    def __init__(self, header: Optional[ResponseHeader] = None, succeeded: bool = False,
                 responses: Optional[List[ResponseOp]] = None) -> None:
        self.header = header if header is not None else ResponseHeader()
        self.succeeded = succeeded
        self.responses = responses if responses is not None else []

    def __repr__(self) -> str:
        return (f"TxnResponse(succeeded={self.succeeded}, responses={self.responses!r}, "
                f"header={self.header!r})")


_ONEOF = ("response_range", "response_put", "response_delete_range", "response_txn")
_ONEOF_TYPES = (RangeResponse, PutResponse, DeleteRangeResponse, TxnResponse)


class ResponseOp:
    """The reply to one op of a transaction, like ``etcdserverpb.ResponseOp``.

    ``WhichOneof("response")`` names the set field (``"response_range"``,
    ``"response_put"``, ``"response_delete_range"`` or ``"response_txn"``); reading
    another of those gives an empty reply of that type, as protobuf does.
    """

    __slots__ = ("kind", "response")

    def __init__(self, kind: int = 0, response: Any = None) -> None:
        self.kind = kind  # RequestOp/ResponseOp field number: 1 range ... 4 txn, 0 unset
        self.response = response

    def _get(self, kind: int) -> Any:
        if self.kind == kind:
            return self.response
        return _ONEOF_TYPES[kind - 1]()

    @property
    def response_range(self) -> RangeResponse:
        return cast(RangeResponse, self._get(1))

    @property
    def response_put(self) -> PutResponse:
        return cast(PutResponse, self._get(2))

    @property
    def response_delete_range(self) -> DeleteRangeResponse:
        return cast(DeleteRangeResponse, self._get(3))

    @property
    def response_txn(self) -> TxnResponse:
        return cast(TxnResponse, self._get(4))

    def WhichOneof(self, group: str) -> Optional[str]:  # noqa: N802 - protobuf's name
        """The name of the set field of the ``response`` oneof, or None."""
        if group != "response":
            raise ValueError(f"ResponseOp has no oneof {group!r}")
        return _ONEOF[self.kind - 1] if self.kind else None

    def __repr__(self) -> str:
        return f"ResponseOp({self.WhichOneof('response')}={self.response!r})"


class WireEvent:
    """A watch event as etcd sends it (``mvccpb.Event``): ``type`` (0 PUT, 1 DELETE),
    ``kv`` and ``prev_kv`` (empty unless sent; ``HasField("prev_kv")`` tells)."""

    __slots__ = ("type", "kv", "_prev_kv")

    PUT = 0
    DELETE = 1

    def __init__(self, type: int = 0, kv: Optional[KeyValue] = None,  # noqa: A002
                 prev_kv: Optional[KeyValue] = None) -> None:
        self.type = type
        self.kv = _empty_kv(kv)
        self._prev_kv = prev_kv

    @property
    def prev_kv(self) -> KeyValue:
        return _empty_kv(self._prev_kv)

    def HasField(self, name: str) -> bool:  # noqa: N802 - protobuf's name
        """Whether ``prev_kv`` (or ``kv``) was sent, as on the protobuf message."""
        return name == "kv" or self._prev_kv is not None

    def __repr__(self) -> str:
        return f"WireEvent(type={self.type}, kv={self.kv!r}, prev_kv={self._prev_kv!r})"


class WireWatchResponse:
    """One message of the watch stream, with ``etcdserverpb.WatchResponse``'s fields:
    ``header, watch_id, created, canceled, compact_revision, cancel_reason, fragment,
    events``."""

    __slots__ = ("header", "watch_id", "created", "canceled", "compact_revision",
                 "cancel_reason", "fragment", "events")

    def __init__(self, header: Optional[ResponseHeader] = None, watch_id: int = 0,
                 created: bool = False, canceled: bool = False, compact_revision: int = 0,
                 cancel_reason: str = "", fragment: bool = False,
                 events: Optional[List[Any]] = None) -> None:
        self.header = header if header is not None else ResponseHeader()
        self.watch_id = watch_id
        self.created = created
        self.canceled = canceled
        self.compact_revision = compact_revision
        self.cancel_reason = cancel_reason
        self.fragment = fragment
        self.events = events if events is not None else []

    def __repr__(self) -> str:
        return (f"WireWatchResponse(watch_id={self.watch_id}, created={self.created}, "
                f"canceled={self.canceled}, events=<{len(self.events)} items>, "
                f"header={self.header!r})")
