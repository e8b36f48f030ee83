"""Endpoint auto-sync for the asyncio client: a task that replaces the endpoint list
with the cluster's member list every so often (see ``endpoint_sync_interval``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Optional

from .. import exceptions
from .._grpc import rpc as _rpc
from ..etcdrpc import rpc_pb2 as pb
from ..pool import endpoints_from_urls, member_client_urls, member_endpoint
from ._transport import AioTransport

log = logging.getLogger("etcd3")


class AioEndpointSyncer:
    """Refreshes a transport's endpoints from the member list (an engine)."""

    def __init__(self, transport: AioTransport, interval: float) -> None:
        if interval <= 0:
            raise ValueError("endpoint_sync_interval must be > 0 seconds")
        self._transport = transport
        self._interval = interval
        self._task: Optional[asyncio.Task[None]] = None

    def ensure_started(self) -> None:
        """Start the task in the running loop (once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def sync_once(self) -> None:
        """Fetch the member list and update the endpoints now.

        :raises Etcd3Exception: the member list could not be fetched.
        """
        transport = self._transport
        response = await transport.call(_rpc.MEMBER_LIST, pb.MemberListRequest())
        pool = transport.pool
        endpoints = endpoints_from_urls(member_client_urls(response),
                                        lambda url: member_endpoint(pool, url))
        if endpoints:
            transport.set_endpoints(endpoints)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sync_once()
            except exceptions.ClientClosedError:
                return
            except exceptions.Etcd3Exception as error:  # keep the old list
                log.warning("etcd3: endpoint sync failed: %s", error)

    def close(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.get_loop().call_soon_threadsafe(task.cancel)

    async def aclose(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
