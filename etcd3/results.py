"""Result types returned by the client (python-etcd3-compatible shapes)."""

from __future__ import annotations

from typing import Any, List, Optional


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
    and ``response_header`` (the header of the response it came in).
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
    def from_pb(cls, kv: Any, header: Any) -> "KVMetadata":
        """Build from a ``mvccpb.KeyValue`` message and a response header."""
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


class KeyValue:
    """A key with its value and metadata, as found in responses' ``kvs`` lists."""

    __slots__ = ("key", "create_revision", "mod_revision", "version", "value", "lease")

    def __init__(self, key: bytes = b"", create_revision: int = 0, mod_revision: int = 0,
                 version: int = 0, value: bytes = b"", lease: int = 0) -> None:
        self.key = key
        self.create_revision = create_revision
        self.mod_revision = mod_revision
        self.version = version
        self.value = value
        self.lease = lease

    def __eq__(self, other: object) -> bool:
        if not hasattr(other, "mod_revision"):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name, None)
                   for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"KeyValue(key={self.key!r}, value={self.value!r}, "
                f"mod_revision={self.mod_revision}, version={self.version})")


class RangeResponse:
    """A decoded Range reply: ``header``, ``kvs`` (list of KeyValue), ``more``, ``count``."""

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
