"""A local copy of a key range that follows etcd: reads at memory speed, each
consistent at one etcd revision.

``cache = client.cache_prefix("/services/")`` lists the prefix at one revision (in
pages), then watches it from the next revision through the client's watch stream
(which resumes across failovers without losing or repeating an event). Reads
(``get``, ``in``, ``len``, ``items``, ``get_prefix``, ``snapshot``) never do I/O.

- Every read reflects one etcd revision: the events of a transaction are applied
  together. A :meth:`PrefixCache.snapshot` is an immutable view at one revision
  (cheap: copy-on-write); several lookups that must agree should use one.
- :attr:`PrefixCache.revision` never goes backwards; :attr:`PrefixCache.stale_since`
  says since when the cache may be behind (no member answers its watch).
- When the watch cannot resume because the revision it needs was compacted (it was
  disconnected for long), the cache re-lists the range, replaces its contents at
  once, tells listeners (a ``resync`` update) and logs a WARNING.
- Caches of the same range on one client share one list and one server watch.

The store itself is the sans-I/O :mod:`etcd3._core.prefix_cache`; this module runs it
with the threaded client: one thread per cached range lists it (again after a
compaction), the watch engine's dispatcher thread applies the events.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Tuple,
    Union,
)

from . import codec, exceptions
from ._core.deadline import Deadline
from ._core.ops import key_bytes, optional_count, range_fields
from ._core.prefix_cache import (
    ABSENT,
    CacheStore,
    CacheUpdate,
    ReadView,
    Snapshot,
    key_of,
    unchanged_since,
)
from ._core.watch_options import watch_spec
from ._grpc import rpc as _rpc
from ._sync.base import UNSET, ServiceBase, Timeout
from .events import WatchResponse
from .results import KeyValue, KVMetadata

if TYPE_CHECKING:
    from ._sync.transport import Transport
    from ._sync.watch_engine import WatchEngine

log = logging.getLogger("etcd3")

KeyType = Union[str, bytes]
ValueMeta = Tuple[bytes, KVMetadata]
Listener = Callable[[CacheUpdate], None]

#: Keys per Range request while a cache lists its range.
DEFAULT_PAGE_SIZE = 1000
#: Seconds between re-list attempts grow up to this.
_MAX_BACKOFF = 5.0
#: How often an idle feed checks whether every cache using it was dropped.
_IDLE_CHECK = 2.0
#: wait_for_revision asks etcd whether the range changed after this long, then
#: every _PROGRESS_EVERY seconds (the revision may be of a key outside the range).
_PROGRESS_AFTER = 0.05
_PROGRESS_EVERY = 0.5
#: Errors a re-list does not retry: the cache fails (wait_ready raises them).
_FATAL = (exceptions.AuthError,)

_ENGINE = "cache"


def _describe(start: bytes, end: bytes) -> str:
    if start == b"\0" and end == b"\0":
        return "every key"
    if end == codec.prefix_range_end(start):
        return f"prefix {start!r}"
    return f"range [{start!r}, {end!r})"


class _Feed:
    """One cached range of one client: its store, its list-and-watch thread and the
    caches (handles) reading it. Holds nothing that refers to the client."""

    def __init__(self, hub: CacheHub, start: bytes, end: bytes, page_size: int) -> None:
        self.hub = hub
        self.start = start
        self.end = end
        self.page_size = page_size
        self.what = _describe(start, end)
        self.store = CacheStore()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # applied, loaded, closed
        self._notify_lock = threading.RLock()  # listeners hear one update at a time
        self.handles: weakref.WeakSet[PrefixCache] = weakref.WeakSet()
        self.ready = threading.Event()
        self.closed = False
        self.forked = False
        self.error: Optional[BaseException] = None  # the last list/watch failure
        self.fatal: Optional[BaseException] = None  # a failure that is not retried
        self._need_list = True
        self._cause: Optional[BaseException] = None  # why the watch ended
        self._token = 0  # the current subscription's; older deliveries are dropped
        self._sub_id: Optional[int] = None
        self._stale_since: Optional[float] = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"etcd3-cache {self.what}")

    def launch(self) -> None:
        self._thread.start()

    # -- what readers ask -------------------------------------------------------------

    def stale_since(self) -> Optional[float]:
        since = self._stale_since
        if since is not None:
            return since
        return _down_since(self.hub.watch_engine)

    def snapshot(self) -> Snapshot:
        snap = self.store.frozen_snapshot()
        if snap is not None:
            return snap
        with self._lock:
            return self.store.snapshot()

    def wait_ready(self, timeout: Optional[float]) -> None:
        if not self.ready.wait(timeout):
            self._check_open()
            raise exceptions.CacheTimedOut(
                f"the cache of {self.what} was not loaded within {timeout} s"
                + self._late_reason())
        self._check_open()

    def wait_for_revision(self, revision: int, timeout: Optional[float]) -> int:
        store = self.store
        if store.revision >= revision:
            return store.revision
        deadline = Deadline.after(timeout)
        started = time.monotonic()
        next_probe = started + _PROGRESS_AFTER
        while True:
            with self._changed:
                while store.revision < revision and not self.closed:
                    now = time.monotonic()
                    if now >= next_probe:
                        break
                    wait = next_probe - now
                    remaining = deadline.remaining()
                    if remaining is not None:
                        if remaining <= 0:
                            break
                        wait = min(wait, remaining)
                    self._changed.wait(wait)
                reached = store.revision
            if reached >= revision:
                return reached
            self._check_open()
            if deadline.expired:
                raise exceptions.CacheTimedOut(
                    f"the cache of {self.what} did not reach revision {revision} within "
                    f"{timeout} s (it is at {reached})" + self._late_reason())
            # The revision may be of a key outside the range: ask etcd whether the
            # range changed since the cache's revision.
            next_probe = time.monotonic() + _PROGRESS_EVERY
            if self.ready.is_set() and self.store.loaded:
                self._confirm_quiet()

    def _confirm_quiet(self) -> None:
        """Move the revision to etcd's current one if the range did not change since
        the cache's (two reads; see :func:`unchanged_since`). Etcd's progress
        notifications can't be used: before 3.5.8/3.4.24 they may run ahead of a watch
        that is catching up."""
        with self._lock:
            token, cached, count = self._token, self.store.revision, len(self.store.map)
        transport = self.hub.transport
        context = f"cache of {self.what}"
        try:
            counted = transport.call(_rpc.RANGE, codec.encode_range_request(*range_fields(
                self.start, self.end, count_only=True)), context=context)
            now = int(counted.header.revision)
            if now <= cached:
                return
            modified = transport.call(_rpc.RANGE, codec.encode_range_request(*range_fields(
                self.start, self.end, revision=now, keys_only=True,
                min_mod_revision=cached + 1)), context=context)
        except exceptions.Etcd3Exception as error:
            log.debug("etcd3: the cache of %s could not ask etcd for its revision (%s)",
                      self.what, error)
            return
        if unchanged_since(count, int(counted.count), modified.kvs):
            with self._changed:
                if self._token == token and self.store.revision == cached:
                    self.store.advance(now)
                    self._changed.notify_all()

    def _check_open(self) -> None:
        if self.fatal is not None:
            raise self.fatal
        if self.forked:
            raise exceptions.ForkedWatchError(
                f"the cache of {self.what} was opened before os.fork(), in the parent "
                "process; it no longer follows etcd here. Open it again in the child")
        if self.closed:
            raise exceptions.CacheClosedError(f"the cache of {self.what} is closed")

    def _late_reason(self) -> str:
        since = self.stale_since()
        words = ""
        if since is not None:
            words = f"; no up-to-date watch for {time.monotonic() - since:.1f} s"
        if self.error is not None:
            words += f"; last error: {self.error}"
        return words

    # -- the list-and-watch thread ----------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        while True:
            dropped = False
            with self._changed:
                while not self.closed and not self._need_list and not dropped:
                    self._changed.wait(_IDLE_CHECK)
                    dropped = not self.handles
                if self.closed:
                    return
                if not self._need_list:
                    dropped = True
                else:
                    self._need_list = False
                    cause, self._cause = self._cause, None
            if dropped:  # every cache of this range was dropped without close()
                self.hub.release(self)
                continue
            if backoff and self._sleep(backoff):
                return
            try:
                self._list_and_watch(cause)
                backoff = 0.0
            except exceptions.ClientClosedError:
                self.close(wait=False)
                return
            except exceptions.Etcd3Exception as error:
                if self.closed:
                    return
                self._failed(error)
                if isinstance(error, _FATAL):
                    return
                backoff = min(max(backoff * 2, 0.1), _MAX_BACKOFF)
            except Exception as bug:  # never let the thread die silently
                log.exception("etcd3: the cache of %s failed to load; retrying", self.what)
                self._failed(bug)
                backoff = _MAX_BACKOFF

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; True when the feed was closed meanwhile."""
        with self._changed:
            if not self.closed:
                self._changed.wait(seconds)
            return self.closed

    def _failed(self, error: BaseException) -> None:
        with self._changed:
            self.error = error
            if isinstance(error, _FATAL):
                self.fatal = error
                self.ready.set()  # wait_ready raises it
            else:
                self._need_list = True
            if self._stale_since is None:
                self._stale_since = time.monotonic()
            self._changed.notify_all()
        log.info("etcd3: the cache of %s could not be loaded (%s)%s", self.what, error,
                 "" if isinstance(error, _FATAL) else "; retrying")

    def _list(self) -> Tuple[List[KeyValue], int]:
        """Every key-value of the range at one revision (paged), and that revision."""
        transport = self.hub.transport
        start, revision = self.start, 0
        kvs: List[KeyValue] = []
        while True:
            request = codec.encode_range_request(*range_fields(
                start, self.end, limit=self.page_size, revision=revision or None))
            response = transport.call(_rpc.RANGE, request, context=f"cache of {self.what}")
            revision = revision or int(response.header.revision)
            page = response.kvs
            kvs.extend(page)
            if not page or not response.more or self.closed:
                return kvs, revision
            start = page[-1].key + b"\0"

    def _list_and_watch(self, cause: Optional[BaseException]) -> None:
        self._cancel_watch()
        kvs, revision = self._list()
        with self._changed:
            if self.closed:
                return
            old_revision = self.store.revision
            update = self.store.replace(kvs, revision)
            self._token += 1
            token = self._token
            self._changed.notify_all()
        del kvs
        if update is not None:
            if isinstance(cause, exceptions.RevisionCompactedError):
                log.warning("etcd3: the cache of %s could not resume its watch at revision "
                            "%d (compacted); re-listed it at revision %d: %d keys, %d "
                            "changed", self.what, old_revision + 1, revision,
                            len(self.store.map), len(update.events))
            else:
                log.warning("etcd3: the cache of %s re-listed at revision %d after its "
                            "watch ended (%s)", self.what, revision, cause)
            self._notify([update])
        spec = watch_spec(self.start, self.end)
        engine = self.hub.watch_engine
        sub = engine.subscribe(spec, start_revision=revision + 1,
                               callback=functools.partial(self._on_watch, token),
                               timeout=self.hub.transport.timeout)
        with self._changed:
            self._sub_id = sub.id
            if token == self._token and not self._need_list:
                self._stale_since = None
                self.error = None
            closed = self.closed
        self.ready.set()
        if closed:
            self._cancel_watch()

    def _cancel_watch(self) -> None:
        with self._lock:
            sub_id, self._sub_id = self._sub_id, None
        if sub_id is not None:
            self.hub.watch_engine.cancel(sub_id)

    # -- the watch engine's dispatcher thread -----------------------------------------

    def _on_watch(self, token: int, item: Union[WatchResponse, BaseException]) -> None:
        if isinstance(item, BaseException):
            with self._changed:
                if token != self._token or self.closed:
                    return
                self._token += 1  # ignore anything more from that watch
                self._sub_id = None
                self._need_list = True
                self._cause = item
                self.error = item
                self._stale_since = time.monotonic()
                self._changed.notify_all()
            log.info("etcd3: the watch of the cache of %s ended (%s); re-listing",
                     self.what, item)
            return
        with self._changed:
            if token != self._token or self.closed:
                return
            # A response without events (a progress notification) is not trusted to
            # move the revision: see _confirm_quiet.
            updates = self.store.apply(item.events)
            if updates:
                self._changed.notify_all()
        if updates:
            self._notify(updates)

    def _notify(self, updates: List[CacheUpdate]) -> None:
        with self._notify_lock:
            for handle in self.hub.handles_of(self):
                for listener in handle._listeners:
                    for update in updates:
                        try:
                            listener(update)
                        except Exception:
                            log.exception("etcd3: cache listener %r raised; the cache "
                                          "goes on", listener)

    # -- the end ----------------------------------------------------------------------

    def close(self, wait: bool = True) -> None:
        with self._changed:
            if self.closed:
                return
            self.closed = True
            self._token += 1
            self._changed.notify_all()
        self.ready.set()
        try:
            self._cancel_watch()
        except exceptions.Etcd3Exception:
            pass
        if wait and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def abandon_after_fork(self) -> None:
        """In a forked child: the thread and the watch are the parent's; the contents
        stay readable, frozen, and ``stale_since`` says since when."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._notify_lock = threading.RLock()
        self.closed = self.forked = True
        self._stale_since = time.monotonic()
        self.ready.set()


def _down_since(engine: WatchEngine) -> Optional[float]:
    """When the watch stream last lost every member (None: a member answers it)."""
    # The engine's outage record (read without its lock: one attribute read).
    return engine._outage.since


class CacheHub:
    """The caches of one client (a client engine, closed with the client): one
    :class:`_Feed` per cached range, shared by every cache of that range."""

    def __init__(self, transport: Transport, watch_engine: WatchEngine) -> None:
        self.transport = transport
        self.watch_engine = watch_engine
        self._lock = threading.Lock()
        self._feeds: Dict[Tuple[bytes, bytes], _Feed] = {}
        self._closed = False

    def open(self, handle: PrefixCache, start: bytes, end: bytes, page_size: int) -> _Feed:
        """The feed of ``[start, end)`` (started on first use), with ``handle`` on it."""
        with self._lock:
            if self._closed:
                raise exceptions.ClientClosedError("this etcd3 client has been closed")
            feed = self._feeds.get((start, end))
            fresh = feed is None or feed.closed
            if fresh:
                feed = self._feeds[(start, end)] = _Feed(self, start, end, page_size)
            assert feed is not None
            feed.handles.add(handle)
        if fresh:
            feed.launch()
        return feed

    def release(self, feed: _Feed, handle: Optional[PrefixCache] = None) -> None:
        """``handle`` is done with ``feed``; the feed stops with its last handle."""
        with self._lock:
            if handle is not None:
                feed.handles.discard(handle)
            if feed.handles:
                return
            if self._feeds.get((feed.start, feed.end)) is feed:
                del self._feeds[(feed.start, feed.end)]
        feed.close(wait=False)

    def handles_of(self, feed: _Feed) -> List[PrefixCache]:
        """The open caches reading ``feed`` (a copy: the set changes under the lock)."""
        with self._lock:
            return list(feed.handles)

    def feeds(self) -> List[_Feed]:
        with self._lock:
            return list(self._feeds.values())

    def close(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            feed.close(wait=wait)

    def abandon_after_fork(self) -> None:
        self._lock = threading.Lock()
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            feed.abandon_after_fork()


class _FrozenStore:
    """What a closed cache reads: its contents when it was closed."""

    __slots__ = ("map", "revision", "loaded")

    def __init__(self, snap: Snapshot) -> None:
        self.map = snap._map
        self.revision = snap.revision
        self.loaded = True


class PrefixCache(ReadView):
    """A local copy of a key range that follows etcd (from
    :meth:`CacheMixin.cache_prefix` / :meth:`CacheMixin.cache_range`).

    Reads do no I/O: ``get``, ``key in cache``, ``len(cache)``, ``items()``,
    ``keys()``, ``values()``, ``get_prefix(sub)`` (key order), ``snapshot()``. A single
    ``get`` reflects one revision; multi-key reads (``items``, ``get_prefix``, ...)
    are taken from one snapshot. The cache follows etcd while it is open and
    referenced: :meth:`close` it (or the client) when done; a cache dropped without
    ``close()`` stops following within seconds. It holds its client open.
    """

    def __init__(self, client: Any, hub: CacheHub, start: bytes, end: bytes,
                 page_size: int) -> None:
        self._client = client  # keeps the client (and its watch stream) alive
        self._hub = hub
        self._listeners: Tuple[Listener, ...] = ()
        self._closed = False
        self._frozen: Optional[Snapshot] = None  # the contents when it was closed
        self._feed = hub.open(self, start, end, page_size)
        self._store: Union[CacheStore, _FrozenStore] = self._feed.store
        #: The first key of the range, and the end (exclusive; ``b"\0"``: no end).
        self.range_start = start
        self.range_end = end

    # -- reads (no I/O, no lock) ------------------------------------------------------

    def get(self, key: KeyType) -> Union[ValueMeta, Tuple[None, None]]:
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
        """An immutable :class:`~etcd3._core.prefix_cache.Snapshot` of the cache at
        one :attr:`revision`, with the same read API. Cheap: nothing is copied until
        the cache changes next (then the cache copies its map once)."""
        return self._view()

    @property
    def revision(self) -> int:
        """The etcd revision the cache is at (0 before it loaded); never decreases."""
        return self._store.revision

    @property
    def ready(self) -> bool:
        """True once the range was loaded."""
        return self._feed.ready.is_set() and self._store.loaded

    @property
    def stale_since(self) -> Optional[float]:
        """None while the cache follows etcd; otherwise the :func:`time.monotonic`
        time since which it may be behind (its watch has no member answering, it is
        re-listing or not loaded yet, or it was closed or inherited over a fork)."""
        return self._feed.stale_since()

    @property
    def closed(self) -> bool:
        """True after :meth:`close` (or once the client is closed)."""
        return self._closed or self._feed.closed

    # -- waits ------------------------------------------------------------------------

    def wait_ready(self, timeout: Optional[float] = None) -> None:
        """Wait until the range was loaded (``timeout`` seconds; None: no limit).

        :raises CacheTimedOut: not loaded in time (the message says why, e.g. no
            member answers).
        :raises AuthError: etcd refused to let this user read or watch the range.
        :raises CacheClosedError: the cache or its client was closed.
        """
        self._feed.wait_ready(timeout)

    def wait_for_revision(self, revision: int, timeout: Optional[float] = None) -> int:
        """Wait until the cache is at ``revision`` or later, e.g. the
        ``header.revision`` of a ``put`` (read-your-writes); returns the revision
        reached. Works for revisions of keys outside the range too (if the cache
        is not there within 50 ms it asks etcd whether the range changed since).

        :raises CacheTimedOut: not reached within ``timeout`` seconds.
        :raises CacheClosedError: the cache or its client was closed.
        :raises TypeError: ``revision`` not an int. :raises ValueError: negative.
        """
        return self._feed.wait_for_revision(optional_count(revision, "revision"), timeout)

    # -- listeners --------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(update)`` with a :class:`~etcd3._core.prefix_cache.CacheUpdate`
        after each revision is applied (``update.events``: its events), and after a
        re-list (``update.resync`` True, ``events``: what changed). Listeners run one
        at a time on a client thread (usually the watch dispatcher, so a slow one
        delays the client's watch callbacks); what they raise is logged.

        :raises TypeError: ``listener`` is not callable.
        """
        if not callable(listener):
            raise TypeError("listener must be callable")
        self._listeners = self._listeners + (listener,)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener`` (no-op if it was not added)."""
        self._listeners = tuple(fn for fn in self._listeners if fn != listener)

    # -- the end ----------------------------------------------------------------------

    def close(self) -> None:
        """Stop following etcd (the server watch ends with the range's last cache).
        The contents stay readable, frozen. Idempotent."""
        if self._closed:
            return
        self._frozen = snap = self._feed.snapshot()
        self._store = _FrozenStore(snap)
        self._closed = True
        self._listeners = ()
        self._hub.release(self._feed, self)

    def __enter__(self) -> PrefixCache:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("ready" if self.ready else "loading")
        return (f"<etcd3 cache of {self._feed.what} {state} revision={self.revision} "
                f"keys={len(self)}>")


class CacheMixin(ServiceBase):
    """Cache methods of :class:`~etcd3.client.Etcd3Client`."""

    _watch_engine: Callable[[], WatchEngine]

    def _cache_hub(self) -> CacheHub:
        hub = self._existing_engine(_ENGINE)
        if hub is not None:
            return hub  # type: ignore[return-value]
        transport, engine = self._transport, self._watch_engine()
        return self._engine(_ENGINE, lambda: CacheHub(transport, engine))

    def cache_prefix(self, prefix: KeyType, *, wait: bool = True, timeout: Timeout = UNSET,
                     page_size: int = DEFAULT_PAGE_SIZE) -> PrefixCache:
        """A :class:`PrefixCache` of every key starting with ``prefix``: listed at one
        revision (``page_size`` keys per request), then kept up to date by a watch.

        Caches of the same range on this client share one list and one server watch.
        ``client.close()`` closes them.

        :param wait: wait until it is loaded (else see :meth:`PrefixCache.wait_ready`).
        :param timeout: how long to wait (default: the client's timeout; None: no limit).
        :raises CacheTimedOut: not loaded within ``timeout`` (the cache is closed).
        :raises AuthError: etcd refused to let this user read or watch the range.
        :raises TypeError: ``prefix`` not str or bytes.
        :raises ValueError: ``page_size`` < 1.
        :raises ClientClosedError: the client is closed.
        """
        start = codec.to_bytes(prefix, "prefix")
        return self._open_cache(start or b"\0", codec.prefix_range_end(start), wait,
                                timeout, page_size)

    def cache_range(self, range_start: KeyType, range_end: KeyType, *, wait: bool = True,
                    timeout: Timeout = UNSET,
                    page_size: int = DEFAULT_PAGE_SIZE) -> PrefixCache:
        """:meth:`cache_prefix` for the keys in ``[range_start, range_end)``
        (``range_end`` ``b"\\0"``: every key from ``range_start`` on).

        :raises ValueError: an empty ``range_start``, or ``page_size`` < 1.
        """
        return self._open_cache(key_bytes(range_start, "range_start"),
                                codec.to_bytes(range_end, "range_end"), wait, timeout,
                                page_size)

    def _open_cache(self, start: bytes, end: bytes, wait: bool, timeout: Timeout,
                    page_size: int) -> PrefixCache:
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"page_size must be an int >= 1, not {page_size!r}")
        cache = PrefixCache(self, self._cache_hub(), start, end, page_size)
        if wait:
            limit = self._transport.timeout if timeout is UNSET else timeout
            try:
                cache.wait_ready(limit)
            except BaseException:
                cache.close()
                raise
        return cache

    @property
    def caches(self) -> List[PrefixCache]:
        """The open caches of this client."""
        hub = self._existing_engine(_ENGINE)
        if hub is None:
            return []
        assert isinstance(hub, CacheHub)
        return [handle for feed in hub.feeds() for handle in hub.handles_of(feed)]


__all__ = ["CacheMixin", "CacheUpdate", "PrefixCache", "Snapshot", "DEFAULT_PAGE_SIZE"]
