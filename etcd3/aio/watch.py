"""watch calls of the asyncio client (see the threaded :mod:`etcd3.watch`)."""

from __future__ import annotations

from ._base import AioServiceBase


class AioWatchMixin(AioServiceBase):
    """watch methods of :class:`~etcd3.aio.Etcd3Client`."""
