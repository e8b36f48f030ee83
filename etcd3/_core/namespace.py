"""The rules of a key namespace (etcd's Go ``client/v3/namespace``), without I/O.

A namespace is a key prefix. On the way in, every key gets the prefix in front and
every range is moved inside the namespace; on the way out, the prefix is cut off every
key a response carries. The threaded and the asyncio namespace views
(:mod:`etcd3.namespace`, :mod:`etcd3.aio.namespace`) both apply these rules, so both
write exactly the keys Go's ``namespace.NewKV`` writes:

- a key ``k`` is ``prefix + k``;
- a range ``[k, end)`` is ``[prefix + k, prefix + end)``, except that an ``end`` of
  ``b"\\0"`` ("every key from ``k`` on") becomes the end of the namespace, the first
  key after every key that starts with the prefix;
- so a user prefix ``p`` is ``[prefix + p, prefix + prefix_end(p))``, and "every key"
  (``get_all``, ``delete_prefix('')``) is ``[prefix + b"\\0", end of the namespace)``:
  the key equal to the prefix itself, which would read back as an empty key, is not
  part of the namespace (as in Go, where an empty prefix reads from ``b"\\0"``);
- the compares and operations of a transaction, nested ones included, are rewritten
  the same way (into new objects: the caller's are left as they are);
- the keys of key-values, ``prev_kv`` and ``prev_kvs``, watch events and the keys of
  a lease (only those inside the namespace) come back without the prefix.

Responses of direct calls are decoded afresh for each caller, so their keys are cut
in place; watch events may be shared by every watcher of the same keys (the watch
engines coalesce identical watches), so they are copied.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, List, Optional, Sequence, Tuple

from .. import codec
from ..events import Event, WatchResponse
from ..results import KeyValue
from .ops import BaseCompare, Delete, Get, Put, Txn, key_bytes

Interval = Tuple[bytes, Optional[bytes]]
#: A transaction's compares, success ops and failure ops.
TxnParts = Tuple[List[BaseCompare], List[Any], List[Any]]

#: ``ResponseOp.kind`` (the RequestOp/ResponseOp oneof field numbers).
_RANGE, _PUT, _DELETE_RANGE, _TXN = 1, 2, 3, 4


def namespace_prefix(prefix: Any) -> bytes:
    """``prefix`` as bytes.

    :raises TypeError: not str or bytes. :raises ValueError: empty.
    """
    data: bytes = codec.to_bytes(prefix, "namespace prefix")
    if not data:
        raise ValueError("a namespace prefix must not be empty")
    return data


class KeySpace:
    """The keys of one namespace: ``prefix`` and ``end`` (the first key after every
    key that starts with ``prefix``; ``b"\\0"`` when there is none).

    :raises TypeError: ``prefix`` is not str or bytes. :raises ValueError: empty.
    """

    __slots__ = ("prefix", "end", "_cut")

    def __init__(self, prefix: Any) -> None:
        self.prefix = namespace_prefix(prefix)
        self.end = codec.prefix_range_end(self.prefix)
        self._cut = len(self.prefix)

    def __repr__(self) -> str:
        return f"KeySpace({self.prefix!r})"

    # -- on the way in ----------------------------------------------------------------

    def key(self, key: Any, what: str = "key") -> bytes:
        """The stored key of the namespace's ``key``.

        :raises TypeError: not str or bytes. :raises ValueError: empty.
        """
        return self.prefix + key_bytes(key, what)

    def range_end(self, range_end: Optional[bytes]) -> Optional[bytes]:
        """The stored range end of a range end already in bytes: None and ``b""``
        (a single key) stay as they are, ``b"\\0"`` is the namespace's end."""
        if not range_end:
            return range_end
        if range_end == b"\0":
            return self.end
        return self.prefix + range_end

    def interval(self, key: bytes, range_end: Optional[bytes]) -> Interval:
        """The stored ``[key, range_end)`` of the namespace's (bytes already)."""
        return self.prefix + key, self.range_end(range_end)

    def range(self, range_start: Any, range_end: Any) -> Tuple[bytes, bytes]:
        """The stored ``[range_start, range_end)`` of user arguments.

        :raises TypeError: not str or bytes. :raises ValueError: empty start.
        """
        end = codec.to_bytes(range_end, "range_end")
        return self.key(range_start, "range_start"), self.range_end(end) or b""

    def prefix_range(self, key_prefix: Any, what: str = "key_prefix") -> Tuple[bytes, bytes]:
        """The stored range of every key of the namespace starting with
        ``key_prefix`` (``""``: every key of the namespace).

        :raises TypeError: not str or bytes.
        """
        data = codec.to_bytes(key_prefix, what)
        end = self.range_end(codec.prefix_range_end(data))
        assert end is not None
        return self.prefix + (data or b"\0"), end

    def everything(self) -> Tuple[bytes, bytes]:
        """The stored range of every key of the namespace."""
        return self.prefix + b"\0", self.end

    # -- transactions -------------------------------------------------------------------

    def compare(self, item: Any) -> BaseCompare:
        """A copy of the compare ``item`` on the stored key (and range).

        :raises TypeError: not a compare built with ``client.transactions``.
        """
        if not isinstance(item, BaseCompare):
            raise TypeError(f"compare items must be built with client.transactions "
                            f"(value/version/create/mod/lease), not {type(item).__name__}")
        moved = copy.copy(item)
        moved.key, moved.range_end = self.interval(item.key, item.range_end)
        return moved

    def op(self, op: Any) -> Any:
        """A copy of the operation ``op`` (a put, get, delete or nested txn) on the
        stored keys.

        :raises TypeError: not an operation built with ``client.transactions``.
        """
        if isinstance(op, Put):
            moved = copy.copy(op)
            moved.key = self.prefix + op.key
            return moved
        if isinstance(op, (Get, Delete)):
            moved_range = copy.copy(op)
            moved_range.key, moved_range.range_end = self.interval(op.key, op.range_end)
            return moved_range
        if isinstance(op, Txn):
            return Txn(*self.txn(op.compare, op.success, op.failure))
        raise TypeError(f"transaction ops must be client.transactions.put/get/"
                        f"delete/txn, not {type(op).__name__}")

    def txn(self, compare: Iterable[Any], success: Optional[Iterable[Any]] = None,
            failure: Optional[Iterable[Any]] = None) -> TxnParts:
        """Copies of a transaction's compares and ops on the stored keys.

        :raises TypeError: a compare or op not built with ``client.transactions``.
        """
        return ([self.compare(item) for item in compare],
                [self.op(op) for op in success or ()],
                [self.op(op) for op in failure or ()])

    # -- on the way out -----------------------------------------------------------------

    def strip(self, key: bytes) -> bytes:
        """The namespace's key of a stored key inside it."""
        return key[self._cut:]

    def strip_kvs(self, kvs: Iterable[Any]) -> None:
        """Cut the prefix off the ``key`` of each key-value (or KVMetadata), in place."""
        cut = self._cut
        for kv in kvs:
            kv.key = kv.key[cut:]

    def strip_range(self, response: Any) -> Any:
        """A RangeResponse with its keys cut, in place; returns it."""
        self.strip_kvs(response.kvs)
        return response

    def strip_put(self, response: Any) -> Any:
        """A PutResponse with its ``prev_kv``'s key cut, in place; returns it."""
        if response.HasField("prev_kv"):
            self.strip_kvs((response.prev_kv,))
        return response

    def strip_delete(self, response: Any) -> Any:
        """A DeleteRangeResponse with its ``prev_kvs``' keys cut, in place."""
        self.strip_kvs(response.prev_kvs)
        return response

    def strip_txn(self, response: Any) -> Any:
        """A TxnResponse with the keys of every op's response (nested ones too) cut,
        in place; returns it."""
        for op in response.responses:
            kind = op.kind
            if kind == _RANGE:
                self.strip_range(op.response)
            elif kind == _PUT:
                self.strip_put(op.response)
            elif kind == _DELETE_RANGE:
                self.strip_delete(op.response)
            elif kind == _TXN:
                self.strip_txn(op.response)
        return response

    def strip_pairs(self, pairs: Iterable[Tuple[Any, Any]]) -> None:
        """Cut the prefix off the metadata of ``(value, KVMetadata)`` pairs (``(None,
        None)`` for a missing key is left alone), in place."""
        cut = self._cut
        for _, meta in pairs:
            if meta is not None:
                meta.key = meta.key[cut:]

    def event(self, event: Event) -> Event:
        """A copy of a watch event with the prefix cut off its key and its
        ``prev_kv``'s."""
        cut = self._cut
        prev = event.prev_kv
        if prev is not None:
            prev = KeyValue(prev.key[cut:], prev.create_revision, prev.mod_revision,
                            prev.version, prev.value, prev.lease)
        return type(event)(event.key[cut:], event.value, event.create_revision,
                           event.mod_revision, event.version, event.lease, prev)

    def watch_response(self, response: WatchResponse) -> WatchResponse:
        """A copy of a watch response with every event's keys cut."""
        if not response.events:
            return response  # a progress notification: nothing to cut
        return WatchResponse(response.header, [self.event(e) for e in response.events],
                             response.compact_revision)

    def watch_item(self, item: Any) -> Any:
        """What a watch hands a callback or an iterator, seen from the namespace: a
        response with its keys cut; anything else (the error ending the watch) as
        it is."""
        if isinstance(item, WatchResponse):
            return self.watch_response(item)
        return item

    def lease_keys(self, keys: Sequence[bytes]) -> List[bytes]:
        """The namespace's keys among the stored keys of a lease (others left out,
        as Go's ``namespace.NewLease`` does)."""
        prefix, cut = self.prefix, self._cut
        return [key[cut:] for key in keys if key.startswith(prefix) and len(key) > cut]


__all__ = ["KeySpace", "namespace_prefix"]
