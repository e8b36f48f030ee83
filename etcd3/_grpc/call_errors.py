"""The error that ends a unary call, worded from its last failure and its history.

One sentence a reader can act on: what failed, on which endpoint, gRPC's root cause,
whether a write may have been applied, then the attempts and the endpoints tried.
The same facts are attributes of the error (``attempts``, ``endpoints_tried``).
Shared by every gRPC driver: it takes plain values, not a driver's call state.
"""

from __future__ import annotations

import grpc

from .. import exceptions
from .._core.retry_rules import History
from . import errors as _errors
from .rpc import Method


def stamped(error: exceptions.Etcd3Exception, history: History
            ) -> exceptions.Etcd3Exception:
    """``error``, carrying how far its call went (its ``attempts`` and
    ``endpoints_tried``, see :class:`~etcd3.exceptions.Etcd3Exception`)."""
    error.attempts = history.attempts
    error.endpoints_tried = history.endpoints_tried
    return error


def final_error(error: BaseException, history: History, *, method: Method, context: str,
                endpoint: str, secure: bool, endpoints: int, credentials: bool
                ) -> exceptions.Etcd3Exception:
    """The translated error that ends a call of ``method`` after ``history``.

    :param error: the last attempt's failure: a gRPC error, or an Etcd3Exception
        the driver raised itself (a connection or timeout error is worded as gRPC's
        are; any other is returned as it is, with the history).
    :param context: words added to the message (e.g. the key).
    :param endpoint: the name of the last attempt's endpoint; ``secure``: it uses TLS.
    :param endpoints: how many endpoints the client has.
    :param credentials: whether the client has a user and password.
    """
    translated = _errors.translate(error, context=context, endpoint=endpoint)
    code, details = _errors.status_of(error)
    not_sent = _errors.is_not_sent(error)
    detail = None
    cls: type = type(translated)
    what = method.path.rpartition("/")[2] + (f" [{context}]" if context else "")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED and history.unreachable \
            and history.unreachable >= history.attempts - 1 \
            and "Stream removed" not in details:
        # Every earlier attempt failed to connect and the deadline cut the last one
        # short before it had a stream: the servers are down, not slow.
        cls = (exceptions.NoServerAvailableError
               if len(history.endpoints_tried) >= endpoints
               else exceptions.ConnectionFailedError)
        detail = (f"no etcd endpoint could be reached for {what} within the deadline: "
                  f"{_errors.connection_cause(history.unreachable_details)}")
    elif code is grpc.StatusCode.DEADLINE_EXCEEDED:
        cls = exceptions.ConnectionTimeoutError
        detail = f"{what} did not complete within the deadline on {endpoint}"
    elif isinstance(translated, (exceptions.ConnectionFailedError,
                                 exceptions.ConnectionTimeoutError)):
        cause = _errors.connection_cause(details) if code is not None else str(error)
        if not_sent and len(history.endpoints_tried) >= endpoints:
            cls = exceptions.NoServerAvailableError
            detail = f"no etcd endpoint could be reached for {what}: {cause}"
        else:
            detail = f"{what} failed on {endpoint}: {cause}"
    elif (not credentials
          and _errors.etcd_message(details) in _errors.NO_CREDENTIALS_HINTS
          and isinstance(translated, exceptions.AuthError)):
        hint = _errors.NO_CREDENTIALS_HINTS[_errors.etcd_message(details)]
        hinted = type(translated)(f"{hint} (etcd said: {details}) [{context or what}]")
        hinted.__cause__ = error
        hinted.grpc_code = code
        return stamped(hinted, history)
    if detail is None:
        return stamped(translated, history)
    if history.unreachable:
        detail += _errors.tls_server_hint(detail, secure)
    if not method.repeatable and not not_sent:
        detail += ("; the request was sent and may or may not have been applied "
                   "(writes are not retried once sent: check before repeating it)")
    detail += (f"; {history.attempts} attempt(s), endpoints tried: "
               f"{', '.join(history.endpoints_tried)}")
    result: exceptions.Etcd3Exception = cls(detail)
    result.__cause__ = error
    result.grpc_code = code
    return stamped(result, history)
