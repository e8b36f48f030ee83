"""What a translated error's gRPC cause says, for rules every driver applies after a
call failed: etcd's own message, whether the request may have been applied, and
whether a stream's auth token was rejected."""

from __future__ import annotations

from .. import exceptions as exc
from . import errors as _errors

#: Errors after which etcd certainly did not apply the request.
REJECTED = (exc.InvalidRequestError, exc.PreconditionFailedError, exc.AuthError,
            exc.NoSpaceError, exc.TooManyRequestsError, exc.LeaseNotFoundError,
            exc.NoLeaderError, exc.RevisionCompactedError)


def cause_message(error: BaseException) -> str:
    """etcd's message (without "etcdserver: ") of ``error``'s gRPC cause, or of
    ``error`` itself when it has none."""
    cause = error.__cause__ if error.__cause__ is not None else error
    return _errors.etcd_message(_errors.status_of(cause)[1])


def may_have_applied(error: BaseException) -> bool:
    """False when etcd certainly did not apply the failed request."""
    if isinstance(error, REJECTED):
        return False
    cause = error.__cause__
    return not (cause is not None and _errors.is_not_sent(cause))


def token_rejected(error: BaseException) -> bool:
    """True when the server refused ``error``'s call or stream for its auth token
    (re-authenticate and open it again), including the bare auth-store text etcd
    3.4 gives a snapshot stream (see :func:`etcd3._grpc.errors.etcd_message`)."""
    return _errors.is_auth_token_error(error)
