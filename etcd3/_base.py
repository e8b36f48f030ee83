"""What every service mixin of the client can rely on."""

from __future__ import annotations

from typing import Any

from ._transport import _UNSET, Method, Transport

UNSET: Any = _UNSET


class ServiceBase:
    """Gives mixins ``self._call``; :class:`~etcd3.client.Etcd3Client` sets the transport."""

    _transport: Transport

    def _call(self, method: Method, request: Any, *, timeout: Any = UNSET,
              context: str = "") -> Any:
        return self._transport.call(method, request, timeout=timeout, context=context)

    def _close_service(self) -> None:
        """Release what this mixin started (threads, streams); called by ``close()``.

        Mixins that start anything override this and call ``super()._close_service()``.
        """
