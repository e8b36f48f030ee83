"""election calls of the asyncio client (see the threaded :mod:`etcd3.election`)."""

from __future__ import annotations

from ._base import AioServiceBase


class AioElectionMixin(AioServiceBase):
    """election methods of :class:`~etcd3.aio.Etcd3Client`."""
