"""What every service mixin of the client can rely on."""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

from .._core.deadline import UNSET, Timeout
from .._grpc.rpc import Method
from .lifecycle import Engine, Engines
from .transport import Transport

__all__ = ["UNSET", "ServiceBase", "Timeout"]

E = TypeVar("E", bound=Engine)


class ServiceBase:
    """Gives mixins ``self._call`` and their engines; :class:`~etcd3.client.Etcd3Client`
    sets the transport and the engine registry."""

    _transport: Transport
    _engines: Engines

    def _call(self, method: Method, request: Any, *, timeout: Timeout = UNSET,
              context: str = "") -> Any:
        return self._transport.call(method, request, timeout=timeout, context=context)

    def _engine(self, name: str, create: Callable[[], E]) -> E:
        """The engine called ``name``, made by ``create()`` on first use (again in a
        forked child).

        :raises ClientClosedError: the client is closed.
        """
        return self._engines.ensure(name, create)

    def _existing_engine(self, name: str) -> Optional[Engine]:
        """The engine called ``name`` if one was made in this process."""
        return self._engines.get(name)
