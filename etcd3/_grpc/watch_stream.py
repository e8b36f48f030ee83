"""How both watch drivers react to their stream: it could not be opened, it broke,
it came back, or no member has answered for a while (no I/O, no lock).

:class:`WatchStreamRules` is a base of the threaded
(:mod:`etcd3._sync.watch_engine`) and asyncio (:mod:`etcd3.aio._watch_engine`)
engines: each gives it its core, its outage record, its transport and ``_apply``,
and calls these methods where its stream does something (the threaded engine with
its lock held). What needs I/O (refreshing a token, reporting an endpoint's
failure to the pool) stays with the driver.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from .. import exceptions
from .._core.watch_actions import Actions
from .._core.watch_core import WatchCore
from .._core.watch_liveness import Outage
from . import errors as _errors
from . import watch_errors as _watch_errors

log = logging.getLogger("etcd3")

#: Reopening a broken stream: the first pause, its growth, its cap (seconds).
BACKOFF_START = 0.01
BACKOFF_FACTOR = 1.5
BACKOFF_CAP = 1.0
#: How often the watchdog looks at the stream (seconds).
WATCHDOG_TICK = 1.0
#: A stream silent this long gets a progress request; unanswered this long, its
#: member counts as gone (see :class:`~etcd3._core.watch_liveness.SilenceProbe`).
SILENCE_BEFORE_PROBE = 3.0
PROBE_TIMEOUT = 3.0
#: Seconds without a working stream before a WARNING, and between later ones.
UNREACHABLE_WARN_AFTER = 10.0
UNREACHABLE_WARN_EVERY = 60.0


def next_backoff(backoff: float) -> float:
    """The pause before the next attempt to open the stream, after ``backoff``."""
    return min(BACKOFF_CAP, backoff * BACKOFF_FACTOR or BACKOFF_START)


def needs_new_token(error: BaseException) -> bool:
    """True when a broken stream should get a new auth token before it reopens (else
    the driver reports the failure to the pool)."""
    return _errors.is_auth_token_error(error)


class WatchStreamRules:
    """The stream reactions shared by the watch drivers (see the module docstring)."""

    _core: WatchCore
    _outage: Outage
    _transport: Any
    endpoint: Any

    @property
    def down_since(self) -> Optional[float]:
        """When (``time.monotonic()``) the stream lost its last answering member;
        None while one answers (or nothing is watched)."""
        return self._outage.since

    def _progress_request(self) -> Actions:
        """The actions of a user's progress request.

        :raises UnsupportedByProxyError: the stream goes through etcd's gRPC proxy,
            which ignores progress requests.
        """
        if self._core.ids_assigned_by_server:
            raise exceptions.UnsupportedByProxyError(
                f"the watch stream goes through etcd's gRPC proxy at {self.endpoint}, "
                "which does not forward progress requests; watch with "
                "progress_notify=True for periodic progress notifications instead")
        return self._core.request_progress()

    def _apply(self, actions: Actions) -> None:
        raise NotImplementedError

    def _outage_words(self) -> str:
        """'endpoints tried: a, b; last error: ...' for the current outage."""
        secure = any(ep.secure for ep in self._transport.pool.endpoints)
        return _watch_errors.outage_words(self._outage, secure)

    def _stream_reached(self, endpoint: str, now: float) -> None:
        """The stream to ``endpoint`` answered: the outage (if any) is over."""
        since = self._outage.end()
        if since is not None:
            log.info("etcd3: the watch stream reached %s after %.1f s without a member; "
                     "watches resumed", endpoint, now - since)

    def _setup_failed(self, error: exceptions.Etcd3Exception) -> None:
        """The stream could not be opened: keep trying when no member could be
        reached, else (a wrong password, say) end every watch with ``error``."""
        if isinstance(error, (exceptions.ConnectionFailedError,
                              exceptions.ConnectionTimeoutError)):
            # (a WARNING follows when this goes on: see _check_unreachable)
            log.debug("etcd3: cannot open the watch stream (%s); retrying", error)
            self._outage.error = str(error)
            return
        confirmed = self._core.any_confirmed()
        self._apply(self._core.fail_all(error))
        # (watches not confirmed yet raise it from subscribe: no need to log it too)
        log.log(logging.WARNING if confirmed else logging.DEBUG,
                "etcd3: cannot open the watch stream (%s); ending every watch", error)

    def _stream_failed(self, state: Any, error: BaseException, was_healthy: bool) -> None:
        """The stream to ``state`` broke with ``error`` (``was_healthy``: it had
        delivered something): record why; a TLS handshake that never worked ends the
        watches still waiting for their confirmation."""
        code, details = _errors.status_of(error)
        self._outage.error = _errors.connection_cause(details)
        tls_error = _watch_errors.broken_stream_tls_error(error, was_healthy,
                                                          state.endpoint)
        if tls_error is not None:
            # A configuration error, as for unary calls: a watch waiting for its
            # confirmation gets it at once (confirmed ones keep resuming).
            self._outage.error = tls_error.message
            self._apply(self._core.fail_unconfirmed(tls_error))
        log.log(logging.INFO if was_healthy else logging.DEBUG,
                "etcd3: watch stream to %s broke (%s: %s); resuming", state.name,
                code, details)

    def _check_unreachable(self, now: float, warn_after: float, warn_every: float) -> None:
        """WARN while no member answers the stream (after ``warn_after`` seconds, then
        every ``warn_every``); end the subscribers past their ``unreachable_timeout``."""
        since = self._outage.since
        if since is None or not self._core.watches:
            return
        down_for = now - since
        if self._outage.should_warn(now, warn_after, warn_every):
            log.warning("etcd3: no etcd member has answered the watch stream for %.0f s "
                        "(%s); still trying, and watches resume where they stopped "
                        "when one answers", down_for, self._outage_words())
        expired = self._core.unreachable_expired(now, since)
        if not expired:
            return
        words = self._outage_words()
        # One line per tick however many end, logged before any of them hears of it.
        log.warning("etcd3: ending %d watch(es) at their unreachable_timeout: no etcd "
                    "member answered for %.0f s (%s)", len(expired), down_for, words)
        for sub in expired:
            assert sub.unreachable_timeout is not None
            error = _watch_errors.unreachable_error(
                sub.watch, now - max(since, sub.since), sub.unreachable_timeout, words)
            self._apply(self._core.end(sub, error))
