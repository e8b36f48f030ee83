"""The cache store, step by step, with no stream, thread or server."""

from __future__ import annotations

from typing import Any, List

import pytest

from etcd3 import exceptions
from etcd3._core import cache_feed
from etcd3._core.prefix_cache import (
    ABSENT,
    CacheStore,
    CacheUpdate,
    diff,
    unchanged_since,
    updates_by_revision,
)
from etcd3.events import DeleteEvent, Event, PutEvent
from etcd3.results import KeyValue


def kv(key: bytes, value: bytes, mod: int, create: int = 0, version: int = 1) -> KeyValue:
    return KeyValue(key, create or mod, mod, version, value, 0)


def put(key: bytes, value: bytes, mod: int) -> PutEvent:
    return PutEvent(key, value, mod, mod, 1, 0)


def delete(key: bytes, mod: int) -> DeleteEvent:
    return DeleteEvent(key, b"", 0, mod, 0, 0)


def loaded(*pairs: bytes, revision: int = 10) -> CacheStore:
    store = CacheStore()
    assert store.replace([kv(k, k.upper(), 2) for k in pairs], revision) is None
    return store


def test_a_new_store_is_empty_at_revision_zero() -> None:
    store = CacheStore()
    assert (store.revision, len(store.map), store.loaded) == (0, 0, False)
    assert store.snapshot().get(b"a") == ABSENT


def test_the_first_load_is_not_an_update_and_reads_work() -> None:
    store = loaded(b"/a", b"/b", b"/c")
    snap = store.snapshot()
    assert store.revision == snap.revision == 10
    value, meta = snap.get("/b")
    assert value == b"/B" and meta.key == b"/b" and meta.mod_revision == 2
    assert "/a" in snap and b"/z" not in snap and 3 not in snap
    assert snap.keys() == [b"/a", b"/b", b"/c"]
    assert [k for k, _ in snap.items()] == [b"/a", b"/b", b"/c"]


def test_events_of_a_response_are_applied_together_one_update_per_revision() -> None:
    store = loaded(b"/a", b"/b")
    updates = store.apply([put(b"/c", b"1", 11), delete(b"/a", 11), put(b"/b", b"2", 12)])
    assert [(u.revision, len(u.events), u.resync) for u in updates] == [
        (11, 2, False), (12, 1, False)]
    assert store.revision == 12
    snap = store.snapshot()
    assert snap.keys() == [b"/b", b"/c"]
    assert snap.get(b"/b")[0] == b"2" and snap.get(b"/a") == ABSENT


def test_a_snapshot_never_changes_and_the_next_write_copies() -> None:
    store = loaded(b"/a", b"/b")
    before = store.snapshot()
    live = store.map
    store.apply([put(b"/a", b"new", 11), delete(b"/b", 11), put(b"/c", b"c", 11)])
    assert store.map is not live  # copied on write
    assert before.revision == 10 and before.keys() == [b"/a", b"/b"]
    assert before.get(b"/a")[0] == b"/A" and len(before) == 2
    after = store.snapshot()
    assert after.revision == 11 and after.keys() == [b"/a", b"/c"]


def test_snapshots_of_one_revision_are_one_object_and_writes_without_snapshots_are_in_place(
) -> None:
    store = loaded(b"/a")
    live = store.map
    store.apply([put(b"/b", b"b", 11)])
    assert store.map is live
    assert store.snapshot() is store.snapshot()
    assert store.frozen_snapshot() is store.snapshot()
    store.apply([put(b"/c", b"c", 12)])
    assert store.frozen_snapshot() is None


def test_key_order_is_kept_across_inserts_and_deletes() -> None:
    store = loaded(b"/m")
    assert store.snapshot().keys() == [b"/m"]  # builds the order, then kept up to date
    store.apply([put(b"/z", b"", 11), put(b"/a", b"", 11), put(b"/m", b"x", 12)])
    store.apply([delete(b"/z", 13), put(b"/b", b"", 13), delete(b"/nope", 13)])
    assert store.snapshot().keys() == [b"/a", b"/b", b"/m"]


