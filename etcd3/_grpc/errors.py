"""The one place where gRPC failures become :mod:`etcd3.exceptions`.

etcd reports errors as a gRPC status code plus a fixed message ("etcdserver: ...");
the code alone is ambiguous (INVALID_ARGUMENT covers a too-large request and a wrong
password), so the message decides first and the code is the fallback.
"""

from __future__ import annotations

import re
from typing import Optional, Type

import grpc

from .. import exceptions as exc
from .._core.retry_rules import Failure

#: etcd error text (without the "etcdserver: " prefix) -> exception class.
_BY_MESSAGE: dict[str, Type[exc.Etcd3Exception]] = {
    "mvcc: required revision has been compacted": exc.RevisionCompactedError,
    "mvcc: required revision is a future revision": exc.FutureRevisionError,
    "mvcc: database space exceeded": exc.NoSpaceError,
    "request is too large": exc.RequestTooLargeError,
    "too many operations in txn request": exc.TooManyOpsError,
    "duplicate key given in txn request": exc.DuplicateKeyError,
    "requested lease not found": exc.LeaseNotFoundError,
    "no leader": exc.NoLeaderError,
    "leader changed": exc.ConnectionFailedError,
    "server stopped": exc.ConnectionFailedError,
    "unhealthy cluster": exc.ConnectionFailedError,
    "request timed out": exc.ConnectionTimeoutError,
    "request timed out, possibly due to previous leader failure":
        exc.ConnectionTimeoutError,
    "request timed out, possibly due to connection lost": exc.ConnectionTimeoutError,
    "request timed out, waiting for the applied index took too long":
        exc.ConnectionTimeoutError,
    "too many requests": exc.TooManyRequestsError,
    "authentication failed, invalid user ID or password": exc.AuthenticationFailedError,
    "invalid auth token": exc.InvalidAuthTokenError,
    "revision of auth store is old": exc.InvalidAuthTokenError,
    "user name is empty": exc.InvalidAuthTokenError,
    "permission denied": exc.PermissionDeniedError,
    "authentication is not enabled": exc.AuthNotEnabledError,
    "user name not found": exc.EntityNotFoundError,
    "role name not found": exc.EntityNotFoundError,
    "member not found": exc.EntityNotFoundError,
    "role is not granted to the user": exc.EntityNotFoundError,
    "permission is not granted to the role": exc.EntityNotFoundError,
    "user name already exists": exc.AlreadyExistsError,
    "role name already exists": exc.AlreadyExistsError,
    "member ID already exist": exc.AlreadyExistsError,
    "Peer URLs already exists": exc.AlreadyExistsError,
    "lease already exists": exc.AlreadyExistsError,
}

_BY_CODE: dict[grpc.StatusCode, Type[exc.Etcd3Exception]] = {
    grpc.StatusCode.UNAVAILABLE: exc.ConnectionFailedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: exc.ConnectionTimeoutError,
    grpc.StatusCode.FAILED_PRECONDITION: exc.PreconditionFailedError,
    grpc.StatusCode.INTERNAL: exc.InternalServerError,
    grpc.StatusCode.INVALID_ARGUMENT: exc.InvalidRequestError,
    grpc.StatusCode.PERMISSION_DENIED: exc.PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: exc.InvalidAuthTokenError,
    grpc.StatusCode.NOT_FOUND: exc.EntityNotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: exc.AlreadyExistsError,
    grpc.StatusCode.OUT_OF_RANGE: exc.InvalidRequestError,
}

#: Details gRPC gives when a call failed before any byte reached a server.
_NOT_SENT_PATTERNS = re.compile(
    r"failed to connect to all addresses|Connection refused|connections to all backends failing"
    r"|DNS resolution failed|Name resolution failure|No route to host|empty address list"
    r"|Cannot invoke RPC on closed channel",
    re.IGNORECASE,
)


#: What etcd sends, as gRPC UNKNOWN, when a request's context ended inside the server
#: (its deadline passed, or the call was cancelled): a deadline like DEADLINE_EXCEEDED.
_CONTEXT_ENDED = frozenset(("context deadline exceeded", "context canceled"))


