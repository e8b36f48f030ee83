"""etcd's watch cancel reasons as exceptions (the watch core's ``WatchErrors``).

A cancel reason reads like ``rpc error: code = PermissionDenied desc = etcdserver:
permission denied``; the exception raised for it carries etcd's words and the gRPC
status they name.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Optional

import grpc

from .. import exceptions
from .._core.watch_liveness import Outage
from .._core.watch_state import ServerWatch, Subscriber
from . import errors as _errors

log = logging.getLogger("etcd3")


def reason_message(reason: str) -> str:
    """etcd's error text in a cancel reason ("rpc error: code = X desc = etcdserver: ...")."""
    _, _, desc = reason.rpartition("desc = ")
    return _errors.etcd_message(desc)


def reason_code(reason: str) -> Optional[grpc.StatusCode]:
    """The gRPC status in a cancel reason ("rpc error: code = PermissionDenied ...")."""
    match = re.search(r"code = (\w+)", reason)
    if match is None:
        return None
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", match.group(1)).upper()
    return getattr(grpc.StatusCode, "CANCELLED" if name == "CANCELED" else name, None)


def _with_code(error: exceptions.Etcd3Exception, reason: str) -> exceptions.Etcd3Exception:
    error.grpc_code = reason_code(reason)
    return error


def refusal_error(key: bytes, reason: str, anonymous: bool) -> exceptions.Etcd3Exception:
    """The error of a create etcd refused (``created`` and ``canceled`` at once)."""
    message = reason_message(reason) or "no reason given"
    cls = _errors.exception_class_for(message)
    text = f"etcd refused the watch on {key!r}: {message}"
    if anonymous and message in _errors.NO_CREDENTIALS_HINTS:
        text += f" ({_errors.NO_CREDENTIALS_HINTS[message]})"
    if cls is exceptions.RevisionCompactedError:
        return exceptions.RevisionCompactedError(None, message=text)
    return _with_code(cls(text), reason)


def cancel_error(reason: str) -> exceptions.Etcd3Exception:
    """The error of a confirmed watch etcd cancelled with ``reason``."""
    message = reason_message(reason)
    cls = _errors.exception_class_for(message)
    if cls is exceptions.RevisionCompactedError:
        return exceptions.RevisionCompactedError(None, message=reason)
    return _with_code(cls(f"the watch was cancelled by etcd: {reason or 'no reason given'}"),
                      reason)


class GrpcWatchErrors:
    """The exceptions of the watches of the client whose transport is ``transport``
    (one with a ``token_provider`` logs in: its token may go stale, and a refusal
    needs no hint about credentials)."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    @property
    def authenticated(self) -> bool:
        return self._transport.token_provider is not None

    def refused(self, key: bytes, reason: str) -> BaseException:
        return refusal_error(key, reason, not self.authenticated)

    def cancelled(self, reason: str) -> BaseException:
        return cancel_error(reason)

    def compacted(self, revision: int) -> BaseException:
        return exceptions.RevisionCompactedError(revision)

    def overflow(self, sub: Subscriber) -> BaseException:
        log.warning("etcd3: watch %d fell %d responses behind; cancelled it",
                    sub.id, sub.max_queue)
        what = "callback" if sub.callback is not None else "iterator"
        return exceptions.WatchOverflowError(
            f"the watch {what} fell more than {sub.max_queue} responses behind and "
            "was cancelled; keep up or raise max_queue, and watch again from the "
            "last revision seen")

    def token_may_be_stale(self, reason: str) -> bool:
        if not self.authenticated:
            return False
        message = reason_message(reason)
        return message == "permission denied" or message in _errors.AUTH_TOKEN_MESSAGES


# -- words about a watch stream no member answers (shared by both drivers) ------------


def outage_words(outage: Outage, secure: bool) -> str:
    """'endpoints tried: a, b; last error: ...' for ``outage``; ``secure``: the
    client connects with TLS (no hint about a TLS server then)."""
    tried = ", ".join(outage.tried) or "none yet"
    words = f"endpoints tried: {tried}"
    if outage.error:
        words += f"; last error: {outage.error}" + _errors.tls_server_hint(outage.error,
                                                                             secure)
    return words


def unconfirmed_error(key: bytes, timeout: Optional[float], down: bool,
                      words: str) -> exceptions.Etcd3Exception:
    """The error of a watch etcd did not confirm within ``timeout``; ``down``: no
    member answers the stream (``words``: see :func:`outage_words`)."""
    if down:
        return exceptions.ConnectionFailedError(
            f"no etcd member answered the watch stream within {timeout} s, so the "
            f"watch on {key!r} was not created ({words})")
    return exceptions.WatchTimedOut(
        f"etcd did not confirm the watch on {key!r} within {timeout} s")


def unreachable_error(sw: Optional[ServerWatch], down_for: float, limit: float,
                      words: str) -> exceptions.ConnectionFailedError:
    """The error ending a subscriber of ``sw`` after ``down_for`` seconds without a
    member (its ``unreachable_timeout`` is ``limit``), saying how to continue."""
    text = f"no etcd member could be reached for {down_for:.1f} s ({words}), so the watch"
    if sw is not None:
        text += f" on {sw.spec.key!r}"
    text += f" ended (unreachable_timeout={limit:g} s)"
    if sw is not None and sw.confirmed and sw.next_rev:
        text += (f"; watch again with start_revision={sw.next_rev} to continue "
                 "without missing an event")
    return exceptions.ConnectionFailedError(text)


def broken_stream_tls_error(error: BaseException, was_healthy: bool,
                            endpoint: Any) -> Optional[exceptions.ConnectionFailedError]:
    """The configuration error to give watches not confirmed yet when a stream to
    ``endpoint`` broke in its TLS handshake before it ever worked, else None."""
    if was_healthy or not endpoint.secure or not _errors.is_tls_error(error):
        return None
    return _errors.tls_error(error, endpoint)