def test_get_prefix_is_in_key_order_and_bounded_by_the_prefix() -> None:
    store = loaded(b"/a/2", b"/a/1", b"/ab", b"/b/1", b"/a/3")
    snap = store.snapshot()
    assert [m.key for _, m in snap.get_prefix(b"/a/")] == [b"/a/1", b"/a/2", b"/a/3"]
    assert [m.key for _, m in snap.get_prefix("/a")] == [b"/a/1", b"/a/2", b"/a/3", b"/ab"]
    assert len(snap.get_prefix()) == 5 and snap.get_prefix(b"/c") == []


def test_events_already_applied_are_skipped() -> None:
    store = loaded(b"/a", revision=10)
    assert store.apply([put(b"/a", b"old", 9), put(b"/a", b"old", 10)]) == []
    assert store.snapshot().get(b"/a")[0] == b"/A" and store.revision == 10
    updates = store.apply([put(b"/a", b"dup", 10), put(b"/b", b"new", 11)])
    assert [u.revision for u in updates] == [11] and store.map[b"/a"].value == b"/A"


def test_progress_moves_the_revision_forward_only_and_keeps_snapshots() -> None:
    store = loaded(b"/a")
    snap = store.snapshot()
    assert store.advance(15) and store.revision == 15
    assert not store.advance(12) and store.revision == 15
    assert snap.revision == 10 and store.snapshot().revision == 15
    store.apply([put(b"/b", b"", 16)])
    assert len(snap) == 1 and len(store.snapshot()) == 2


def test_a_resync_replaces_everything_at_once_and_reports_the_difference() -> None:
    store = loaded(b"/a", b"/b", b"/c")
    store.apply([put(b"/b", b"changed", 11)])
    old = store.snapshot()
    update = store.replace([kv(b"/a", b"/A", 2), kv(b"/b", b"again", 30),
                            kv(b"/d", b"d", 29)], 40)
    assert isinstance(update, CacheUpdate) and update.resync and update.revision == 40
    assert [(type(e).__name__, e.key) for e in update.events] == [
        ("PutEvent", b"/b"), ("PutEvent", b"/d"), ("DeleteEvent", b"/c")]
    assert update.events[-1].mod_revision == 40
    assert store.revision == 40 and store.snapshot().keys() == [b"/a", b"/b", b"/d"]
    assert old.keys() == [b"/a", b"/b", b"/c"] and old.revision == 11


def test_updates_by_revision_cuts_at_revision_boundaries() -> None:
    events: List[Event] = [put(b"a", b"", 5), put(b"b", b"", 5), delete(b"a", 6),
                           put(b"c", b"", 7)]
    assert [(u.revision, [e.key for e in u.events]) for u in updates_by_revision(events)] == [
        (5, [b"a", b"b"]), (6, [b"a"]), (7, [b"c"])]
    assert updates_by_revision([]) == []


def test_diff_of_equal_contents_is_empty() -> None:
    data = {b"a": kv(b"a", b"1", 3)}
    assert diff(data, dict(data), 9) == []


def test_a_bad_key_type_is_refused() -> None:
    with pytest.raises(TypeError):
        loaded(b"/a").snapshot().get(3)  # type: ignore[arg-type]


def test_a_range_is_unchanged_only_without_modified_keys_and_with_the_same_count() -> None:
    assert unchanged_since(3, 3, [])
    assert not unchanged_since(3, 2, [])  # a key was deleted
    assert not unchanged_since(3, 3, [kv(b"/a", b"", 12)])  # one put, one delete


def test_feed_rules() -> None:
    assert cache_feed.describe(b"\0", b"\0") == "every key"
    assert cache_feed.describe(b"/a/", b"/a0") == "prefix b'/a/'"
    assert cache_feed.describe(b"/a", b"/c") == "range [b'/a', b'/c')"
    assert cache_feed.prefix_bounds("") == (b"\0", b"\0")
    assert cache_feed.prefix_bounds("/a/") == (b"/a/", b"/a0")
    assert cache_feed.checked_page_size(5) == 5
    for bad in (0, -1, True, 1.5, "3"):
        with pytest.raises(ValueError):
            cache_feed.checked_page_size(bad)
    backoffs = [0.0]
    for _ in range(10):
        backoffs.append(cache_feed.next_backoff(backoffs[-1]))
    assert backoffs[1] == 0.1 and backoffs[-1] == cache_feed.MAX_BACKOFF
    assert backoffs == sorted(backoffs)


