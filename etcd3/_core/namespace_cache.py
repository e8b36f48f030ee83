"""A prefix cache seen through a namespace view (no I/O: it only wraps one).

A view's ``cache_prefix(p)`` opens an ordinary cache (:mod:`etcd3.cache`) of the
namespace's stored range and hands it out wrapped in :class:`NamespacedCache`: keys
go in with the prefix added and come out without it, by the rules of
:class:`~etcd3._core.namespace.KeySpace`. The cache's key-values are shared by every
reader (and by other caches of the same range), so each one handed out is a copy.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from .. import codec
from .namespace import KeySpace

ValueMeta = Tuple[bytes, Any]
Absent = Tuple[None, None]


class _Reads:
    """The read API of a cache or a snapshot (``get``, ``in``, ``len``, ``keys``,
    ``items``, ``values``, ``get_prefix``, iteration), in the namespace."""

    __slots__ = ("_target", "_keys")

    def __init__(self, target: Any, keys: KeySpace) -> None:
        self._target = target
        self._keys = keys

    def get(self, key: Any) -> Union[ValueMeta, Absent]:
        """``(value, metadata)`` of ``key``, or ``(None, None)`` when it is not there.

        :raises TypeError: ``key`` not str or bytes. :raises ValueError: empty.
        """
        value, meta = self._target.get(self._keys.key(key))
        if meta is None:
            return None, None
        return value, self._keys.kv_copy(meta)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (bytes, str)) or not key:
            return False
        return self._keys.key(key) in self._target

    def __len__(self) -> int:
        return len(self._target)

    def keys(self) -> List[bytes]:
        """The keys in order, without the prefix, at one revision."""
        strip = self._keys.strip
        return [strip(key) for key in self._target]

    def items(self) -> List[Tuple[bytes, ValueMeta]]:
        """``[(key, (value, metadata)), ...]`` in key order, at one revision."""
        strip, copy = self._keys.strip, self._keys.kv_copy
        return [(strip(key), (value, copy(meta)))
                for key, (value, meta) in self._target.items()]

    def values(self) -> List[ValueMeta]:
        """``[(value, metadata), ...]`` in key order, at one revision."""
        copy = self._keys.kv_copy
        return [(value, copy(meta)) for value, meta in self._target.values()]

    def get_prefix(self, prefix: Any = b"") -> List[ValueMeta]:
        """``(value, metadata)`` of every cached key starting with ``prefix``, in key
        order, at one revision.

        :raises TypeError: ``prefix`` not str or bytes.
        """
        copy = self._keys.kv_copy
        start = self._keys.prefix + codec.to_bytes(prefix, "prefix")
        return [(value, copy(meta)) for value, meta in self._target.get_prefix(start)]

    def by_index(self, name: str, value: Any) -> List[ValueMeta]:
        """``(value, metadata)`` of every key the index ``name`` files under
        ``value``, in key order, at one revision (see :meth:`_Live.add_index`).

        :raises KeyError: no index ``name``.
        """
        copy = self._keys.kv_copy
        return [(v, copy(meta)) for v, meta in self._target.by_index(name, value)]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.keys())


class NamespacedSnapshot(_Reads):
    """An immutable view of a namespaced cache at one :attr:`revision`."""

    __slots__ = ()

    @property
    def revision(self) -> int:
        """The etcd revision these contents are exactly the range's at."""
        return int(self._target.revision)

    def to_dict(self) -> Dict[bytes, bytes]:
        """``{key: value}`` of every key, without the prefix (a new dict)."""
        strip = self._keys.strip
        return {strip(key): value for key, value in self._target.to_dict().items()}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NamespacedSnapshot):
            return NotImplemented
        return self._target == other._target and self._keys.prefix == other._keys.prefix

    def __hash__(self) -> int:
        return hash((id(self._target), self._keys.prefix))

    def __repr__(self) -> str:
        return f"<etcd3 cache snapshot of namespace {self._keys.prefix!r} {self._target!r}>"


