"""locks calls of the asyncio client (see the threaded :mod:`etcd3.locks`)."""

from __future__ import annotations

from ._base import AioServiceBase


class AioLockMixin(AioServiceBase):
    """locks methods of :class:`~etcd3.aio.Etcd3Client`."""
