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

import itertools
from typing import (
    Any,
    AsyncIterable,
    AsyncIterator,
    Dict,
    Generic,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    TypeVar,
)

from .. import codec, exceptions
from ..events import Event, WatchResponse
from ..results import KeyValue
from .ops import BaseCompare, Delete, Get, Put, Txn, key_bytes

Interval = Tuple[bytes, Optional[bytes]]
#: A transaction's compares, success ops and failure ops.
TxnParts = Tuple[List[BaseCompare], List[Any], List[Any]]

#: Methods and attributes of the client that concern the whole cluster, not keys: a
#: view (threaded or asyncio) hands them to its client unchanged.
PASSED_THROUGH = frozenset((
    # cluster and maintenance
    "members", "add_member", "remove_member", "update_member", "promote_member",
    "status", "statuses", "create_alarm", "list_alarms", "disarm_alarm", "defragment",
    "hash", "hash_kv", "snapshot", "move_leader", "compact",
    # users and roles (permissions take keys: see REFUSED)
    "add_user", "get_user", "delete_user", "change_password", "users", "grant_role",
    "revoke_role", "add_role", "get_role", "delete_role", "roles", "enable_auth",
    "disable_auth", "auth_status",
    # connections, settings, the client's own statistics
    "stats", "endpoints", "sync_endpoints", "endpoint_in_use", "uses_secure_channel", "timeout",
    "retry", "lock_prefix",
    # watches and leases by id
    "request_progress", "revoke_lease", "refresh_lease", "lease_keepalive_active",
    "lease_alive_until",
))

#: :data:`PASSED_THROUGH`, and what only the asyncio client has.
AIO_PASSED_THROUGH = PASSED_THROUGH | {"snapshot_stream"}

#: Client attributes a view does not offer, and why.
REFUSED = {
    **{name: "raw gRPC stubs and channels bypass the namespace; use them on the client"
       for name in ("kvstub", "leasestub", "clusterstub", "maintenancestub", "auth_stub",
                    "channel", "metadata", "call_credentials")},
    **{name: "permissions are granted on absolute keys; call it on the client with the "
             "namespace's prefix in the key"
       for name in ("grant_permission_role", "revoke_permission_role")},
}


class PassThrough:
    """A client attribute a view hands out unchanged (see :data:`PASSED_THROUGH`):
    read from the view's client (``view._live()``, which raises once either is
    closed)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.__doc__ = (f"``client.{name}``, handed on unchanged (it concerns the "
                        f"cluster, not keys).")

    def __get__(self, view: Any, owner: type) -> Any:
        if view is None:
            return self
        return getattr(view._live(), self.name)


def refused(owner: Any, name: str) -> AttributeError:
    """The error for a missing attribute ``name`` of a view ``owner``."""
    reason = REFUSED.get(name)
    if reason is not None:
        return AttributeError(f"a namespace view has no {name}: {reason}")
    return AttributeError(f"{type(owner).__name__!r} object has no attribute {name!r}")


def view_closed(prefix: bytes) -> exceptions.ClientClosedError:
    """The error of a call through a closed view."""
    return exceptions.ClientClosedError(f"this namespace view ({prefix!r}) has been closed")


def client_closed(prefix: bytes) -> exceptions.ClientClosedError:
    """The error of a call through a view whose client is closed."""
    return exceptions.ClientClosedError(
        f"the etcd3 client under namespace {prefix!r} has been closed")


ClientT = TypeVar("ClientT")


class ViewBase(Generic[ClientT]):
    """What a namespace view of either driver holds and answers without I/O: its
    key space, its client, whether it is open, and the watches and leases started
    through it (each driver's view adds the calls)."""

    def __init__(self, etcd_client: ClientT, prefix: Any) -> None:
        self._keys = KeySpace(prefix)
        self._client = etcd_client
        self._closed = False
        self._tokens = itertools.count(1)
        #: Cancels of the watches started through this view, by watch id (callbacks)
        #: or by token (iterators).
        self._watches: Dict[Any, Any] = {}
        self._leases: Set[int] = set()

    @property
    def prefix(self) -> bytes:
        """The namespace's prefix."""
        return self._keys.prefix

    @property
    def client(self) -> ClientT:
        """The client under the view."""
        return self._client

    def namespace(self: ViewT, prefix: Any) -> ViewT:
        """A view of the namespace ``self.prefix + prefix`` (on the same client).

        :raises TypeError: not str or bytes. :raises ValueError: empty.
        """
        return type(self)(self._client, self._keys.key(prefix, "namespace prefix"))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} prefix={self.prefix!r} of {self._client!r}>"

    def __getattr__(self, name: str) -> Any:
        raise refused(self, name)

    def _live(self) -> ClientT:
        """The client, if the view and the client are open.

        :raises ClientClosedError: either was closed.
        """
        if self._closed:
            raise view_closed(self.prefix)
        client = self._client
        if client.closed:  # type: ignore[attr-defined]
            raise client_closed(self.prefix)
        return client

    @property
    def closed(self) -> bool:
        """True after ``close()``, or once the client is closed."""
        return self._closed or bool(self._client.closed)  # type: ignore[attr-defined]


ViewT = TypeVar("ViewT", bound=ViewBase[Any])