def test_the_next_page_starts_after_the_last_key_while_etcd_says_more() -> None:
    class Page:
        def __init__(self, keys: List[bytes], more: bool) -> None:
            self.kvs = [kv(k, b"", 1) for k in keys]
            self.more = more

    assert cache_feed.next_page_start(Page([b"/a", b"/b"], True)) == b"/b\0"
    assert cache_feed.next_page_start(Page([b"/a", b"/b"], False)) is None
    assert cache_feed.next_page_start(Page([], True)) is None


def test_a_resync_after_compaction_says_so() -> None:
    compacted = exceptions.RevisionCompactedError("compacted")
    message, args = cache_feed.resync_log("prefix b'/a/'", compacted, 10, 40, 3, 2)
    assert "compacted" in message % args and "revision 11" in message % args
    message, args = cache_feed.resync_log("prefix b'/a/'", None, 10, 40, 3, 2)
    assert "re-listed at revision 40" in message % args


def test_pages_grow_while_small_and_shrink_when_huge() -> None:
    small = [kv(b"/k", b"v" * 10, 1)] * 100
    assert cache_feed.next_page_size(100, small) == 200
    assert cache_feed.next_page_size(cache_feed.MAX_PAGE_KEYS, small) == (
        cache_feed.MAX_PAGE_KEYS)
    big = b"v" * (cache_feed.PAGE_BYTES // 4)
    huge = [kv(b"/k", big, 1)] * 10  # 2.5 pages' worth
    assert cache_feed.next_page_size(10, huge) == 5
    assert cache_feed.next_page_size(1, huge) == 1
    fitting = [kv(b"/k", big, 1)] * 3  # 3/4 of a page: keep the size
    assert cache_feed.next_page_size(3, fitting) == 3


def by_color(key: bytes, value: bytes) -> object:
    if value == b"boom":
        raise ValueError("a bad value")
    return value.split(b":")[0] or None


def keys_of(pairs: List[Any]) -> List[bytes]:
    return [meta.key for _, meta in pairs]


def test_an_index_follows_every_change_and_snapshots_keep_theirs() -> None:
    store = CacheStore()
    store.replace([kv(b"/a", b"red:1", 2), kv(b"/b", b"blue:1", 2), kv(b"/c", b"red:2", 2),
                   kv(b"/d", b":none", 2)], 10)
    store.add_index("color", by_color)
    with pytest.raises(ValueError):
        store.add_index("color", by_color)
    before = store.snapshot()
    assert keys_of(before.by_index("color", b"red")) == [b"/a", b"/c"]
    assert sorted(before.index_values("color")) == [b"blue", b"red"]  # type: ignore[type-var]
    store.apply([put(b"/a", b"blue:2", 11), delete(b"/c", 11), put(b"/e", b"red:3", 12),
                 put(b"/f", b"boom", 12)])
    after = store.snapshot()
    assert keys_of(after.by_index("color", b"red")) == [b"/e"]
    assert keys_of(after.by_index("color", b"blue")) == [b"/a", b"/b"]
    assert after.by_index("color", b"green") == [] and b"/f" in after
    assert keys_of(before.by_index("color", b"red")) == [b"/a", b"/c"]  # unchanged
    store.apply([delete(b"/e", 13)])
    assert b"red" not in store.snapshot().index_values("color")
    with pytest.raises(KeyError):
        after.by_index("size", 1)


def test_an_index_is_rebuilt_by_a_resync_and_kept_by_progress() -> None:
    store = CacheStore()
    store.replace([kv(b"/a", b"red:1", 2)], 10)
    store.add_index("color", by_color)
    snap = store.snapshot()
    store.advance(12)
    assert keys_of(store.snapshot().by_index("color", b"red")) == [b"/a"]
    store.replace([kv(b"/b", b"red:9", 20), kv(b"/c", b"blue:9", 20)], 30)
    assert keys_of(store.snapshot().by_index("color", b"red")) == [b"/b"]
    assert keys_of(snap.by_index("color", b"red")) == [b"/a"]