def status_of(error: BaseException) -> tuple[Optional[grpc.StatusCode], str]:
    """The (status code, details) of a gRPC error, or (None, str(error)).

    etcd's UNKNOWN "context deadline exceeded" / "context canceled" (a deadline that
    expired inside the server) is reported as DEADLINE_EXCEEDED, so every deadline is
    typed, retried and worded alike.
    """
    # grpc.aio's AioRpcError has code()/details() but is not a grpc.Call.
    if isinstance(error, grpc.Call) or (isinstance(error, grpc.RpcError)
                                        and callable(getattr(error, "details", None))):
        try:
            code, details = error.code(), error.details() or ""
        except Exception:  # a half-built Call object
            return None, str(error)
        if code is grpc.StatusCode.UNKNOWN and details.strip() in _CONTEXT_ENDED:
            code = grpc.StatusCode.DEADLINE_EXCEEDED
        return code, details
    return None, str(error)


#: Prefixes of etcd's error texts: "etcdserver: " on the gRPC API; "auth: " where
#: etcd 3.4 passes its auth store's error through as is (a snapshot stream opened
#: with an expired token gets "auth: invalid auth token").
_MESSAGE_PREFIXES = ("etcdserver: ", "auth: ")


def etcd_message(details: str) -> str:
    """etcd's error text without its "etcdserver: " (or "auth: ") prefix."""
    text = details.strip()
    for prefix in _MESSAGE_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def is_not_sent(error: BaseException) -> bool:
    """True when the call provably never reached a server (safe to retry any RPC)."""
    code, details = status_of(error)
    if code is None:
        return False
    return (code is grpc.StatusCode.UNAVAILABLE
            and _NOT_SENT_PATTERNS.search(details) is not None)


_TLS_PATTERNS = re.compile(r"tls handshake|SSL_ERROR|TSI_|certificate|Handshake read failed",
                           re.IGNORECASE)
#: A TLS handshake the server answered as plain text (or not at all).
_PLAINTEXT_PEER = re.compile(r"Handshake read failed|WRONG_VERSION_NUMBER|Socket closed"
                             r"|record layer failure|packet length too long", re.IGNORECASE)


def tls_server_hint(details: str, secure: bool) -> str:
    """A hint for a plain-text connection that the server closed at once (as a TLS
    server does), else ''."""
    if secure or "Socket closed" not in details:
        return ""
    return " (if the server uses TLS, give ca_cert or an https:// endpoint)"


def is_tls_error(error: BaseException) -> bool:
    """True when the connection failed in its TLS handshake (a configuration error:
    wrong CA, missing or rejected client certificate, TLS to a plain-text port)."""
    code, details = status_of(error)
    return code is grpc.StatusCode.UNAVAILABLE and bool(_TLS_PATTERNS.search(details))


def connection_cause(details: str) -> str:
    """gRPC's description of a failed connection, reduced to its root cause.

    gRPC nests its reasons ("failed to connect to all addresses; last error: UNKNOWN:
    ipv4:127.0.0.1:2379: Failed to connect to remote host: Connection refused"); the
    last one is what a reader can act on.
    """
    _, _, cause = details.rpartition("last error: ")
    cause = re.sub(r"^[A-Z_]+: ", "", cause.strip())
    cause = re.sub(r"^(ipv4:|ipv6:|unix:)\S+?: ", "", cause)
    cause = re.sub(r": OK$", "", cause)
    return cause or details


def tls_error(error: BaseException, endpoint: object) -> exc.ConnectionFailedError:
    """The error of a TLS handshake with ``endpoint`` that failed (see is_tls_error)."""
    _, details = status_of(error)
    cause = connection_cause(details)
    if _PLAINTEXT_PEER.search(details):
        text = (f"TLS handshake failed — is the server plain-text? use http:// or drop "
                f"ca_cert (endpoint {endpoint}: {cause})")
    else:
        text = (f"TLS handshake with {endpoint} failed: check ca_cert (it must have "
                "signed the server's certificate) and, if the server requires client "
                f"certificates, cert_key/cert_cert ({cause})")
    result = exc.ConnectionFailedError(text)
    result.__cause__ = error
    result.grpc_code = status_of(error)[0]
    return result


NO_CREDENTIALS_HINT = ("authentication is enabled on this etcd cluster and this client "
                       "has no credentials: pass user= and password= to etcd3.client()")
#: What etcd says to a request without a user when auth is on -> the hint to give.
#: etcd 3.5 refuses such a watch with "permission denied", which is also what a user
#: named by its TLS client certificate gets for keys it may not read: say "if".
NO_CREDENTIALS_HINTS = {
    "user name is empty": NO_CREDENTIALS_HINT,
    "permission denied": ("this client has no user: if authentication is enabled on "
                          "this etcd cluster, pass user= and password= to etcd3.client()"),
}


