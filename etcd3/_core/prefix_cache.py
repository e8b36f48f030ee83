"""The store of a watch-backed cache of a key range (no I/O, no threads, no clock).

:class:`CacheStore` maps key bytes to the key's :class:`~etcd3.results.KeyValue` (its
value and metadata in one object, as ``get`` returns them) at one etcd
:attr:`~CacheStore.revision`. A driver loads it from a list at one revision
(:meth:`CacheStore.replace`), then feeds it each watch response (:meth:`CacheStore.apply`):
the events of a response are applied together and the revision moves to the last
one's, so a reader never sees half a transaction through a snapshot, and the revision
never goes backwards.

Readers and the one writer share the store without a lock on the read path:

- ``store.map`` is the live dict; a single lookup in it is atomic.
- :meth:`CacheStore.snapshot` freezes the current generation (map, key order,
  revision) and hands it out as an immutable :class:`Snapshot`; the next write
  copies the map before changing it (copy-on-write), so taking a snapshot costs
  nothing and a snapshot never changes. Several snapshots of one generation are one
  object.

The driver serializes :meth:`~CacheStore.apply`, :meth:`~CacheStore.replace`,
:meth:`~CacheStore.advance` and :meth:`~CacheStore.snapshot` (the threaded one under a
lock); it tells listeners about the :class:`CacheUpdate` objects they return.
"""

from __future__ import annotations

import bisect
from typing import (
    Any,
    Callable,
    Dict,
    Hashable,
    Iterable,
    Iterator,
    List,
    Optional,
    Protocol,
    Sequence,
    Set,
    Tuple,
    Union,
)

from .. import codec, exceptions
from ..events import DeleteEvent, Event, PutEvent
from ..results import KeyValue, KVMetadata

KeyType = Union[str, bytes]
ValueMeta = Tuple[bytes, KVMetadata]
Absent = Tuple[None, None]
#: What ``get`` returns for a key that is not cached.
ABSENT: Absent = (None, None)


def key_of(key: KeyType) -> bytes:
    """``key`` as bytes (str is UTF-8 encoded).

    :raises TypeError: not str or bytes.
    """
    if type(key) is bytes:
        return key
    return codec.to_bytes(key, "key")


class CacheUpdate:
    """What one step changed: ``events`` (:class:`~etcd3.events.PutEvent` /
    :class:`~etcd3.events.DeleteEvent`, in order) took the cache to ``revision``.

    ``resync`` is True when the cache was re-listed (its watch could not resume, e.g.
    the revision it needed was compacted): ``events`` then are the differences between
    the old and the new contents (a ``DeleteEvent`` at ``revision`` for a key that is
    gone), not the history in between.
    """

    __slots__ = ("revision", "events", "resync")

    def __init__(self, revision: int, events: Sequence[Event], resync: bool = False) -> None:
        self.revision = revision
        self.events = events
        self.resync = resync

    def __repr__(self) -> str:
        kind = "resync" if self.resync else "update"
        return f"CacheUpdate({kind}, revision={self.revision}, events={len(self.events)})"


Index = Dict[Hashable, Set[bytes]]
IndexFn = Callable[[bytes, bytes], Optional[Hashable]]


def _indexed(fn: IndexFn, kv: KeyValue) -> Optional[Hashable]:
    """``fn(key, value)``; a function that raises leaves the key out (None)."""
    try:
        return fn(kv.key, kv.value)
    except Exception:
        return None


def build_index(fn: IndexFn, data: Dict[bytes, KeyValue]) -> Index:
    index: Index = {}
    for key, kv in data.items():
        value = _indexed(fn, kv)
        if value is not None:
            index.setdefault(value, set()).add(key)
    return index


class _Generation:
    """One version of the contents; ``frozen`` once a snapshot shares its map."""

    __slots__ = ("map", "order", "revision", "frozen", "snap", "indexes")

    def __init__(self, data: Dict[bytes, KeyValue], order: Optional[List[bytes]],
                 revision: int, frozen: bool = False,
                 indexes: Optional[Dict[str, Index]] = None) -> None:
        self.map = data
        #: name -> {indexed value: {key, ...}}, over the same contents.
        self.indexes: Dict[str, Index] = indexes if indexes is not None else {}
        #: The keys in order, once someone needed them (None: not built).
        self.order = order
        self.revision = revision
        self.frozen = frozen
        self.snap: Optional[Snapshot] = None

    def sorted_keys(self) -> List[bytes]:
        """The keys in order (built on first use; the generation must be frozen)."""
        order = self.order
        if order is None:
            order = self.order = sorted(self.map)
        return order


