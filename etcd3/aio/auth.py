"""auth calls of the asyncio client (see the threaded :mod:`etcd3.auth`)."""

from __future__ import annotations

from ._base import AioServiceBase


class AioAuthMixin(AioServiceBase):
    """auth methods of :class:`~etcd3.aio.Etcd3Client`."""
