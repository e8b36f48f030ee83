"""Auth tokens for the asyncio driver: :class:`~etcd3._sync.token.TokenProvider`'s
rules (one token per endpoint, concurrent refreshes of one endpoint's token collapse
into one Authenticate call), with the waiting done by the event loop."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Dict, Optional

from .. import exceptions
from .._sync.token import TokenProvider

Authenticate = Callable[[str, str], Awaitable[str]]


class AioTokenProvider(TokenProvider):
    """A :class:`TokenProvider` whose fetches are awaited (by one event loop)."""

    def __init__(self, user: str, password: str) -> None:
        super().__init__(user, password)
        self._async_locks: Dict[str, asyncio.Lock] = {}

    async def aget(self, endpoint: str, authenticate: Authenticate) -> str:
        """The token for ``endpoint``; authenticates first when there is none.

        :raises AuthenticationFailedError: the credentials are wrong.
        """
        token = self._tokens.get(endpoint)
        if token is not None:
            return token
        return await self.arefresh(endpoint, None, authenticate)

    async def arefresh(self, endpoint: str, rejected: Optional[str],
                       authenticate: Authenticate) -> str:
        """A fresh token for ``endpoint``, replacing ``rejected`` (see
        :meth:`TokenProvider.refresh`)."""
        lock = self._async_locks.get(endpoint)
        if lock is None:
            lock = self._async_locks[endpoint] = asyncio.Lock()
        async with lock:
            current = self._tokens.get(endpoint)
            if current is not None and current != (rejected or ""):
                return current
            try:
                token = await authenticate(self.user, self._password)
            except exceptions.AuthNotEnabledError:
                token = ""
            except exceptions.Etcd3Exception:
                self._tokens.pop(endpoint, None)
                raise
            self._tokens[endpoint] = token
            if rejected is not None and self.recorder is not None:
                self.recorder.token_refreshed(endpoint)
            return token

    def forget_loop(self) -> None:
        """The event loop changed: locks of the old one cannot be awaited here."""
        self._async_locks = {}