class ReadView:
    """The read API shared by a :class:`Snapshot` and a live cache.

    Subclasses give ``_view()``: the :class:`Snapshot` that multi-key reads use.
    """

    __slots__ = ()

    def _view(self) -> Snapshot:
        raise NotImplementedError

    def items(self) -> List[Tuple[bytes, ValueMeta]]:
        """``[(key, (value, metadata)), ...]`` in key order, at one revision."""
        return self._view().items()

    def keys(self) -> List[bytes]:
        """The keys in order, at one revision."""
        return self._view().keys()

    def values(self) -> List[ValueMeta]:
        """``[(value, metadata), ...]`` in key order, at one revision."""
        return self._view().values()

    def get_prefix(self, prefix: KeyType = b"") -> List[ValueMeta]:
        """``(value, metadata)`` of every cached key starting with ``prefix``, in key
        order, at one revision (like the client's ``get_prefix``).

        :raises TypeError: ``prefix`` not str or bytes.
        """
        return self._view().get_prefix(prefix)

    def by_index(self, name: str, value: Hashable) -> List[ValueMeta]:
        """``(value, metadata)`` of every key the index ``name`` files under
        ``value``, in key order, at one revision.

        :raises KeyError: no index ``name`` (see ``add_index``).
        """
        return self._view().by_index(name, value)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._view().keys())


class Snapshot(ReadView):
    """An immutable view of a cache at one :attr:`revision` (from ``snapshot()``).

    It has the cache's read API (``get``, ``in``, ``len``, ``items``, ``keys``,
    ``get_prefix``) and never changes, whatever the cache does later.
    """

    __slots__ = ("_gen", "_map", "revision")

    def __init__(self, gen: _Generation) -> None:
        self._gen = gen
        self._map = gen.map
        #: The etcd revision these contents are exactly the range's at.
        self.revision: int = gen.revision

    def _view(self) -> Snapshot:
        return self

    def get(self, key: KeyType) -> Union[ValueMeta, Absent]:
        """``(value, metadata)`` of ``key``, or ``(None, None)`` if it is not there.

        :raises TypeError: ``key`` not str or bytes.
        """
        kv = self._map.get(key if type(key) is bytes else key_of(key))
        if kv is None:
            return ABSENT
        return kv.value, kv

    def __contains__(self, key: object) -> bool:
        if type(key) is not bytes:
            if not isinstance(key, str):
                return False
            key = key.encode()
        return key in self._map

    def __len__(self) -> int:
        return len(self._map)

    def keys(self) -> List[bytes]:
        return list(self._gen.sorted_keys())

    def items(self) -> List[Tuple[bytes, ValueMeta]]:
        data = self._map
        out: List[Tuple[bytes, ValueMeta]] = []
        for key in self._gen.sorted_keys():
            kv = data[key]
            out.append((key, (kv.value, kv)))
        return out

    def values(self) -> List[ValueMeta]:
        data = self._map
        return [(kv.value, kv) for kv in map(data.__getitem__, self._gen.sorted_keys())]

    def get_prefix(self, prefix: KeyType = b"") -> List[ValueMeta]:
        start = key_of(prefix) if prefix else b""
        order = self._gen.sorted_keys()
        data = self._map
        out: List[ValueMeta] = []
        for i in range(bisect.bisect_left(order, start), len(order)):
            key = order[i]
            if not key.startswith(start):
                break
            kv = data[key]
            out.append((kv.value, kv))
        return out

    def by_index(self, name: str, value: Hashable) -> List[ValueMeta]:
        """``(value, metadata)`` of every key whose index ``name`` function gave
        ``value``, in key order, at this snapshot's revision.

        :raises KeyError: no index ``name`` (see ``add_index``).
        """
        try:
            index = self._gen.indexes[name]
        except KeyError:
            raise KeyError(f"the cache has no index {name!r}") from None
        data = self._map
        out: List[ValueMeta] = []
        for key in sorted(index.get(value, ())):
            kv = data[key]
            out.append((kv.value, kv))
        return out

    def index_values(self, name: str) -> List[Hashable]:
        """The values index ``name`` holds keys for (in no particular order).

        :raises KeyError: no index ``name``.
        """
        try:
            return list(self._gen.indexes[name])
        except KeyError:
            raise KeyError(f"the cache has no index {name!r}") from None

    def to_dict(self) -> Dict[bytes, bytes]:
        """``{key: value}`` of every key (a new dict)."""
        return {key: kv.value for key, kv in self._map.items()}

    def __repr__(self) -> str:
        return f"<etcd3 cache snapshot revision={self.revision} keys={len(self._map)}>"


