"""How a cache feed lists and checks its range, for every driver (no I/O).

A feed (one per cached range per client) lists the range in pages at one revision,
watches it from the next, re-lists when the watch cannot resume, and — to honour
``wait_for_revision`` for a revision of a key outside the range — asks etcd whether
the range changed since the cache's revision. The drivers (threaded
:mod:`etcd3.cache`, asyncio :mod:`etcd3.aio.cache`) send the requests built here and
follow these rules; only the waiting differs.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from .. import codec, exceptions
from .ops import range_fields

#: Keys per Range request while a cache lists its range.
DEFAULT_PAGE_SIZE = 1000
#: Later pages of a list grow (doubling) while a page stays under this many bytes
#: of keys and values, up to MAX_PAGE_KEYS keys: etcd counts the rest of the range
#: for every page, so a list in small pages costs O(keys^2) on the server (300,000
#: keys: 21 s in pages of 1,000, 1.7 s in pages of 50,000).
PAGE_BYTES = 16 << 20
MAX_PAGE_KEYS = 1 << 18
#: Seconds between re-list attempts grow up to this.
MAX_BACKOFF = 5.0
#: How often an idle feed checks whether every cache using it was dropped.
IDLE_CHECK = 2.0
#: wait_for_revision asks etcd whether the range changed after this long, then
#: every PROGRESS_EVERY seconds (the revision may be of a key outside the range).
PROGRESS_AFTER = 0.05
PROGRESS_EVERY = 0.5
#: Errors a re-list does not retry: the cache fails (its waits raise them).
FATAL = (exceptions.AuthError,)


def describe(start: bytes, end: bytes) -> str:
    """``prefix b'/x/'``, ``range [a, b)`` or ``every key``: for messages."""
    if start == b"\0" and end == b"\0":
        return "every key"
    if end == codec.prefix_range_end(start):
        return f"prefix {start!r}"
    return f"range [{start!r}, {end!r})"


def prefix_bounds(prefix: Any) -> Tuple[bytes, bytes]:
    """``(start, end)`` of every key starting with ``prefix`` (all keys if empty).

    :raises TypeError: not str or bytes.
    """
    start = codec.to_bytes(prefix, "prefix")
    return start or b"\0", codec.prefix_range_end(start)


def checked_page_size(page_size: Any) -> int:
    """:raises ValueError: not an int >= 1."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise ValueError(f"page_size must be an int >= 1, not {page_size!r}")
    return page_size


def page_request(start: bytes, end: bytes, page_size: int, revision: int) -> Any:
    """The Range request of the page from ``start`` (at ``revision``; 0: now)."""
    return codec.encode_range_request(*range_fields(
        start, end, limit=page_size, revision=revision or None))


def next_page_start(response: Any) -> Optional[bytes]:
    """Where the next page starts, or None when ``response`` was the last page."""
    page = response.kvs
    if not page or not response.more:
        return None
    return bytes(page[-1].key) + b"\0"


def next_page_size(size: int, kvs: Any) -> int:
    """The size of the page after one of ``size`` keys that held ``kvs``."""
    page_bytes = sum(len(kv.key) + len(kv.value) for kv in kvs)
    if page_bytes * 2 <= PAGE_BYTES:
        return max(size, min(size * 2, MAX_PAGE_KEYS))
    if page_bytes > 2 * PAGE_BYTES:
        return max(size // 2, 1)
    return size


def count_request(start: bytes, end: bytes) -> Any:
    """How many keys the range holds now (and etcd's revision, in the header)."""
    return codec.encode_range_request(*range_fields(start, end, count_only=True))


def modified_request(start: bytes, end: bytes, revision: int, cached: int) -> Any:
    """The keys of the range at ``revision`` modified after ``cached``."""
    return codec.encode_range_request(*range_fields(
        start, end, revision=revision, keys_only=True, min_mod_revision=cached + 1))


def next_backoff(backoff: float) -> float:
    """Seconds before the next re-list attempt after a failed one."""
    return min(max(backoff * 2, 0.1), MAX_BACKOFF)


def is_fatal(error: BaseException) -> bool:
    return isinstance(error, FATAL)


def resync_log(what: str, cause: Optional[BaseException], old_revision: int,
               revision: int, keys: int, changed: int) -> Tuple[str, Tuple[Any, ...]]:
    """The WARNING (format, args) a re-list logs."""
    if isinstance(cause, exceptions.RevisionCompactedError):
        return ("etcd3: the cache of %s could not resume its watch at revision %d "
                "(compacted); re-listed it at revision %d: %d keys, %d changed",
                (what, old_revision + 1, revision, keys, changed))
    return ("etcd3: the cache of %s re-listed at revision %d after its watch ended (%s)",
            (what, revision, cause))


def forked_error(what: str) -> exceptions.ForkedWatchError:
    return exceptions.ForkedWatchError(
        f"the cache of {what} was opened before os.fork(), in the parent process; it "
        "no longer follows etcd here. Open it again in the child")


def closed_error(what: str) -> exceptions.CacheClosedError:
    return exceptions.CacheClosedError(f"the cache of {what} is closed")


def not_ready_error(what: str, timeout: Optional[float], late: str
                    ) -> exceptions.CacheTimedOut:
    return exceptions.CacheTimedOut(
        f"the cache of {what} was not loaded within {timeout} s{late}")


def behind_error(what: str, revision: int, timeout: Optional[float], reached: int,
                 late: str) -> exceptions.CacheTimedOut:
    return exceptions.CacheTimedOut(
        f"the cache of {what} did not reach revision {revision} within {timeout} s "
        f"(it is at {reached}){late}")


def late_reason(stale_for: Optional[float], error: Optional[BaseException]) -> str:
    """Why a cache may be late, for a timeout's message."""
    words = ""
    if stale_for is not None:
        words = f"; no up-to-date watch for {stale_for:.1f} s"
    if error is not None:
        words += f"; last error: {error}"
    return words


__all__ = ["DEFAULT_PAGE_SIZE", "checked_page_size", "count_request", "describe",
           "is_fatal", "modified_request", "next_backoff", "next_page_size", "next_page_start",
           "page_request", "prefix_bounds", "resync_log"]
