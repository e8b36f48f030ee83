"""The exceptions this client raises.

Everything derives from :class:`Etcd3Exception`. When the failure came from gRPC, the
original ``grpc.RpcError`` is chained as ``__cause__``. Names that python-etcd3 used
(``ConnectionFailedError``, ``PreconditionFailedError``, ``WatchTimedOut``, ...) keep
their meaning, so ``except`` clauses written for it keep working.

python-etcd3 let most server errors (a compacted revision, a missing lease, a denied
permission) escape as raw ``grpc.RpcError``; code written for it catches those. So
:class:`Etcd3Exception` is also a ``grpc.RpcError`` with ``code()`` and ``details()``
(the gRPC status of the failure, when it came from the server), and such ``except
grpc.RpcError`` clauses keep working too.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import grpc


class Etcd3Exception(grpc.RpcError):  # type: ignore[misc]  # grpc has no stubs
    """Base class of every error raised by this client.

    An error that ended a unary call says how far the call went: :attr:`attempts`
    (tries made, a repeat after an auth token refresh not counted) and
    :attr:`endpoints_tried` (the endpoints they went to, in order). Errors raised
    before any call was made, or by a stream, keep the defaults 0 and ().
    """

    #: Attempts the call made before it gave up (0: not a unary call's error).
    attempts: int = 0
    #: The endpoints those attempts went to, in order, each once.
    endpoints_tried: Tuple[str, ...] = ()

    def __init__(self, message: str = "", *args: Any) -> None:
        if not message:
            message = (type(self).__doc__ or type(self).__name__).strip().splitlines()[0]
        super().__init__(message, *args)
        self.message = message

    def code(self) -> Optional[grpc.StatusCode]:
        """The gRPC status code of the failure (None when it did not come from gRPC)."""
        known = self.__dict__.get("grpc_code")
        if known is not None:
            return known
        cause = self.__cause__
        if isinstance(cause, grpc.Call):
            return cause.code()
        return None

    def details(self) -> str:
        """The failure's description (gRPC's details when it came from gRPC)."""
        cause = self.__cause__
        if isinstance(cause, grpc.Call):
            return cause.details() or self.message
        return self.message


class ClientClosedError(Etcd3Exception):
    """The client was closed; create a new client to make more calls."""


class ConnectionFailedError(Etcd3Exception):
    """No etcd endpoint could be reached (or the connection broke mid-call)."""


class NoServerAvailableError(ConnectionFailedError):
    """Every configured endpoint failed; none is available to try."""


class NoLeaderError(ConnectionFailedError):
    """The cluster has no leader (quorum lost, or an election is under way)."""


class ConnectionTimeoutError(Etcd3Exception):
    """The call did not complete within its deadline."""


class InternalServerError(Etcd3Exception):
    """etcd reported an internal error."""


class InvalidRequestError(Etcd3Exception):
    """etcd rejected the request as invalid."""


#: Appended to every RequestTooLargeError's message.
REQUEST_SIZE_HINT = "etcd's --max-request-bytes limits requests; 1.5 MiB by default"


def _with_size_hint(message: str) -> str:
    if REQUEST_SIZE_HINT in message:
        return message
    return f"{message} ({REQUEST_SIZE_HINT})" if message else ""


class RequestTooLargeError(InvalidRequestError):
    """The request exceeds etcd's --max-request-bytes (1.5 MiB by default)."""

    def __init__(self, message: str = "", *args: Any) -> None:
        super().__init__(_with_size_hint(message), *args)


class TooManyOpsError(InvalidRequestError):
    """A transaction has more operations than etcd's --max-txn-ops (128 by default)."""


class DuplicateKeyError(InvalidRequestError):
    """A transaction writes (puts or deletes) the same key more than once."""


class FutureRevisionError(InvalidRequestError):
    """The requested revision is newer than the store's current revision."""


class PreconditionFailedError(Etcd3Exception):
    """etcd refused the call because a precondition does not hold."""


class EntityNotFoundError(PreconditionFailedError):
    """The named user, role, member or permission does not exist."""


class AlreadyExistsError(PreconditionFailedError):
    """The user, role or member already exists."""


