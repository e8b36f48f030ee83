"""cluster calls of the asyncio client (see the threaded :mod:`etcd3.cluster`)."""

from __future__ import annotations

from ._base import AioServiceBase


class AioClusterMixin(AioServiceBase):
    """cluster methods of :class:`~etcd3.aio.Etcd3Client`."""
