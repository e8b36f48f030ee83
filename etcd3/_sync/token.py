"""Auth tokens: fetched lazily per endpoint, refreshed when the server rejects them."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable, Dict, Optional

from .. import exceptions
from . import forksafe as _forksafe

if TYPE_CHECKING:
    from .._core.stats import Stats


class TokenProvider:
    """Holds the credentials and one token per endpoint.

    ``authenticate(endpoint_name)`` is supplied by the transport: it performs the
    Authenticate RPC against that endpoint and returns the token. Tokens are kept per
    endpoint because simple tokens may be valid only on the member that issued them.
    Concurrent refreshes of the same endpoint's token collapse into one RPC.
    """

    #: Told of each token replaced after a rejection (see :mod:`etcd3.observability`).
    recorder: Optional[Stats] = None

    def __init__(self, user: str, password: str) -> None:
        if not user or not password:
            raise ValueError("both user and password are required for authentication")
        self.user = user
        self._password = password
        self._tokens: Dict[str, str] = {}
        self._locks: Dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        _forksafe.register(self)

    def _after_fork_in_child(self) -> None:
        self._locks = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenProvider(user={self.user!r}, password=<hidden>)"

    @property
    def password(self) -> str:
        return self._password

    def set_password(self, password: str) -> None:
        """Use ``password`` for every later authentication (after a password change)."""
        if not password:
            raise ValueError("a password is required")
        self._password = password

    def cached(self, endpoint: str) -> Optional[str]:
        """The current token for ``endpoint``, without any I/O."""
        return self._tokens.get(endpoint)

    def get(self, endpoint: str, authenticate: Callable[[str, str], str]) -> str:
        """The token for ``endpoint``; authenticates first when there is none.

        :raises AuthenticationFailedError: the credentials are wrong.
        """
        token = self._tokens.get(endpoint)
        if token is not None:
            return token
        return self.refresh(endpoint, None, authenticate)

    def refresh(self, endpoint: str, rejected: Optional[str],
                authenticate: Callable[[str, str], str]) -> str:
        """A fresh token for ``endpoint``, replacing ``rejected``.

        If another thread already replaced ``rejected``, its token is returned and no
        RPC is made. When the server has authentication disabled the token is ``""``:
        calls then go without one (as etcd's Go client does), until the server asks
        for one again.
        """
        with self._guard:
            lock = self._locks.setdefault(endpoint, threading.Lock())
        with lock:
            current = self._tokens.get(endpoint)
            if current is not None and current != (rejected or ""):
                return current
            try:
                token = authenticate(self.user, self._password)
            except exceptions.AuthNotEnabledError:
                token = ""
            except exceptions.Etcd3Exception:
                self._tokens.pop(endpoint, None)
                raise
            self._tokens[endpoint] = token
            if rejected is not None and self.recorder is not None:
                self.recorder.token_refreshed(endpoint)
            return token

    def clear(self) -> None:
        """Forget every token (e.g. after auth was disabled or the user changed)."""
        self._tokens.clear()
