"""The asyncio driver's channel pool: :class:`~etcd3.pool.ChannelPool`'s endpoints,
picking, ejection and re-admission rules, over ``grpc.aio`` channels.

``grpc.aio`` channels belong to the event loop they are made in, so the pool is made
inside the loop (on a client's first call) and its health probes run as tasks of
that loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, List, Set

import grpc
import grpc.aio

from ..pool import (
    _PROBE_FAILURES,
    _PROBE_PATH,
    _PROBE_REQUEST,
    REQUIRE_LEADER,
    ChannelPool,
    Endpoint,
    EndpointState,
)

log = logging.getLogger("etcd3")


def aio_channel(endpoint: Endpoint, options: List[Any]) -> grpc.aio.Channel:
    """A new ``grpc.aio`` channel to ``endpoint`` (its own options win)."""
    merged = dict(options)
    merged.update(dict(endpoint.opts))
    opts = list(merged.items())
    if endpoint.secure:
        assert endpoint.credentials is not None
        return grpc.aio.secure_channel(endpoint.netloc, endpoint.credentials, options=opts)
    return grpc.aio.insecure_channel(endpoint.netloc, options=opts)


class AioChannelPool(ChannelPool):
    """A :class:`~etcd3.pool.ChannelPool` of ``grpc.aio`` channels, bound to the event
    loop it was made in. Used by one loop only, so its (uncontended) lock never waits.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.loop = asyncio.get_running_loop()
        self._tasks: Set[asyncio.Task[Any]] = set()
        super().__init__(*args, **kwargs)

    def _new_state(self, endpoint: Endpoint) -> EndpointState:
        state = AioEndpointState(endpoint, [
            aio_channel(endpoint, self.options + [("etcd3.channel", i)])
            for i in range(self.channels_per_endpoint)])
        state.pool = self
        return state

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` as a task of the pool's loop, kept until it ends."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _probe(self, state: EndpointState) -> None:
        self.spawn(self._probe_all(state))

    async def _probe_all(self, state: EndpointState) -> None:
        """Probe every channel of ``state`` (see :mod:`etcd3.pool`); re-admit it when
        all pass, else eject it again for a longer period."""
        try:
            results = await asyncio.gather(*(self._probe_one(channel)
                                              for channel in state.channels))
            ok = all(results)
        except Exception:  # the channel was closed meanwhile
            ok = False
        self._probe_finished(state, ok)

    async def answers(self, state: EndpointState) -> bool:
        """Probe one channel of ``state`` as a health probe does: True when it
        answered. For liveness checks that cannot use the stream they watch (etcd's
        gRPC proxy ignores progress requests)."""
        try:
            return await self._probe_one(state.channels[0])
        except Exception:  # the channel was closed meanwhile
            return False

    async def _probe_one(self, channel: grpc.aio.Channel) -> bool:
        probe = channel.unary_unary(_PROBE_PATH, request_serializer=_identity,
                                    response_deserializer=_identity)
        try:
            await probe(_PROBE_REQUEST, timeout=self.probe_timeout,
                        metadata=(REQUIRE_LEADER,), wait_for_ready=True)
        except grpc.RpcError as error:
            # Any etcd answer given after the read index (e.g. "user name is empty",
            # "permission denied") comes from a working member.
            return error.code() not in _PROBE_FAILURES
        return True

    async def aclose(self) -> None:
        """Close every channel and stop the probes, waiting for the channels to
        close. Idempotent."""
        self.close()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current and not task.done():
                if getattr(task.get_coro(), "__name__", "") == "_probe_all":
                    task.cancel()
                await asyncio.gather(task, return_exceptions=True)


class AioEndpointState(EndpointState):
    """An endpoint of an :class:`AioChannelPool`: closing it closes its channels on
    the pool's loop, without waiting."""

    __slots__ = ("pool",)
    pool: AioChannelPool

    def close(self) -> None:
        pool = self.pool
        try:
            in_loop = asyncio.get_running_loop() is pool.loop
        except RuntimeError:
            in_loop = False
        for channel in self.channels:
            closing = channel.close()
            try:
                if in_loop:
                    pool.spawn(closing)
                else:
                    pool.loop.call_soon_threadsafe(pool.spawn, closing)
            except RuntimeError:  # the loop is closed: nothing left to release
                closing.close()


def _identity(data: bytes) -> bytes:
    return data