class _Live(_Reads):
    """What a live cache adds to the reads, in either driver: snapshots, state,
    listeners."""

    __slots__ = ("_listeners", "_snapshot", "__weakref__")

    def __init__(self, target: Any, keys: KeySpace) -> None:
        super().__init__(target, keys)
        self._listeners: Dict[Any, Callable[[Any], Any]] = {}
        self._snapshot = NamespacedSnapshot(None, keys)

    def snapshot(self) -> NamespacedSnapshot:
        """An immutable snapshot at one :attr:`revision`, with the same read API
        (the same object while the cache has not changed)."""
        target = self._target.snapshot()
        last = self._snapshot
        if last._target is not target:
            last = self._snapshot = NamespacedSnapshot(target, self._keys)
        return last

    @property
    def revision(self) -> int:
        """The etcd revision the cache is at (0 before it loaded)."""
        return int(self._target.revision)

    @property
    def ready(self) -> bool:
        """True once the range was loaded."""
        return bool(self._target.ready)

    @property
    def stale_since(self) -> Optional[float]:
        """As :attr:`etcd3.cache.PrefixCache.stale_since`."""
        stale: Optional[float] = self._target.stale_since
        return stale

    @property
    def closed(self) -> bool:
        """True after :meth:`close` (or once the client is closed)."""
        return bool(self._target.closed)

    def add_listener(self, listener: Callable[[Any], Any]) -> None:
        """Call ``listener(update)`` after each change, as
        :meth:`etcd3.cache.PrefixCache.add_listener` does; the events of ``update``
        have keys without the prefix.

        :raises TypeError: ``listener`` is not callable.
        """
        if not callable(listener):
            raise TypeError("listener must be callable")
        event = self._keys.event

        def deliver(update: Any) -> Any:
            return listener(type(update)(update.revision,
                                         [event(e) for e in update.events],
                                         update.resync))

        self._listeners[listener] = deliver
        self._target.add_listener(deliver)

    def add_index(self, name: str, fn: Callable[[bytes, bytes], Any]) -> None:
        """Keep an index of the keys by ``fn(key, value)``, as
        :meth:`etcd3.cache.PrefixCache.add_index` does; ``fn`` is given keys without
        the prefix.

        :raises ValueError: an index ``name`` exists already.
        :raises TypeError: ``fn`` is not callable.
        :raises CacheClosedError: the cache is closed.
        """
        if not callable(fn):
            raise TypeError("the index function must be callable")
        strip = self._keys.strip
        self._target.add_index(name, lambda key, value: fn(strip(key), value))

    def remove_listener(self, listener: Callable[[Any], Any]) -> None:
        """Stop calling ``listener`` (no-op if it was not added)."""
        deliver = self._listeners.pop(listener, None)
        if deliver is not None:
            self._target.remove_listener(deliver)

    def __repr__(self) -> str:
        return f"<etcd3 cache of namespace {self._keys.prefix!r}: {self._target!r}>"


class NamespacedCache(_Live):
    """A prefix cache of a namespace view (from ``view.cache_prefix``): the cache's
    API (:class:`etcd3.cache.PrefixCache`), keys without the namespace's prefix."""

    __slots__ = ()

    def wait_ready(self, timeout: Optional[float] = None) -> None:
        """As :meth:`etcd3.cache.PrefixCache.wait_ready`."""
        self._target.wait_ready(timeout)

    def wait_for_revision(self, revision: int, timeout: Optional[float] = None) -> int:
        """As :meth:`etcd3.cache.PrefixCache.wait_for_revision`."""
        return int(self._target.wait_for_revision(revision, timeout))

    def close(self) -> None:
        """Stop following etcd; the contents stay readable, frozen. Idempotent."""
        self._target.close()

    def __enter__(self) -> NamespacedCache:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class AioNamespacedCache(_Live):
    """A prefix cache of an asyncio namespace view (from ``await
    view.cache_prefix(...)``): :class:`etcd3.aio.cache.AioPrefixCache`'s API, keys
    without the namespace's prefix."""

    __slots__ = ()

    async def wait_ready(self, timeout: Optional[float] = None) -> None:
        """As :meth:`etcd3.aio.cache.AioPrefixCache.wait_ready`."""
        await self._target.wait_ready(timeout)

    async def wait_for_revision(self, revision: int,
                                timeout: Optional[float] = None) -> int:
        """As :meth:`etcd3.aio.cache.AioPrefixCache.wait_for_revision`."""
        return int(await self._target.wait_for_revision(revision, timeout))

    async def close(self) -> None:
        """Stop following etcd; the contents stay readable, frozen. Idempotent."""
        await self._target.close()

    async def __aenter__(self) -> AioNamespacedCache:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


__all__ = ["AioNamespacedCache", "NamespacedCache", "NamespacedSnapshot"]
