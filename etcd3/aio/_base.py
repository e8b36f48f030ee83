"""What every service mixin of the asyncio client relies on."""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

from .._core.deadline import UNSET, Timeout
from .._grpc.rpc import Method
from ._engines import AioEngine, AioEngines
from ._transport import AioTransport

__all__ = ["UNSET", "AioServiceBase", "Timeout"]

E = TypeVar("E", bound=AioEngine)


class AioServiceBase:
    """Gives mixins ``await self._call(...)`` and their engines;
    :class:`~etcd3.aio.Etcd3Client` sets the transport and the engine registry."""

    _transport: AioTransport
    _engines: AioEngines

    async def _call(self, method: Method, request: Any, *, timeout: Timeout = UNSET,
                    context: str = "") -> Any:
        return await self._transport.call(method, request, timeout=timeout,
                                          context=context)

    def _engine(self, name: str, create: Callable[[], E]) -> E:
        """The engine called ``name``, made by ``create()`` on first use (again in a
        new event loop).

        :raises ClientClosedError: the client is closed.
        """
        return self._engines.ensure(name, create)

    def _existing_engine(self, name: str) -> Optional[AioEngine]:
        """The engine called ``name`` if one was made in this loop."""
        return self._engines.get(name)
