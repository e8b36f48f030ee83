"""The asyncio client's cache of a key range: the threaded :mod:`etcd3.cache`'s, run
with tasks.

``cache = await client.cache_prefix("/services/")`` lists the prefix at one revision
(in pages), then follows it with a watch from the next revision on the client's
watch stream. Reads (``get``, ``in``, ``len``, ``items``, ``get_prefix``,
``snapshot``) are plain calls, without I/O; the waits are awaited. The store, the
listing and checking rules and the read API are the threaded cache's
(:mod:`etcd3._core.prefix_cache`, :mod:`etcd3._core.cache_feed`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from typing import Any, Dict, List, Optional, Tuple, Union

from .. import _progress, codec, exceptions
from .._core import cache_feed as _rules
from .._core.cache_feed import DEFAULT_PAGE_SIZE
from .._core.deadline import UNSET, Deadline, Timeout
from .._core.ops import key_bytes, optional_count
from .._core.prefix_cache import (
    CacheStore,
    CacheUpdate,
    CacheView,
    Snapshot,
    unchanged_since,
)
from .._core.watch_options import watch_spec
from .._grpc import rpc as _rpc
from ..events import WatchResponse
from ..results import KeyValue
from ._base import AioServiceBase
from ._watch_engine import AioWatchEngine

log = logging.getLogger("etcd3")

KeyType = Union[str, bytes]
_ENGINE = "cache"


def _checked_progress(progress: Any) -> Any:
    """:raises TypeError: not a callable, True or None."""
    _progress.progress_reporter(progress, "", ())
    return progress


class _AioFeed:
    """One cached range of one asyncio client: its store, its list-and-watch task
    and the caches reading it. Holds nothing that refers to the client."""

    def __init__(self, hub: AioCacheHub, start: bytes, end: bytes, page_size: int,
                 progress: Any = None) -> None:
        self.hub = hub
        self.progress = progress
        self.start = start
        self.end = end
        self.page_size = page_size
        self.what = _rules.describe(start, end)
        self.store = CacheStore()
        self.handles: weakref.WeakSet[AioPrefixCache] = weakref.WeakSet()
        self.ready = asyncio.Event()
        self.closed = False
        self.error: Optional[BaseException] = None
        self.fatal: Optional[BaseException] = None
        self._need_list = asyncio.Event()
        self._need_list.set()
        self._pulse = asyncio.Event()  # set (and replaced) at every change
        self._cause: Optional[BaseException] = None
        self._token = 0
        self._sub_id: Optional[int] = None
        self._stale_since: Optional[float] = time.monotonic()
        self._task: Optional[asyncio.Task[None]] = None

    def launch(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"etcd3-cache {self.what}")

    # -- what readers ask -------------------------------------------------------------

    def is_ready(self) -> bool:
        return self.ready.is_set()

    def add_index(self, name: str, fn: Any) -> None:
        self.store.add_index(name, fn)  # one thread: nothing to lock

    def stale_since(self) -> Optional[float]:
        since = self._stale_since
        if since is not None:
            return since
        return self.hub.watch_engine.down_since

    def snapshot(self) -> Snapshot:
        return self.store.snapshot()  # one thread: nothing to lock

    def _changed(self) -> None:
        pulse, self._pulse = self._pulse, asyncio.Event()
        pulse.set()

    async def wait_ready(self, timeout: Optional[float]) -> None:
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except asyncio.TimeoutError:
            self._check_open()
            raise _rules.not_ready_error(self.what, timeout, self._late_reason()) from None
        self._check_open()

    async def wait_for_revision(self, revision: int, timeout: Optional[float]) -> int:
        store = self.store
        deadline = Deadline.after(timeout)
        next_probe = time.monotonic() + _rules.PROGRESS_AFTER
        while store.revision < revision:
            self._check_open()
            remaining = deadline.remaining()
            if remaining is not None and remaining <= 0:
                raise _rules.behind_error(self.what, revision, timeout, store.revision,
                                          self._late_reason())
            now = time.monotonic()
            if now >= next_probe:
                next_probe = now + _rules.PROGRESS_EVERY
                if self.ready.is_set() and store.loaded:
                    await self._confirm_quiet()
                continue
            wait = next_probe - now if remaining is None else min(next_probe - now,
                                                                  remaining)
            try:
                await asyncio.wait_for(self._pulse.wait(), wait)
            except asyncio.TimeoutError:
                pass
        return store.revision

    async def _confirm_quiet(self) -> None:
        """See :meth:`etcd3.cache._Feed._confirm_quiet`."""
        token, cached, count = self._token, self.store.revision, len(self.store.map)
        transport = self.hub.transport
        context = f"cache of {self.what}"
        try:
            counted = await transport.call(
                _rpc.RANGE, _rules.count_request(self.start, self.end), context=context)
            now = int(counted.header.revision)
            if now <= cached:
                return
            modified = await transport.call(
                _rpc.RANGE, _rules.modified_request(self.start, self.end, now, cached),
                context=context)
        except exceptions.Etcd3Exception as error:
            log.debug("etcd3: the cache of %s could not ask etcd for its revision (%s)",
                      self.what, error)
            return
        if unchanged_since(count, int(counted.count), modified.kvs) and \
                self._token == token and self.store.revision == cached:
            self.store.advance(now)
            self._changed()

    def _check_open(self) -> None:
        if self.fatal is not None:
            raise self.fatal
        if self.closed:
            raise _rules.closed_error(self.what)

    def _late_reason(self) -> str:
        since = self.stale_since()
        return _rules.late_reason(None if since is None else time.monotonic() - since,
                                  self.error)

    # -- the list-and-watch task ------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.0
        while not self.closed:
            try:
                await asyncio.wait_for(self._need_list.wait(), _rules.IDLE_CHECK)
            except asyncio.TimeoutError:
                if not self.handles:  # every cache of this range was dropped
                    self.hub.release(self)
                continue
            self._need_list.clear()
            cause, self._cause = self._cause, None
            if backoff:
                await asyncio.sleep(backoff)
                if self.closed:
                    return
            try:
                await self._list_and_watch(cause)
                backoff = 0.0
            except exceptions.ClientClosedError:
                self.close()
                return
            except exceptions.Etcd3Exception as error:
                if self.closed:
                    return
                self._failed(error)
                if _rules.is_fatal(error):
                    return
                backoff = _rules.next_backoff(backoff)
            except asyncio.CancelledError:
                raise
            except Exception as bug:
                log.exception("etcd3: the cache of %s failed to load; retrying", self.what)
                self._failed(bug)
                backoff = _rules.MAX_BACKOFF

    def _failed(self, error: BaseException) -> None:
        self.error = error
        if _rules.is_fatal(error):
            self.fatal = error
            self.ready.set()
        else:
            self._need_list.set()
        if self._stale_since is None:
            self._stale_since = time.monotonic()
        self._changed()
        log.info("etcd3: the cache of %s could not be loaded (%s)%s", self.what, error,
                 "" if _rules.is_fatal(error) else "; retrying")

    async def _list(self) -> Tuple[List[KeyValue], int]:
        transport = self.hub.transport
        start: Optional[bytes] = self.start
        revision = 0
        size = self.page_size
        kvs: List[KeyValue] = []
        report, finish = _progress.progress_reporter(
            self.progress if not self.store.loaded else None, f"cache of {self.what}", ())
        while start is not None and not self.closed:
            response = await transport.call(
                _rpc.RANGE, _rules.page_request(start, self.end, size, revision),
                context=f"cache of {self.what}")
            revision = revision or int(response.header.revision)
            kvs.extend(response.kvs)
            start = _rules.next_page_start(response)
            size = _rules.next_page_size(size, response.kvs)
            report(len(kvs))
        finish()
        return kvs, revision

    async def _list_and_watch(self, cause: Optional[BaseException]) -> None:
        self._cancel_watch()
        kvs, revision = await self._list()
        if self.closed:
            return
        old_revision = self.store.revision
        update = self.store.replace(kvs, revision)
        self._token += 1
        token = self._token
        self._changed()
        del kvs
        if update is not None:
            message, args = _rules.resync_log(self.what, cause, old_revision, revision,
                                              len(self.store.map), len(update.events))
            log.warning(message, *args)
            self._notify([update])
        engine = self.hub.watch_engine
        sub = await engine.subscribe(watch_spec(self.start, self.end),
                                     start_revision=revision + 1,
                                     callback=functools.partial(self._on_watch, token),
                                     timeout=self.hub.transport.timeout)
        self._sub_id = sub.id
        if token == self._token and not self._need_list.is_set():
            self._stale_since = None
            self.error = None
        self.ready.set()
        if self.closed:
            self._cancel_watch()

    def _cancel_watch(self) -> None:
        sub_id, self._sub_id = self._sub_id, None
        if sub_id is not None:
            self.hub.watch_engine.cancel(sub_id)

    # -- the watch engine's dispatcher task -------------------------------------------

    def _on_watch(self, token: int, item: Union[WatchResponse, BaseException]) -> None:
        if token != self._token or self.closed:
            return
        if isinstance(item, BaseException):
            self._token += 1
            self._sub_id = None
            self._cause = self.error = item
            self._stale_since = time.monotonic()
            self._need_list.set()
            self._changed()
            log.info("etcd3: the watch of the cache of %s ended (%s); re-listing",
                     self.what, item)
            return
        # Progress notifications are not trusted to move the revision (see
        # etcd3.cache._Feed._confirm_quiet).
        updates = self.store.apply(item.events)
        if updates:
            self._changed()
            self._notify(updates)

    def _notify(self, updates: List[CacheUpdate]) -> None:
        for handle in list(self.handles):
            for listener in handle._listeners:
                for update in updates:
                    try:
                        listener(update)
                    except Exception:
                        log.exception("etcd3: cache listener %r raised; the cache goes on",
                                      listener)

    # -- the end ----------------------------------------------------------------------

    def close(self) -> None:
        """Stop (on the feed's loop); waits raise CacheClosedError."""
        if self.closed:
            return
        self.closed = True
        self._token += 1
        self.ready.set()
        self._changed()
        self._need_list.set()
        self._cancel_watch()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def aclose(self) -> None:
        self.close()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait([task])


class AioCacheHub:
    """The caches of one asyncio client on one loop (a client engine): one feed per
    cached range, shared by every cache of that range."""

    def __init__(self, transport: Any, watch_engine: AioWatchEngine) -> None:
        self.transport = transport
        self.watch_engine = watch_engine
        self._loop = asyncio.get_running_loop()
        self._feeds: Dict[Tuple[bytes, bytes], _AioFeed] = {}

    def open(self, handle: AioPrefixCache, start: bytes, end: bytes, page_size: int,
             progress: Any = None) -> _AioFeed:
        feed = self._feeds.get((start, end))
        if feed is None or feed.closed:
            feed = self._feeds[(start, end)] = _AioFeed(self, start, end, page_size,
                                                         progress)
            feed.launch()
        feed.handles.add(handle)
        return feed

    def release(self, feed: _AioFeed, handle: Optional[AioPrefixCache] = None) -> None:
        if handle is not None:
            feed.handles.discard(handle)
        if feed.handles:
            return
        if self._feeds.get((feed.start, feed.end)) is feed:
            del self._feeds[(feed.start, feed.end)]
        feed.close()

    def feeds(self) -> List[_AioFeed]:
        return list(self._feeds.values())

    def _shut(self) -> List[_AioFeed]:
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            feed.close()
        return feeds

    async def aclose(self) -> None:
        if asyncio.get_running_loop() is not self._loop:  # its loop has ended
            self.close()
            return
        for feed in self._shut():
            await feed.aclose()

    def close(self) -> None:
        """Stop every feed without waiting; safe from any thread (a finalizer)."""
        try:
            running: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._shut()
            return
        if not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._shut)
                return
            except RuntimeError:  # closed meanwhile
                pass
        for feed in self._feeds.values():  # the loop is gone: just mark them closed
            feed.closed = True
        self._feeds = {}