#: etcd messages that mean "this auth token is no good": re-authenticate and retry.
AUTH_TOKEN_MESSAGES = frozenset(("invalid auth token", "revision of auth store is old",
                                 "user name is empty"))


def is_auth_token_error(error: BaseException) -> bool:
    """True when the server rejected our auth token (re-authenticate and retry)."""
    code, details = status_of(error)
    return etcd_message(details) in AUTH_TOKEN_MESSAGES


def classify(error: BaseException, *, secure: bool = False) -> Failure:
    """The plain :class:`~etcd3._core.retry_rules.Failure` the retry rules decide on,
    for a failed attempt's gRPC error (``secure``: the endpoint uses TLS)."""
    code, details = status_of(error)
    if code is None:
        return Failure(None, details, auth_token=etcd_message(details) in AUTH_TOKEN_MESSAGES)
    unavailable = code is grpc.StatusCode.UNAVAILABLE
    return Failure(
        code.name, details,
        not_sent=unavailable and _NOT_SENT_PATTERNS.search(details) is not None,
        auth_token=etcd_message(details) in AUTH_TOKEN_MESSAGES,
        tls=secure and unavailable and _TLS_PATTERNS.search(details) is not None)


def classify_token_fetch(error: exc.Etcd3Exception) -> Failure:
    """The :class:`~etcd3._core.retry_rules.Failure` of an attempt whose auth token
    could not be fetched: UNAVAILABLE or DEADLINE_EXCEEDED when the endpoint could
    not be reached in time, no code for any other refusal."""
    code = None
    if isinstance(error, exc.ConnectionFailedError):
        code = "UNAVAILABLE"
    elif isinstance(error, exc.ConnectionTimeoutError):
        code = "DEADLINE_EXCEEDED"
    return Failure(code, str(error), not_sent=True, token_fetch=True)


#: What etcd's gRPC proxy answers to a call it does not forward (MemberPromote).
_PROXY_NOT_IMPLEMENTED = "not implemented"


def exception_class_for(message: str) -> Type[exc.Etcd3Exception]:
    """The exception class for etcd's error text (without "etcdserver: ")."""
    return _BY_MESSAGE.get(message, exc.Etcd3Exception)


def is_unavailable(error: BaseException) -> bool:
    """True for errors that say "this endpoint can't serve now" (try another one)."""
    code, details = status_of(error)
    return code is grpc.StatusCode.UNAVAILABLE


#: Whether a failure says something about the endpoint (eject it for a while).
is_endpoint_failure = is_unavailable


def translate(
    error: BaseException,
    *,
    context: str = "",
    endpoint: Optional[str] = None,
) -> exc.Etcd3Exception:
    """Turn a gRPC error into the matching :class:`~etcd3.exceptions.Etcd3Exception`.

    The returned exception has ``__cause__`` set to ``error``; ``context`` (e.g. the
    key involved) and ``endpoint`` are added to the message.
    """
    if isinstance(error, exc.Etcd3Exception):
        return error
    code, details = status_of(error)
    message = etcd_message(details)
    cls = _BY_MESSAGE.get(message)
    if cls is None and code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        cls = (exc.RequestTooLargeError if "larger than max" in details.lower()
               else exc.TooManyRequestsError)
    if cls is None and code is not None:
        cls = _BY_CODE.get(code, exc.Etcd3Exception)
    if cls is None:
        cls = exc.Etcd3Exception
    text = details or (code.name if code is not None else str(error))
    if message == _PROXY_NOT_IMPLEMENTED and code is grpc.StatusCode.UNKNOWN:
        cls = exc.UnsupportedByProxyError
        text = ("not implemented: the endpoint is etcd's gRPC proxy, which does not "
                "forward this call; send it to a member directly")
    if cls is exc.RequestTooLargeError and "larger than max" in details.lower():
        text = "request is too large for the server: " + text
    if context:
        text = f"{text} [{context}]"
    if endpoint:
        text = f"{text} (endpoint {endpoint})"
    result: exc.Etcd3Exception
    if cls is exc.RevisionCompactedError:
        result = exc.RevisionCompactedError(None, message=text)
    else:
        result = cls(text)
    result.__cause__ = error
    result.grpc_code = code
    return result
