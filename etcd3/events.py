"""What a watch delivers: :class:`PutEvent` / :class:`DeleteEvent` inside :class:`WatchResponse`.

Names and attributes follow python-etcd3: an event has the key-value fields of the
changed key (``key``, ``value``, ``create_revision``, ``mod_revision``, ``version``,
``lease``) and, when the watch asked for ``prev_kv=True``, the previous key-value as
``prev_kv`` with shortcuts ``prev_value``, ``prev_version``, ... .

Decoding goes through :func:`event_from_pb` and :func:`response_from_pb` only; they read
attributes, so any object shaped like etcd's protobuf messages can be decoded.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from .results import KeyValue, ResponseHeader

_KV_FIELDS = frozenset(("key", "value", "create_revision", "mod_revision", "version",
                        "lease"))

#: ``mvccpb.Event.EventType`` numbers.
PUT = 0
DELETE = 1


class Event:
    """One change to one key, at revision :attr:`mod_revision`.

    ``prev_kv`` is a :class:`~etcd3.results.KeyValue` (or None when the watch did not
    ask for ``prev_kv`` or the key did not exist before); ``prev_<field>`` reads that
    field of it (None without a previous key-value).
    """

    __slots__ = ("key", "value", "create_revision", "mod_revision", "version", "lease",
                 "prev_kv")

    def __init__(self, key: bytes = b"", value: bytes = b"", create_revision: int = 0,
                 mod_revision: int = 0, version: int = 0, lease: int = 0,
                 prev_kv: Optional[KeyValue] = None) -> None:
        self.key = key
        self.value = value
        self.create_revision = create_revision
        self.mod_revision = mod_revision
        self.version = version
        self.lease = lease
        self.prev_kv = prev_kv

    @property
    def prev_value(self) -> Optional[bytes]:
        """The value before this change (needs ``prev_kv=True`` on the watch)."""
        return self.prev_kv.value if self.prev_kv is not None else None

    @property
    def lease_id(self) -> int:
        """Same as :attr:`lease` (the name :class:`~etcd3.KVMetadata` uses)."""
        return self.lease

    def __getattr__(self, name: str) -> Any:
        # python-etcd3 proxied ``prev_<field>`` to the previous key-value.
        if name.startswith("prev_") and name[5:] in _KV_FIELDS:
            prev = self.prev_kv
            return getattr(prev, name[5:]) if prev is not None else None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return type(self) is type(other) and all(
            getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        prev = f", prev_value={self.prev_value!r}" if self.prev_kv is not None else ""
        return (f"{type(self).__name__}(key={self.key!r}, value={self.value!r}, "
                f"mod_revision={self.mod_revision}, version={self.version}{prev})")

    __str__ = __repr__


class PutEvent(Event):
    """A key was created or updated."""

    __slots__ = ()


class DeleteEvent(Event):
    """A key was deleted (``value`` is empty; ``mod_revision`` is the deletion's)."""

    __slots__ = ()


class WatchResponse:
    """One watch response: ``header`` (its :class:`~etcd3.ResponseHeader`), ``events``.

    A response without events is a progress notification: everything up to
    ``header.revision`` has been delivered. ``compact_revision`` is set (non-zero)
    only on the response that ends a watch because its revision was compacted.
    """

    __slots__ = ("header", "events", "compact_revision")

    def __init__(self, header: ResponseHeader, events: List[Event],
                 compact_revision: int = 0) -> None:
        self.header = header
        self.events = events
        self.compact_revision = compact_revision

    @property
    def progress_notify(self) -> bool:
        """True for a progress notification (no events)."""
        return not self.events

    def __repr__(self) -> str:
        return (f"WatchResponse(revision={self.header.revision}, "
                f"events={self.events!r})")


def _key_value(kv: Any) -> KeyValue:
    if isinstance(kv, KeyValue):
        return kv
    return KeyValue(kv.key, kv.create_revision, kv.mod_revision, kv.version, kv.value,
                    kv.lease)


def event_from_pb(pb_event: Any) -> Event:
    """A :class:`PutEvent` or :class:`DeleteEvent` from an ``mvccpb.Event``-shaped object."""
    kv = pb_event.kv
    prev = pb_event.prev_kv
    cls = DeleteEvent if pb_event.type == DELETE else PutEvent
    # etcd keys are never empty, so an empty prev_kv means "absent".
    return cls(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version,
               kv.lease, _key_value(prev) if prev is not None and prev.key else None)


#: python-etcd3's name for :func:`event_from_pb`.
new_event = event_from_pb


def events_from_pb(pb_events: Sequence[Any]) -> List[Event]:
    """:func:`event_from_pb` over a list; events a codec already built pass through."""
    if pb_events and isinstance(pb_events[0], Event):
        return list(pb_events)
    return [event_from_pb(e) for e in pb_events]


def header_from_pb(header: Any) -> ResponseHeader:
    """A :class:`~etcd3.ResponseHeader` from a protobuf-shaped header (kept if it is one)."""
    if isinstance(header, ResponseHeader):
        return header
    return ResponseHeader(header.cluster_id, header.member_id, header.revision,
                          header.raft_term)


def response_from_pb(header: Any, pb_events: Sequence[Any]) -> WatchResponse:
    """A :class:`WatchResponse` from a header and ``mvccpb.Event``-shaped events."""
    return WatchResponse(header_from_pb(header), events_from_pb(pb_events))


__all__ = ["Event", "PutEvent", "DeleteEvent", "WatchResponse", "event_from_pb",
           "new_event", "events_from_pb", "header_from_pb", "response_from_pb"]