class AioPrefixCache(CacheView):
    """A local copy of a key range that follows etcd, for asyncio code (from
    ``await client.cache_prefix(...)``). Reads are plain calls without I/O (see
    :class:`etcd3.cache.PrefixCache`); ``wait_ready``, ``wait_for_revision`` and
    ``close`` are awaited. Use it on the loop that opened it."""

    _feed: _AioFeed

    def __init__(self, client: Any, hub: AioCacheHub, start: bytes, end: bytes,
                 page_size: int, progress: Any = None) -> None:
        self._client = client  # keeps the client (and its watch stream) alive
        self._hub = hub
        self._attach(hub.open(self, start, end, page_size, progress), start, end)

    async def wait_ready(self, timeout: Optional[float] = None) -> None:
        """Wait until the range was loaded; see :meth:`etcd3.cache.PrefixCache.wait_ready`.

        :raises CacheTimedOut: not loaded in time.
        :raises AuthError: etcd refused to let this user read or watch the range.
        :raises CacheClosedError: the cache or its client was closed.
        """
        await self._feed.wait_ready(timeout)

    async def wait_for_revision(self, revision: int,
                                timeout: Optional[float] = None) -> int:
        """Wait until the cache is at ``revision`` or later; returns the revision
        reached (see :meth:`etcd3.cache.PrefixCache.wait_for_revision`).

        :raises CacheTimedOut: not reached within ``timeout`` seconds.
        :raises CacheClosedError: the cache or its client was closed.
        """
        return await self._feed.wait_for_revision(optional_count(revision, "revision"),
                                                  timeout)

    async def close(self) -> None:
        """Stop following etcd (the server watch ends with the range's last cache).
        The contents stay readable, frozen. Idempotent."""
        if self._freeze():
            self._hub.release(self._feed, self)

    async def __aenter__(self) -> AioPrefixCache:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


