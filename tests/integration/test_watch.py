"""Watches against a real etcd: event sequences, options, fan-out, threading, errors."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Iterator, List, Tuple

import pytest
from _watch_support import Collector

import etcd3
from etcd3 import exceptions
from etcd3.etcdrpc import rpc_pb2
from etcd3.events import DeleteEvent, Event, PutEvent, WatchResponse

pytestmark = pytest.mark.drivers("threaded", "aio")


def take(iterator: Iterator[Any], cancel: Callable[[], None], count: int,
         timeout: float = 10.0) -> List[Any]:
    """The first ``count`` items of ``iterator`` (cancelled after ``timeout``)."""
    timer = threading.Timer(timeout, cancel)
    timer.start()
    try:
        items = []
        for item in iterator:
            items.append(item)
            if len(items) == count:
                break
        return items
    finally:
        timer.cancel()


def shape(events: List[Event]) -> List[Tuple[str, bytes, bytes]]:
    return [(type(e).__name__, e.key, e.value) for e in events]


def engine_of(client: Any) -> Any:
    return client._watch_engine()


def test_put_and_delete_sequence(etcd_client: Any) -> None:
    events, cancel = etcd_client.watch("/w/key")
    etcd_client.put("/w/key", "1")
    etcd_client.put("/w/other", "x")
    etcd_client.put("/w/key", "2")
    etcd_client.delete("/w/key")
    got = take(events, cancel, 3)
    assert shape(got) == [("PutEvent", b"/w/key", b"1"), ("PutEvent", b"/w/key", b"2"),
                          ("DeleteEvent", b"/w/key", b"")]
    assert [e.version for e in got] == [1, 2, 0]
    assert got[1].mod_revision == got[0].mod_revision + 2
    assert got[0].create_revision == got[0].mod_revision
    assert isinstance(got[0], PutEvent) and isinstance(got[2], DeleteEvent)
    assert "PutEvent(key=b'/w/key', value=b'1'" in repr(got[0])
    cancel()


def test_prefix_and_range(etcd_client: Any) -> None:
    prefix_events, cancel_prefix = etcd_client.watch_prefix("/p/")
    range_events, cancel_range = etcd_client.watch("/r/b", range_end="/r/d")
    for key in ("/p/a", "/pz", "/p/b", "/r/a", "/r/b", "/r/c", "/r/d"):
        etcd_client.put(key, "v")
    assert [e.key for e in take(prefix_events, cancel_prefix, 2)] == [b"/p/a", b"/p/b"]
    assert [e.key for e in take(range_events, cancel_range, 2)] == [b"/r/b", b"/r/c"]
    cancel_prefix()
    cancel_range()


def test_filters_in_both_styles(etcd_client: Any) -> None:
    no_put, cancel_a = etcd_client.watch("/f", filters=["noput"])
    no_delete, cancel_b = etcd_client.watch(
        "/f", filters=[rpc_pb2.WatchCreateRequest.NODELETE])
    etcd_client.put("/f", "1")
    etcd_client.delete("/f")
    etcd_client.put("/f", "2")
    etcd_client.delete("/f")
    assert shape(take(no_put, cancel_a, 2)) == [("DeleteEvent", b"/f", b"")] * 2
    assert shape(take(no_delete, cancel_b, 2)) == [("PutEvent", b"/f", b"1"),
                                                   ("PutEvent", b"/f", b"2")]
    cancel_a()
    cancel_b()
    with pytest.raises(ValueError):
        etcd_client.watch("/f", filters=["nothing"])


def test_prev_kv(etcd_client: Any) -> None:
    etcd_client.put("/pk", "old")
    events, cancel = etcd_client.watch("/pk", prev_kv=True)
    etcd_client.put("/pk", "new")
    etcd_client.delete("/pk")
    put, delete = take(events, cancel, 2)
    assert (put.value, put.prev_value, put.prev_version) == (b"new", b"old", 1)
    assert (delete.prev_value, delete.prev_kv.key) == (b"new", b"/pk")
    plain, cancel_plain = etcd_client.watch("/pk")
    etcd_client.put("/pk", "again")
    (event,) = take(plain, cancel_plain, 1)
    assert event.prev_kv is None and event.prev_value is None
    cancel()
    cancel_plain()


def test_start_revision_replays_history(etcd_client: Any) -> None:
    first = etcd_client.put("/h", "1").header.revision
    etcd_client.put("/h", "2")
    etcd_client.delete("/h")
    events, cancel = etcd_client.watch("/h", start_revision=first)
    got = take(events, cancel, 3)
    assert shape(got) == [("PutEvent", b"/h", b"1"), ("PutEvent", b"/h", b"2"),
                          ("DeleteEvent", b"/h", b"")]
    assert [e.mod_revision for e in got] == [first, first + 1, first + 2]
    cancel()


def test_watch_response_and_progress(etcd_client: Any) -> None:
    responses, cancel = etcd_client.watch_prefix_response("/wr/")
    etcd_client.transaction([], [etcd_client.transactions.put(f"/wr/{i}", "v")
                                 for i in range(3)])
    (response,) = take(responses, cancel, 1)
    assert isinstance(response, WatchResponse)
    assert [e.key for e in response.events] == [b"/wr/0", b"/wr/1", b"/wr/2"]
    assert response.header.revision == response.events[0].mod_revision
    etcd_client.request_progress()
    (progress,) = take(responses, cancel, 1)
    assert progress.events == [] and progress.progress_notify
    assert progress.header.revision >= response.header.revision
    cancel()


def test_callbacks_and_cancel(etcd_client: Any) -> None:
    seen = Collector()
    watch_id = etcd_client.add_watch_prefix_callback("/cb/", seen)
    etcd_client.put("/cb/1", "a")
    seen.wait_for(lambda c: len(c.events) == 1)
    etcd_client.cancel_watch(watch_id)
    etcd_client.cancel_watch(watch_id)  # a second cancel is a no-op
    later = Collector()
    later_id = etcd_client.add_watch_prefix_callback("/cb/", later)
    etcd_client.put("/cb/2", "b")
    later.wait_for(lambda c: len(c.events) == 1)  # delivered after anything for seen
    assert shape(seen.events) == [("PutEvent", b"/cb/1", b"a")]
    etcd_client.cancel_watch(later_id)


@pytest.mark.drivers("threaded")  # inspects the threaded watch engine
def test_watch_once(etcd_client: Any) -> None:
    with pytest.raises(exceptions.WatchTimedOut):
        etcd_client.watch_once("/once", timeout=0.2)
    timer = threading.Timer(0.1, etcd_client.put, ("/once/x", "1"))
    timer.start()
    event = etcd_client.watch_prefix_once("/once/", timeout=5)
    timer.join()
    assert (event.key, event.value) == (b"/once/x", b"1")
    assert not engine_of(etcd_client)._watches


@pytest.mark.drivers("threaded")  # inspects the threaded watch engine
def test_joiner_gets_only_later_events_and_server_watch_is_shared(etcd_client: Any
                                                                  ) -> None:
    first = Collector()
    first_id = etcd_client.add_watch_prefix_callback("/s/", first)
    etcd_client.put("/s/before", "1")
    second = Collector()
    second_id = etcd_client.add_watch_prefix_callback("/s/", second)
    etcd_client.put("/s/after", "2")
    first.wait_for(lambda c: len(c.events) == 2)
    second.wait_for(lambda c: len(c.events) == 1)
    assert [e.key for e in second.events] == [b"/s/after"]
    engine = engine_of(etcd_client)
    assert len(engine._watches) == 1
    etcd_client.cancel_watch(first_id)
    assert len(engine._watches) == 1
    etcd_client.cancel_watch(second_id)
    assert not engine._watches


@pytest.mark.drivers("threaded")  # inspects the threaded watch engine
def test_thousand_watchers_shared_and_distinct(etcd_client: Any) -> None:
    count = 1000
    shared = [Collector() for _ in range(count // 2)]
    shared_ids = [etcd_client.add_watch_prefix_callback("/many/", c) for c in shared]
    distinct = [etcd_client.watch(f"/many/{i}") for i in range(count // 2)]
    assert len(engine_of(etcd_client)._watches) == 1 + count // 2
    etcd_client.transaction([], [etcd_client.transactions.put(f"/many/{i}", str(i))
                                 for i in range(100)])
    for i, (events, cancel) in enumerate(distinct[:100]):
        (event,) = take(events, cancel, 1)
        assert (event.key, event.value) == (f"/many/{i}".encode(), str(i).encode())
    for collector in shared:
        collector.wait_for(lambda c: len(c.events) == 100)
        assert [e.key for e in collector.events] == [f"/many/{i}".encode()
                                                     for i in range(100)]
    for watch_id in shared_ids:
        etcd_client.cancel_watch(watch_id)
    for _, cancel in distinct:
        cancel()
    assert not engine_of(etcd_client)._watches


def test_callback_may_add_and_cancel_watches(etcd_client: Any) -> None:
    inner = Collector()
    added: queue.Queue[int] = queue.Queue()
    outer_ids: List[int] = []

    def outer(response: Any) -> None:
        added.put(etcd_client.add_watch_callback("/in", inner))
        etcd_client.cancel_watch(outer_ids[0])

    outer_ids.append(etcd_client.add_watch_callback("/out", outer))
    etcd_client.put("/out", "go")
    inner_id = added.get(timeout=10)
    etcd_client.put("/out", "ignored: outer cancelled itself")
    etcd_client.put("/in", "1")
    inner.wait_for(lambda c: len(c.events) == 1)
    assert added.empty()
    etcd_client.cancel_watch(inner_id)


def test_callback_exception_is_logged_and_delivery_goes_on(
        etcd_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    seen = Collector()

    def failing(response: Any) -> None:
        seen(response)
        raise RuntimeError("boom")

    watch_id = etcd_client.add_watch_callback("/boom", failing)
    with caplog.at_level(logging.ERROR, logger="etcd3"):
        etcd_client.put("/boom", "1")
        etcd_client.put("/boom", "2")
        seen.wait_for(lambda c: len(c.events) == 2)
    assert any("boom" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    etcd_client.cancel_watch(watch_id)


def test_slow_callback_does_not_stall_iterators(etcd_client: Any) -> None:
    release = threading.Event()
    watch_id = etcd_client.add_watch_callback("/slow", lambda r: release.wait(10))
    events, cancel = etcd_client.watch("/slow")
    etcd_client.put("/slow", "1")
    etcd_client.put("/slow", "2")
    assert [e.value for e in take(events, cancel, 2, timeout=5)] == [b"1", b"2"]
    release.set()
    cancel()
    etcd_client.cancel_watch(watch_id)


@pytest.mark.drivers("threaded")  # inspects the threaded watch engine
def test_compacted_start_revision(etcd_client: Any) -> None:
    first = etcd_client.put("/c", "1").header.revision
    last = etcd_client.put("/c", "2").header.revision
    etcd_client.compact(last)
    seen = Collector()
    etcd_client.add_watch_callback("/c", seen, start_revision=first)
    seen.wait_for(lambda c: len(c.items) == 1)
    (error,) = seen.items
    assert isinstance(error, exceptions.RevisionCompactedError)
    assert error.compacted_revision == last
    events, cancel = etcd_client.watch("/c", start_revision=first)
    with pytest.raises(exceptions.RevisionCompactedError):
        next(events)
    cancel()
    assert not engine_of(etcd_client)._watches


def test_cancel_ends_a_blocked_iterator(etcd_client: Any) -> None:
    events, cancel = etcd_client.watch("/blocked")
    done = threading.Event()
    result: List[Any] = []

    def consume() -> None:
        result.extend(events)
        done.set()

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.1)
    cancel()
    assert done.wait(2)
    thread.join()
    assert result == []


def test_close_ends_iterators_and_threads(etcd_server: Any) -> None:
    before = set(threading.enumerate())
    client = etcd3.client(host=etcd_server.host, port=etcd_server.port)
    events, _ = client.watch("/closing")
    client.add_watch_callback("/closing", lambda r: None)
    ended = threading.Event()
    thread = threading.Thread(target=lambda: (list(events), ended.set()))
    thread.start()
    client.close()
    assert ended.wait(2)
    thread.join()
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(exceptions.ClientClosedError):
        client.watch("/closing")


def test_bounded_iterator_overflows_alone(etcd_client: Any) -> None:
    slow, cancel_slow = etcd_client.watch_prefix("/bounded/", max_queue=3)
    fast, cancel_fast = etcd_client.watch_prefix("/bounded/")  # shares the server watch
    for i in range(10):
        etcd_client.put(f"/bounded/{i}", str(i))
    seen_fast = []
    for event in fast:
        seen_fast.append(event.value)
        if len(seen_fast) == 10:
            break
    assert seen_fast == [str(i).encode() for i in range(10)]
    got = []
    with pytest.raises(exceptions.WatchOverflowError, match="3 responses behind"):
        for event in slow:
            got.append(event.value)
    assert got == [b"0", b"1", b"2"]
    # the unbounded watcher keeps going on the shared server watch
    etcd_client.put("/bounded/after", "x")
    assert next(fast).key == b"/bounded/after"
    cancel_fast()
    cancel_slow()
    with pytest.raises(ValueError, match="max_queue"):
        etcd_client.watch("/bounded/x", max_queue=0)


def test_bounded_callback_overflows_alone(etcd_client: Any) -> None:
    release = threading.Event()
    slow_got: List[Any] = []
    fast_got: List[Any] = []
    fast_done = threading.Event()

    def slow(response: Any) -> None:
        release.wait(30)
        slow_got.append(response)

    def fast(response: Any) -> None:
        fast_got.extend(e.value for e in response.events)
        if len(fast_got) == 10:
            fast_done.set()

    slow_id = etcd_client.add_watch_prefix_callback("/bcb/", slow, max_queue=3)
    fast_id = etcd_client.add_watch_prefix_callback("/bcb/", fast)
    for i in range(10):
        etcd_client.put(f"/bcb/{i}", str(i))
    time.sleep(0.5)  # the slow callback is stuck on the first response meanwhile
    release.set()
    assert fast_done.wait(10)
    assert fast_got == [str(i).encode() for i in range(10)]
    deadline = time.monotonic() + 10
    while not (slow_got and isinstance(slow_got[-1], Exception)) \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    *responses, error = slow_got
    assert isinstance(error, exceptions.WatchOverflowError) and "callback" in str(error)
    values = [e.value for r in responses for e in r.events]
    assert len(responses) == 3 and values == [str(i).encode() for i in range(len(values))]
    etcd_client.put("/bcb/after", "x")  # the unbounded one goes on; the slow one ended
    deadline = time.monotonic() + 10
    while len(fast_got) < 11 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fast_got[-1] == b"x" and len(slow_got) == 4
    etcd_client.cancel_watch(slow_id)  # a no-op now
    etcd_client.cancel_watch(fast_id)
    with pytest.raises(ValueError, match="max_queue"):
        etcd_client.add_watch_callback("/bcb/x", fast, max_queue=True)
