"""python-etcd3's raw gRPC attributes on the asyncio client: the channel and stubs
are ``grpc.aio`` ones (their calls are awaited), and :attr:`metadata` is awaited.
See :mod:`etcd3.stubs`: such calls bypass the client's retries and failover."""

from __future__ import annotations

from typing import Awaitable

from ..stubs import Metadata, RawStubs
from ._base import AioServiceBase


class AioRawStubsMixin(AioServiceBase, RawStubs):
    """The raw gRPC attributes of :class:`~etcd3.aio.Etcd3Client`."""

    @property
    def metadata(self) -> Awaitable[Metadata]:
        """``await client.metadata``: the auth metadata (``(('token', ...),)``) for
        calls on :attr:`channel`, or None without authentication.

        :raises AuthenticationFailedError: the user or password is wrong.
        """
        transport = self._transport
        return transport.metadata_for(transport.pool.preferred())