def prefix_end(key_prefix: Any) -> bytes:
    """The namespace's range end of every key starting with ``key_prefix`` (what the
    ``*_prefix`` watch methods pass on as ``range_end``)."""
    return codec.prefix_range_end(codec.to_bytes(key_prefix, "prefix"))


#: ``ResponseOp.kind`` (the RequestOp/ResponseOp oneof field numbers).
_RANGE, _PUT, _DELETE_RANGE, _TXN = 1, 2, 3, 4


def _clone(obj: Any) -> Any:
    """A shallow copy of an operation or compare (plain attributes; faster than
    :func:`copy.copy`)."""
    clone = object.__new__(type(obj))
    clone.__dict__.update(obj.__dict__)
    return clone


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

    def watched(self, key: Any, range_end: Any) -> Interval:
        """The stored key and range end of a watch on ``key`` (or ``[key,
        range_end)``) of the namespace.

        :raises TypeError: not str or bytes. :raises ValueError: an empty key alone.
        """
        if range_end is None:
            return self.key(key), None
        data = codec.to_bytes(key)
        return self.interval(data or b"\0", codec.to_bytes(range_end, "range_end"))

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
        moved: BaseCompare = _clone(item)
        moved.key, moved.range_end = self.interval(item.key, item.range_end)
        return moved

    def op(self, op: Any) -> Any:
        """A copy of the operation ``op`` (a put, get, delete or nested txn) on the
        stored keys.

        :raises TypeError: not an operation built with ``client.transactions``.
        """
        if isinstance(op, Put):
            moved = _clone(op)
            moved.key = self.prefix + op.key
            return moved
        if isinstance(op, (Get, Delete)):
            moved_range = _clone(op)
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

    def kv_copy(self, kv: Any) -> KeyValue:
        """A copy of a key-value others share (a cache's), without the prefix."""
        return KeyValue(kv.key[self._cut:], kv.create_revision, kv.mod_revision,
                        kv.version, kv.value, kv.lease_id)

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


class Moved:
    """The ``(stored key, value)`` of each ``(key, value)`` item of a (sync) iterable,
    read lazily (what a view's ``put_many`` hands its client); sized when the items
    are, for ``put_many``'s progress counter.

    :raises TypeError: ``items`` is not iterable (at once, as ``put_many``).
    """

    def __init__(self, items: Iterable[Tuple[Any, Any]], keys: KeySpace) -> None:
        self._items = items
        self._iterator = iter(items)
        self._keys = keys

    def __iter__(self) -> Iterator[Tuple[bytes, Any]]:
        key_of = self._keys.key
        for key, value in self._iterator:
            yield key_of(key), value


class SizedMoved(Moved):
    """:class:`Moved` of items that have a length."""

    def __len__(self) -> int:
        return len(self._items)  # type: ignore[arg-type]


async def _amoved(items: AsyncIterable[Tuple[Any, Any]], keys: KeySpace
                  ) -> AsyncIterator[Tuple[bytes, Any]]:
    async for key, value in items:
        yield keys.key(key), value


async def _amoved_keys(items: AsyncIterable[Any], keys: KeySpace) -> AsyncIterator[bytes]:
    async for key in items:
        yield keys.key(key)


def moved_items(items: Any, keys: KeySpace) -> Any:
    """The items of a view's ``put_many`` (a mapping, an iterable or an async
    iterable) with their keys moved into the namespace, read lazily.

    :raises TypeError: not iterable.
    """
    if isinstance(items, Mapping):
        items = items.items()
    if isinstance(items, AsyncIterable):
        return _amoved(items, keys)
    return (SizedMoved if hasattr(items, "__len__") else Moved)(items, keys)


def moved_keys(items: Any, keys: KeySpace) -> Any:
    """The keys of a view's ``delete_many``/``get_many`` (an iterable or an async
    iterable) moved into the namespace, read lazily.

    :raises TypeError: not iterable.
    """
    if isinstance(items, AsyncIterable):
        return _amoved_keys(items, keys)
    return (keys.key(key) for key in iter(items))


class StripFailedKeys:
    """``with StripFailedKeys(keys):`` cuts the prefix off the ``failed_keys`` of a
    :class:`~etcd3.exceptions.BulkWriteError` passing by."""

    def __init__(self, keys: KeySpace) -> None:
        self._keys = keys

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, error: Any, traceback: Any) -> None:
        if isinstance(error, exceptions.BulkWriteError):
            error.failed_keys = [self._keys.strip(key) for key in error.failed_keys]


def prev_kv_reporter(prev_kv: Any, keys: KeySpace) -> Any:
    """A view's ``put_many(prev_kv=...)`` callback as its client calls it: the key
    and the previous key-value handed on without the prefix. Anything else (None, a
    bool the client refuses) as it is."""
    if not callable(prev_kv):
        return prev_kv

    def report(key: bytes, value: Optional[bytes], meta: Any) -> Any:
        if meta is not None:
            keys.strip_kvs((meta,))
        return prev_kv(keys.strip(key), value, meta)

    return report


__all__ = ["AIO_PASSED_THROUGH", "KeySpace", "Moved", "PASSED_THROUGH", "PassThrough",
           "REFUSED", "StripFailedKeys", "client_closed", "moved_items", "moved_keys",
           "namespace_prefix", "prefix_end", "prev_kv_reporter", "refused", "view_closed"]