class AioCacheMixin(AioServiceBase):
    """Cache methods of :class:`~etcd3.aio.Etcd3Client`."""

    _watch_engine: Any

    def _cache_hub(self) -> AioCacheHub:
        hub = self._existing_engine(_ENGINE)
        if hub is not None:
            return hub  # type: ignore[return-value]
        transport, engine = self._transport, self._watch_engine()
        return self._engine(_ENGINE, lambda: AioCacheHub(transport, engine))

    async def cache_prefix(self, prefix: KeyType, *, wait: bool = True,
                           timeout: Timeout = UNSET,
                           page_size: int = DEFAULT_PAGE_SIZE,
                           progress: Any = None) -> AioPrefixCache:
        """:meth:`etcd3.Etcd3Client.cache_prefix`, awaited: an
        :class:`AioPrefixCache` of every key starting with ``prefix``.

        :raises CacheTimedOut: not loaded within ``timeout`` (the cache is closed).
        :raises TypeError: ``prefix`` not str or bytes, or a bad ``progress``.
        :raises ValueError: ``page_size`` < 1.
        :raises ClientClosedError: the client is closed.
        """
        start, end = _rules.prefix_bounds(prefix)
        return await self._open_cache(start, end, wait, timeout, page_size, progress)

    async def cache_range(self, range_start: KeyType, range_end: KeyType, *,
                          wait: bool = True, timeout: Timeout = UNSET,
                          page_size: int = DEFAULT_PAGE_SIZE,
                          progress: Any = None) -> AioPrefixCache:
        """:meth:`cache_prefix` for the keys in ``[range_start, range_end)``."""
        return await self._open_cache(key_bytes(range_start, "range_start"),
                                      codec.to_bytes(range_end, "range_end"), wait,
                                      timeout, page_size, progress)

    async def _open_cache(self, start: bytes, end: bytes, wait: bool, timeout: Timeout,
                          page_size: int, progress: Any) -> AioPrefixCache:
        cache = AioPrefixCache(self, self._cache_hub(), start, end,
                               _rules.checked_page_size(page_size),
                            _checked_progress(progress))
        if wait:
            limit = self._transport.timeout if timeout is UNSET else timeout
            try:
                await cache.wait_ready(limit)
            except BaseException:
                await cache.close()
                raise
        return cache


__all__ = ["AioCacheMixin", "AioPrefixCache", "CacheUpdate", "Snapshot"]
