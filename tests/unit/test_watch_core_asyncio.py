"""The watch core under a toy asyncio driver: the same object, no threads."""

from __future__ import annotations

import asyncio
from typing import Any, List

from etcd3._core.watch_actions import Actions, Dispatch, End, Enqueue, Send, Settle
from etcd3._core.watch_core import WatchCore
from etcd3._core.watch_state import Subscriber, WatchSpec
from etcd3.etcdrpc import kv_pb2
from etcd3.etcdrpc import rpc_pb2 as pb

END: Any = object()


class Errors:
    def refused(self, key: bytes, reason: str) -> BaseException:
        return RuntimeError(reason)

    def cancelled(self, reason: str) -> BaseException:
        return RuntimeError(reason)

    def compacted(self, revision: int) -> BaseException:
        return RuntimeError(revision)

    def overflow(self, sub: Subscriber) -> BaseException:
        return RuntimeError("overflow")

    def token_may_be_stale(self, reason: str) -> bool:
        return False


class AsyncDriver:
    """What an asyncio client needs around the core: inboxes, events, a request list."""

    def __init__(self) -> None:
        self.core = WatchCore(Errors(), lambda sub: sub.queue.qsize())
        self.sent: List[Any] = []

    def apply(self, actions: Actions) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.sent.append(action.request)
            elif isinstance(action, (Enqueue, Dispatch)):
                for sub in action.subscribers:
                    sub.queue.put_nowait(action.item)
            elif isinstance(action, Settle):
                action.watch.ready.set()
            elif isinstance(action, End):
                action.subscriber.queue.put_nowait(END)

    async def subscribe(self, spec: WatchSpec) -> Subscriber:
        sub = Subscriber(0, None, asyncio.Queue())
        _, actions = self.core.subscribe(sub, spec, None, asyncio.get_running_loop().time())
        assert sub.watch is not None
        if sub.watch.ready is None:
            sub.watch.ready = asyncio.Event()
        self.apply(actions)
        await sub.watch.ready.wait()
        if sub.error is not None:
            raise sub.error
        return sub


def test_an_asyncio_driver_wraps_the_same_core() -> None:
    async def scenario() -> List[int]:
        driver = AsyncDriver()
        driver.apply(driver.core.stream_opened())
        task = asyncio.ensure_future(driver.subscribe(WatchSpec(key=b"/k")))
        await asyncio.sleep(0)
        [create] = driver.sent
        watch_id = create.create_request.watch_id
        driver.apply(driver.core.receive(pb.WatchResponse(
            header=pb.ResponseHeader(revision=4), watch_id=watch_id, created=True)))
        sub = await task
        event = kv_pb2.Event(kv=kv_pb2.KeyValue(key=b"/k", mod_revision=5))
        driver.apply(driver.core.receive(pb.WatchResponse(
            header=pb.ResponseHeader(revision=5), watch_id=watch_id, events=[event])))
        cancelled = driver.core.cancel(sub.id)
        assert cancelled is not None
        driver.apply(cancelled)
        seen = []
        while (item := await sub.queue.get()) is not END:
            seen.extend(e.mod_revision for e in item.events)
        assert driver.sent[-1].cancel_request.watch_id == watch_id
        return seen

    assert asyncio.run(scenario()) == [5]