def entry_of(event: Event) -> KeyValue:
    """The :class:`KeyValue` a put event leaves (its value and metadata)."""
    return KeyValue(event.key, event.create_revision, event.mod_revision, event.version,
                    event.value, event.lease)


def updates_by_revision(events: Sequence[Event]) -> List[CacheUpdate]:
    """``events`` cut into one :class:`CacheUpdate` per revision, in order."""
    updates: List[CacheUpdate] = []
    start = 0
    for i in range(1, len(events) + 1):
        if i == len(events) or events[i].mod_revision != events[start].mod_revision:
            updates.append(CacheUpdate(events[start].mod_revision, events[start:i]))
            start = i
    return updates


class CacheStore:
    """The contents of one cached range (see the module docstring)."""

    __slots__ = ("map", "_gen", "loaded", "_index_fns")

    def __init__(self) -> None:
        self._gen = _Generation({}, [], 0)
        self._index_fns: Dict[str, IndexFn] = {}
        #: The live dict of key -> KeyValue (replaced, never mutated, once frozen).
        self.map: Dict[bytes, KeyValue] = self._gen.map
        #: True once :meth:`replace` loaded a list.
        self.loaded = False

    @property
    def revision(self) -> int:
        """The etcd revision the contents are at (0 before the first load)."""
        return self._gen.revision

    def snapshot(self) -> Snapshot:
        """An immutable :class:`Snapshot` of the contents now (cheap: copy-on-write)."""
        gen = self._gen
        snap = gen.snap
        if snap is None:
            gen.frozen = True
            snap = gen.snap = Snapshot(gen)
        return snap

    def frozen_snapshot(self) -> Optional[Snapshot]:
        """The snapshot of the current generation if one was taken (no lock needed:
        a snapshot never changes)."""
        return self._gen.snap

    def _writable(self) -> _Generation:
        gen = self._gen
        if gen.frozen:
            order = gen.order
            gen = _Generation(dict(gen.map), None if order is None else list(order),
                              gen.revision, indexes={
                                  name: {value: set(keys) for value, keys in index.items()}
                                  for name, index in gen.indexes.items()})
            self._gen = gen
            self.map = gen.map
        return gen

    def replace(self, entries: Iterable[KeyValue], revision: int) -> Optional[CacheUpdate]:
        """Make the contents ``entries`` (key-values read at ``revision``), at once.

        Returns None for the first load, else the resync :class:`CacheUpdate`: the
        differences from the previous contents.
        """
        data = {kv.key: kv for kv in entries}
        old = self._gen
        first = not self.loaded
        self._gen = _Generation(data, None, revision, indexes={
            name: build_index(fn, data) for name, fn in self._index_fns.items()})
        self.map = data
        self.loaded = True
        if first:
            return None
        return CacheUpdate(revision, diff(old.map, data, revision), resync=True)

    def apply(self, events: Sequence[Event]) -> List[CacheUpdate]:
        """Apply the events of one watch response (whole revisions, in order) at once;
        returns one :class:`CacheUpdate` per revision. Events at or below the current
        revision (already applied) are skipped."""
        gen = self._gen
        if events and events[0].mod_revision <= gen.revision:
            events = [e for e in events if e.mod_revision > gen.revision]
        if not events:
            return []
        gen = self._writable()
        data = gen.map
        order = gen.order
        indexes = gen.indexes
        for event in events:
            key = event.key
            if indexes:
                self._unindex(indexes, data.get(key))
            if isinstance(event, DeleteEvent):
                if data.pop(key, None) is not None and order is not None:
                    del order[bisect.bisect_left(order, key)]
            else:
                if key not in data and order is not None:
                    bisect.insort(order, key)
                kv = data[key] = entry_of(event)
                if indexes:
                    self._index(indexes, kv)
        gen.revision = events[-1].mod_revision
        return updates_by_revision(events)

    def add_index(self, name: str, fn: IndexFn) -> None:
        """Keep an index ``name`` of the keys by ``fn(key, value)`` (None: not
        indexed; a function that raises leaves the key out), updated with every
        change and consistent with the contents at every revision.

        :raises ValueError: an index ``name`` exists already.
        :raises TypeError: ``fn`` is not callable.
        """
        if not callable(fn):
            raise TypeError("the index function must be callable")
        if name in self._index_fns:
            raise ValueError(f"the cache has an index {name!r} already")
        gen = self._writable()
        gen.indexes[name] = build_index(fn, gen.map)
        self._index_fns[name] = fn

    def _unindex(self, indexes: Dict[str, Index], old: Optional[KeyValue]) -> None:
        if old is None:
            return
        for name, fn in self._index_fns.items():
            value = _indexed(fn, old)
            if value is not None:
                keys = indexes[name].get(value)
                if keys is not None:
                    keys.discard(old.key)
                    if not keys:
                        del indexes[name][value]

    def _index(self, indexes: Dict[str, Index], kv: KeyValue) -> None:
        for name, fn in self._index_fns.items():
            value = _indexed(fn, kv)
            if value is not None:
                indexes[name].setdefault(value, set()).add(kv.key)

    def advance(self, revision: int) -> bool:
        """Nothing in the range changed up to ``revision`` (a progress notification):
        move the revision there. False when it is not ahead."""
        gen = self._gen
        if revision <= gen.revision:
            return False
        if gen.frozen:
            # Same contents at a later revision: share the map, new snapshot identity.
            gen = _Generation(gen.map, gen.order, revision, frozen=True,
                              indexes=gen.indexes)
            self._gen = gen
        else:
            gen.revision = revision
        return True


