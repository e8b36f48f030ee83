"""The asyncio watch driver's pieces that need no server: an iterator's inbox and
how its iterators end."""

from __future__ import annotations

import asyncio
from typing import Any, List

import pytest

from etcd3.aio._watch_engine import END, AioSubscriber, Inbox, WatchResponses
from etcd3.aio.watch import WatchEvents
from etcd3.etcdrpc import kv_pb2
from etcd3.etcdrpc import rpc_pb2 as pb
from etcd3.events import WatchResponse, events_from_pb, header_from_pb


def response(*revisions: int) -> WatchResponse:
    kvs = [kv_pb2.Event(kv=kv_pb2.KeyValue(key=b"/k", value=str(r).encode(),
                                           mod_revision=r)) for r in revisions]
    return WatchResponse(header_from_pb(pb.ResponseHeader(revision=max(revisions, default=1))),
                         events_from_pb(kvs))


def test_inbox_keeps_order_and_counts_what_waits() -> None:
    async def scenario() -> List[Any]:
        inbox = Inbox()
        for item in ("a", "b", "c"):
            inbox.put_nowait(item)
        assert inbox.qsize() == 3 and not inbox.empty()
        return [await inbox.get() for _ in range(3)]

    assert asyncio.run(scenario()) == ["a", "b", "c"]


def test_a_cancelled_get_takes_nothing() -> None:
    async def scenario() -> List[Any]:
        inbox = Inbox()
        waiting = asyncio.ensure_future(inbox.get())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        inbox.put_nowait("kept")  # the cancelled getter must not have taken it
        later = asyncio.ensure_future(inbox.get())
        got = [await asyncio.wait_for(later, 1)]
        assert inbox.empty()
        return got

    assert asyncio.run(scenario()) == ["kept"]


def test_two_readers_each_get_one_item() -> None:
    async def scenario() -> List[Any]:
        inbox = Inbox()
        readers = [asyncio.ensure_future(inbox.get()) for _ in range(2)]
        await asyncio.sleep(0)
        inbox.put_nowait(1)
        inbox.put_nowait(2)
        return sorted(await asyncio.wait_for(asyncio.gather(*readers), 1))

    assert asyncio.run(scenario()) == [1, 2]


def test_events_come_one_by_one_and_end_at_end() -> None:
    async def scenario() -> List[int]:
        sub = AioSubscriber(1, None, Inbox())
        events = WatchEvents(WatchResponses(sub))
        sub.queue.put_nowait(response(2, 3))
        sub.queue.put_nowait(response())  # a progress notification: no event
        sub.queue.put_nowait(response(4))
        sub.queue.put_nowait(END)
        return [e.mod_revision async for e in events]

    assert asyncio.run(scenario()) == [2, 3, 4]


def test_an_error_is_raised_once_then_the_iterator_ends() -> None:
    async def scenario() -> None:
        sub = AioSubscriber(1, None, Inbox())
        responses = WatchResponses(sub)
        sub.queue.put_nowait(response(5))
        sub.queue.put_nowait(RuntimeError("ended"))
        assert [e.mod_revision for e in (await responses.__anext__()).events] == [5]
        with pytest.raises(RuntimeError, match="ended"):
            await responses.__anext__()
        assert [r async for r in responses] == []

    asyncio.run(scenario())


def test_a_cancelled_subscriber_ends_without_reading_its_backlog() -> None:
    async def scenario() -> List[Any]:
        sub = AioSubscriber(1, None, Inbox())
        sub.queue.put_nowait(response(6))
        sub.cancelled = True
        return [r async for r in WatchResponses(sub)]

    assert asyncio.run(scenario()) == []
