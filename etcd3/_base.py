"""What every service mixin of the client can rely on."""

from __future__ import annotations

import threading
from typing import Any, Callable, TypeVar

from . import exceptions
from ._transport import _UNSET, Method, Transport

UNSET: Any = _UNSET

T = TypeVar("T")

_ENGINE_LOCK = threading.Lock()


class ServiceBase:
    """Gives mixins ``self._call``; :class:`~etcd3.client.Etcd3Client` sets the transport."""

    _transport: Transport

    def _call(self, method: Method, request: Any, *, timeout: Any = UNSET,
              context: str = "") -> Any:
        return self._transport.call(method, request, timeout=timeout, context=context)

    def _engine(self, attribute: str, create: Callable[[], T]) -> T:
        """The engine kept in ``attribute``, made by ``create()`` on first use (once,
        however many threads ask at the same time).

        :raises ClientClosedError: the client is closed.
        """
        engine: T = getattr(self, attribute)
        if engine is None:
            with _ENGINE_LOCK:
                engine = getattr(self, attribute)
                if engine is None:
                    if self._transport.closed:
                        raise exceptions.ClientClosedError(
                            "this etcd3 client has been closed")
                    engine = create()
                    setattr(self, attribute, engine)
        return engine

    def _close_service(self) -> None:
        """Release what this mixin started (threads, streams); called by ``close()``.

        Mixins that start anything override this and call ``super()._close_service()``.
        """
