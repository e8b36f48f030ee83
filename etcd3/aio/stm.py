"""stm calls of the asyncio client (see the threaded :mod:`etcd3.stm`)."""

from __future__ import annotations

from ._base import AioServiceBase


class AioSTMMixin(AioServiceBase):
    """stm methods of :class:`~etcd3.aio.Etcd3Client`."""
