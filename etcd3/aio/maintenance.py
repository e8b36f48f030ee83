"""maintenance calls of the asyncio client (see the threaded :mod:`etcd3.maintenance`)."""

from __future__ import annotations

from ._base import AioServiceBase


class AioMaintenanceMixin(AioServiceBase):
    """maintenance methods of :class:`~etcd3.aio.Etcd3Client`."""
