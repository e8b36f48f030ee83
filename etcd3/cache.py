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

from . import _progress, codec, exceptions
from ._core import cache_feed as _rules
from ._core.cache_feed import DEFAULT_PAGE_SIZE
from ._core.deadline import Deadline
from ._core.ops import key_bytes, optional_count
from ._core.prefix_cache import (
    CacheStore,
    CacheUpdate,
    CacheView,
    Snapshot,
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

_ENGINE = "cache"
#: Seconds close() waits for a feed's thread.
_JOIN_TIMEOUT = 1.0


def _checked_progress(progress: Any) -> Any:
    """:raises TypeError: not a callable, True or None."""
    _progress.progress_reporter(progress, "", ())
    return progress


class _Feed:
    """One cached range of one client: its store, its list-and-watch thread and the
    caches (handles) reading it. Holds nothing that refers to the client."""

    def __init__(self, hub: CacheHub, start: bytes, end: bytes, page_size: int,
                 progress: Any = None) -> None:
        self.hub = hub
        self.progress = progress
        self.start = start
        self.end = end
        self.page_size = page_size
        self.what = _rules.describe(start, end)
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

    def is_ready(self) -> bool:
        return self.ready.is_set()

    def add_index(self, name: str, fn: Any) -> None:
        with self._lock:
            self.store.add_index(name, fn)

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
            raise _rules.not_ready_error(self.what, timeout, self._late_reason())
        self._check_open()

    def wait_for_revision(self, revision: int, timeout: Optional[float]) -> int:
        store = self.store
        if store.revision >= revision:
            return store.revision
        deadline = Deadline.after(timeout)
        started = time.monotonic()
        next_probe = started + _rules.PROGRESS_AFTER
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
                raise _rules.behind_error(self.what, revision, timeout, reached,
                                          self._late_reason())
            # The revision may be of a key outside the range: ask etcd whether the
            # range changed since the cache's revision.
            next_probe = time.monotonic() + _rules.PROGRESS_EVERY
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
            counted = transport.call(_rpc.RANGE, _rules.count_request(self.start, self.end),
                                     context=context)
            now = int(counted.header.revision)
            if now <= cached:
                return
            modified = transport.call(
                _rpc.RANGE, _rules.modified_request(self.start, self.end, now, cached),
                context=context)
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
            raise _rules.forked_error(self.what)
        if self.closed:
            raise _rules.closed_error(self.what)

    def _late_reason(self) -> str:
        since = self.stale_since()
        return _rules.late_reason(None if since is None else time.monotonic() - since,
                                  self.error)

    # -- the list-and-watch thread ----------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        while True:
            dropped = False
            with self._changed:
                while not self.closed and not self._need_list and not dropped:
                    self._changed.wait(_rules.IDLE_CHECK)
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
                if _rules.is_fatal(error):
                    return
                backoff = _rules.next_backoff(backoff)
            except Exception as bug:  # never let the thread die silently
                log.exception("etcd3: the cache of %s failed to load; retrying", self.what)
                self._failed(bug)
                backoff = _rules.MAX_BACKOFF

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; True when the feed was closed meanwhile."""
        with self._changed:
            if not self.closed:
                self._changed.wait(seconds)
            return self.closed

    def _failed(self, error: BaseException) -> None:
        with self._changed:
            self.error = error
            if _rules.is_fatal(error):
                self.fatal = error
                self.ready.set()  # wait_ready raises it
            else:
                self._need_list = True
            if self._stale_since is None:
                self._stale_since = time.monotonic()
            self._changed.notify_all()
        log.info("etcd3: the cache of %s could not be loaded (%s)%s", self.what, error,
                 "" if _rules.is_fatal(error) else "; retrying")

    def _list(self) -> Tuple[List[KeyValue], int]:
        """Every key-value of the range at one revision (paged), and that revision."""
        transport = self.hub.transport
        start: Optional[bytes] = self.start
        revision = 0
        size = self.page_size
        kvs: List[KeyValue] = []
        report, finish = _progress.progress_reporter(
            self.progress if not self.store.loaded else None, f"cache of {self.what}", ())
        while start is not None and not self.closed:
            response = transport.call(
                _rpc.RANGE, _rules.page_request(start, self.end, size, revision),
                context=f"cache of {self.what}")
            revision = revision or int(response.header.revision)
            kvs.extend(response.kvs)
            start = _rules.next_page_start(response)
            size = _rules.next_page_size(size, response.kvs)
            report(len(kvs))
        finish()
        return kvs, revision

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
            message, args = _rules.resync_log(self.what, cause, old_revision, revision,
                                              len(self.store.map), len(update.events))
            log.warning(message, *args)
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
            # A list in progress ends once the client's transport closes (after the
            # engines): don't hold close() up for it.
            self._thread.join(_JOIN_TIMEOUT)

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
    return engine.down_since  # read without its lock: one attribute read


class CacheHub:
    """The caches of one client (a client engine, closed with the client): one
    :class:`_Feed` per cached range, shared by every cache of that range."""

    def __init__(self, transport: Transport, watch_engine: WatchEngine) -> None:
        self.transport = transport
        self.watch_engine = watch_engine
        self._lock = threading.Lock()
        self._feeds: Dict[Tuple[bytes, bytes], _Feed] = {}
        self._closed = False

    def open(self, handle: PrefixCache, start: bytes, end: bytes, page_size: int,
             progress: Any = None) -> _Feed:
        """The feed of ``[start, end)`` (started on first use), with ``handle`` on it."""
        with self._lock:
            if self._closed:
                raise exceptions.ClientClosedError("this etcd3 client has been closed")
            feed = self._feeds.get((start, end))
            fresh = feed is None or feed.closed
            if fresh:
                feed = self._feeds[(start, end)] = _Feed(self, start, end, page_size,
                                                          progress)
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


class PrefixCache(CacheView):
    """A local copy of a key range that follows etcd (from
    :meth:`CacheMixin.cache_prefix` / :meth:`CacheMixin.cache_range`).

    Reads do no I/O: ``get``, ``key in cache``, ``len(cache)``, ``items()``,
    ``keys()``, ``values()``, ``get_prefix(sub)`` (key order), ``snapshot()``. A single
    ``get`` reflects one revision; multi-key reads (``items``, ``get_prefix``, ...)
    are taken from one snapshot. The cache follows etcd while it is open and
    referenced: :meth:`close` it (or the client) when done; a cache dropped without
    ``close()`` stops following within seconds. It holds its client open.
    """

    _feed: _Feed

    def __init__(self, client: Any, hub: CacheHub, start: bytes, end: bytes,
                 page_size: int, progress: Any = None) -> None:
        self._client = client  # keeps the client (and its watch stream) alive
        self._hub = hub
        self._attach(hub.open(self, start, end, page_size, progress), start, end)

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

    # -- the end ----------------------------------------------------------------------

    def close(self) -> None:
        """Stop following etcd (the server watch ends with the range's last cache).
        The contents stay readable, frozen. Idempotent."""
        if self._freeze():
            self._hub.release(self._feed, self)

    def __enter__(self) -> PrefixCache:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


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
                     page_size: int = DEFAULT_PAGE_SIZE, progress: Any = None) -> PrefixCache:
        """A :class:`PrefixCache` of every key starting with ``prefix``: listed at one
        revision in pages (the first of ``page_size`` keys; later ones grow while
        under 16 MiB), then kept up to date by a watch.

        Caches of the same range on this client share one list and one server watch.
        ``client.close()`` closes them.

        :param wait: wait until it is loaded (else see :meth:`PrefixCache.wait_ready`).
        :param timeout: how long to wait (default: the client's timeout; None: no limit).
        :param progress: while the range is first loaded, a callable taking the
            number of keys loaded so far (called after each page), or True for a
            counter on stderr when it is a terminal. The first cache of a range
            decides.
        :raises CacheTimedOut: not loaded within ``timeout`` (the cache is closed).
        :raises AuthError: etcd refused to let this user read or watch the range.
        :raises TypeError: ``prefix`` not str or bytes, or a bad ``progress``.
        :raises ValueError: ``page_size`` < 1.
        :raises ClientClosedError: the client is closed.
        """
        start, end = _rules.prefix_bounds(prefix)
        return self._open_cache(start, end, wait, timeout, page_size, progress)

    def cache_range(self, range_start: KeyType, range_end: KeyType, *, wait: bool = True,
                    timeout: Timeout = UNSET,
                    page_size: int = DEFAULT_PAGE_SIZE, progress: Any = None) -> PrefixCache:
        """:meth:`cache_prefix` for the keys in ``[range_start, range_end)``
        (``range_end`` ``b"\\0"``: every key from ``range_start`` on).

        :raises ValueError: an empty ``range_start``, or ``page_size`` < 1.
        """
        return self._open_cache(key_bytes(range_start, "range_start"),
                                codec.to_bytes(range_end, "range_end"), wait, timeout,
                                page_size, progress)

    def _open_cache(self, start: bytes, end: bytes, wait: bool, timeout: Timeout,
                    page_size: int, progress: Any) -> PrefixCache:
        cache = PrefixCache(self, self._cache_hub(), start, end,
                            _rules.checked_page_size(page_size),
                            _checked_progress(progress))
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