class FrozenStore:
    """What a closed cache reads: its contents when it was closed."""

    __slots__ = ("map", "revision", "loaded")

    def __init__(self, snap: Snapshot) -> None:
        self.map = snap._map
        self.revision = snap.revision
        self.loaded = True


class Feed(Protocol):
    """What a cache handle reads from its driver's feed."""

    what: str
    closed: bool
    store: CacheStore

    def snapshot(self) -> Snapshot:
        """The current contents (see :meth:`CacheStore.snapshot`)."""

    def stale_since(self) -> Optional[float]:
        """Since when the contents may be behind etcd (None: following)."""

    def is_ready(self) -> bool:
        """True once the range was loaded (or the feed failed or closed)."""

    def add_index(self, name: str, fn: IndexFn) -> None:
        """:meth:`CacheStore.add_index`, serialized with the feed's writes."""


Listener = Callable[[CacheUpdate], Any]


class CacheView(ReadView):
    """The read API of a cache (``get``, ``in``, ``len``, ``items``, ``get_prefix``,
    ``snapshot``, ``revision``, listeners), shared by the threaded and the asyncio
    cache; they add the waits and the closing. Reads do no I/O and take no lock."""

    _feed: Feed
    _store: Union[CacheStore, FrozenStore]

    def _attach(self, feed: Feed, start: bytes, end: bytes) -> None:
        self._feed = feed
        self._store = feed.store
        #: The first key of the range, and its end (exclusive; ``b"\0"``: no end).
        self.range_start = start
        self.range_end = end

    _frozen: Optional[Snapshot] = None  # the contents when it was closed
    _closed = False
    _listeners: Tuple[Listener, ...] = ()

    def get(self, key: KeyType) -> Union[ValueMeta, Absent]:
        """``(value, metadata)`` of ``key`` (metadata as the client's ``get``), or
        ``(None, None)`` when it is not in the range now.

        :raises TypeError: ``key`` not str or bytes.
        """
        kv = self._store.map.get(key if type(key) is bytes else key_of(key))
        if kv is None:
            return ABSENT
        return kv.value, kv

    def __contains__(self, key: object) -> bool:
        if type(key) is not bytes:
            if not isinstance(key, str):
                return False
            key = key.encode()
        return key in self._store.map

    def __len__(self) -> int:
        return len(self._store.map)

    def _view(self) -> Snapshot:
        if self._frozen is not None:
            return self._frozen
        return self._feed.snapshot()

    def snapshot(self) -> Snapshot:
        """An immutable :class:`Snapshot` of the cache at one :attr:`revision`, with
        the same read API. Cheap: nothing is copied until the cache changes next
        (then the cache copies its map once)."""
        return self._view()

    @property
    def revision(self) -> int:
        """The etcd revision the cache is at (0 before it loaded); never decreases."""
        return self._store.revision

    @property
    def ready(self) -> bool:
        """True once the range was loaded."""
        return self._store.loaded and self._feed.is_ready()

    @property
    def stale_since(self) -> Optional[float]:
        """None while the cache follows etcd; otherwise the :func:`time.monotonic`
        time since which it may be behind (its watch has no member answering, it is
        re-listing or not loaded yet, or it was closed or inherited over a fork)."""
        return self._feed.stale_since()

    @property
    def closed(self) -> bool:
        """True after ``close()`` (or once the client is closed)."""
        return self._closed or self._feed.closed

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(update)`` with a :class:`CacheUpdate` after each revision is
        applied (``update.events``: its events), and after a re-list
        (``update.resync`` True, ``events``: what changed). Listeners run one at a
        time, on the client's watch dispatcher (a re-list: the cache's own thread or
        task), so a slow one delays the client's watch callbacks; what they raise is
        logged. A listener (or any watch callback of the client) must not wait for
        the cache (``wait_for_revision``): the cache is fed by that same thread.

        :raises TypeError: ``listener`` is not callable.
        """
        if not callable(listener):
            raise TypeError("listener must be callable")
        self._listeners = self._listeners + (listener,)

    def add_index(self, name: str, fn: IndexFn) -> None:
        """Keep an index of the keys by ``fn(key, value)`` (a hashable, or None to
        leave the key out; a function that raises leaves it out too), updated with
        every change and consistent with the contents at every revision; read it
        with ``by_index(name, value)`` (here or on a snapshot). Caches of one range
        on a client share their indexes.

        :raises ValueError: an index ``name`` exists already.
        :raises TypeError: ``fn`` is not callable.
        :raises CacheClosedError: the cache is closed.
        """
        if self._closed:
            raise exceptions.CacheClosedError("the cache is closed")
        self._feed.add_index(name, fn)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener`` (no-op if it was not added)."""
        self._listeners = tuple(fn for fn in self._listeners if fn != listener)

    def _freeze(self) -> bool:
        """Stop following: keep the contents as they are now. False if it already
        was closed."""
        if self._closed:
            return False
        self._frozen = snap = self._feed.snapshot()
        self._store = FrozenStore(snap)
        self._closed = True
        self._listeners = ()
        return True

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("ready" if self.ready else "loading")
        return (f"<etcd3 cache of {self._feed.what} {state} revision={self.revision} "
                f"keys={len(self)}>")


