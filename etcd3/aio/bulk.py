"""bulk calls of the asyncio client (see the threaded :mod:`etcd3.bulk`)."""

from __future__ import annotations

from ._base import AioServiceBase


class AioBulkMixin(AioServiceBase):
    """bulk methods of :class:`~etcd3.aio.Etcd3Client`."""
