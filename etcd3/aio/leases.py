"""leases calls of the asyncio client (see the threaded :mod:`etcd3.leases`)."""

from __future__ import annotations

from ._base import AioServiceBase


class AioLeaseMixin(AioServiceBase):
    """leases methods of :class:`~etcd3.aio.Etcd3Client`."""
