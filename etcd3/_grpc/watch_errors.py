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
from .._core.watch_state import Subscriber
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