def unchanged_since(cached: int, count_now: int, modified_now: Sequence[Any]) -> bool:
    """Whether a range held ``cached`` keys at the cache's revision C and nothing in
    it changed up to a later revision P, given at P its key ``count_now`` and the keys
    ``modified_now`` with a mod revision after C. No key modified after C means every
    key at P existed, unchanged, at C; the same count then means none was deleted.
    """
    return not modified_now and count_now == cached


def diff(old: Dict[bytes, KeyValue], new: Dict[bytes, KeyValue],
         revision: int) -> List[Event]:
    """The events that turn ``old`` into ``new``: a put for each new or changed key,
    then a delete (at ``revision``) for each key that is gone, in key order."""
    events: List[Event] = []
    for key in sorted(new):
        kv = new[key]
        before = old.get(key)
        if before is None or before.mod_revision != kv.mod_revision:
            events.append(PutEvent(key, kv.value, kv.create_revision, kv.mod_revision,
                                   kv.version, kv.lease_id))
    for key in sorted(old.keys() - new.keys()):
        events.append(DeleteEvent(key, b"", 0, revision, 0, 0))
    return events


__all__ = ["ABSENT", "CacheStore", "CacheUpdate", "CacheView", "Feed", "FrozenStore",
           "ReadView", "Snapshot", "diff",
           "entry_of", "key_of", "unchanged_since", "updates_by_revision"]