class RevisionCompactedError(Etcd3Exception):
    """The requested revision has been compacted away.

    :attr:`compacted_revision` is the oldest revision still available (when etcd
    says it), so a watcher or reader can restart from there.
    """

    def __init__(self, compacted_revision: Optional[int] = None, message: str = "") -> None:
        self.compacted_revision = compacted_revision
        if not message:
            message = "the requested revision has been compacted"
            if compacted_revision:
                message += f" (compacted up to revision {compacted_revision})"
        super().__init__(message)


class LeaseNotFoundError(Etcd3Exception):
    """The lease does not exist (it expired or was revoked)."""


class LeaseExpiredError(LeaseNotFoundError):
    """A kept-alive lease could not be refreshed before its TTL ran out."""


class AuthError(Etcd3Exception):
    """Base class of authentication and authorisation errors."""


class AuthenticationFailedError(AuthError):
    """The user name or password is wrong."""


class InvalidAuthTokenError(AuthError):
    """The auth token was rejected and could not be refreshed."""


class AuthNotEnabledError(AuthError, PreconditionFailedError):
    """Authentication is not enabled on this cluster."""


class PermissionDeniedError(AuthError):
    """The authenticated user has no permission for this request."""


class NoSpaceError(Etcd3Exception):
    """etcd's database is full (NOSPACE alarm); compact, defragment and disarm."""


class TooManyRequestsError(Etcd3Exception):
    """etcd is overloaded and refused the request; retry later."""


class WatchOverflowError(Etcd3Exception):
    """A watch iterator fell more than its ``max_queue`` responses behind; it was
    cancelled so it cannot grow memory without bound. Read faster, or watch again
    from the last revision seen (``start_revision=``) to catch up."""


class WatchTimedOut(Etcd3Exception):
    """No event arrived within the watch timeout."""


class ForkedWatchError(Etcd3Exception):
    """A watch started before ``os.fork()`` was read in the child: its stream
    belongs to the parent process, so the child gets no events from it. Start the
    watch again in the child (the client itself works there)."""


class UnsupportedByProxyError(Etcd3Exception):
    """etcd's gRPC proxy (``etcd grpc-proxy start``) stands between this client and
    etcd and cannot do what was asked (say, a stream-wide watch progress request).
    Send it to a member directly, or use the alternative the message names."""


class CacheTimedOut(WatchTimedOut):
    """A cache did not load (``wait_ready``) or reach a revision
    (``wait_for_revision``) within the timeout; the message says what it waited for
    and why it may be late (e.g. no etcd member answers)."""


class CacheClosedError(Etcd3Exception):
    """The cache (or the client it belongs to) was closed: it no longer follows etcd."""


class CodecError(Etcd3Exception, ValueError):
    """Bytes received from the server could not be decoded (truncated or malformed)."""


class LockError(Etcd3Exception):
    """A lock operation could not be completed."""


class ElectionError(Etcd3Exception):
    """An election operation could not be completed."""


class NotLeaderError(ElectionError):
    """This candidate is not (or no longer) the leader."""


class BulkWriteError(Etcd3Exception):
    """A bulk write stopped part-way.

    :attr:`committed` items (in input order) were written; :attr:`failed_keys` are
    the keys of the batch that failed (it may or may not have been applied when
    :attr:`uncertain` is True); items after those were not sent. Resume from
    ``items[committed:]`` (after checking ``failed_keys`` when uncertain).
    Batches run several at a time, so some after the failed one may have been
    written too: :attr:`later_committed` lists them as ``(start, stop)`` input
    index ranges (rewriting them is harmless: a put of the same value).
    """

    def __init__(
        self,
        message: str,
        committed: int,
        failed_keys: Sequence[bytes] = (),
        uncertain: bool = False,
        later_committed: Sequence[Tuple[int, int]] = (),
    ) -> None:
        super().__init__(message)
        self.committed = committed
        self.failed_keys = list(failed_keys)
        self.uncertain = uncertain
        self.later_committed = list(later_committed)


class BulkRequestTooLargeError(RequestTooLargeError, BulkWriteError):
    """One item of a bulk write is larger than a request may be.

    Every item before it was written (:attr:`committed` is its index), none after.
    """

    def __init__(self, message: str, committed: int, failed_keys: Sequence[bytes] = ()
                 ) -> None:
        BulkWriteError.__init__(self, _with_size_hint(message), committed, failed_keys,
                                False)


__all__ = [name for name, obj in list(globals().items())
           if isinstance(obj, type) and issubclass(obj, Exception)]
