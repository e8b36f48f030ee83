"""What every write-coalescing driver does with a batch, without I/O: the Txn it sends,
each caller's share of the answer, and the errors its callers get.

The drivers (:mod:`etcd3.aio._write_batch`, :mod:`etcd3._sync.write_batch`) queue
and send; the policy (:mod:`etcd3._core.write_batch_policy`) says what leaves
together; this module says what a batch's outcome means for each of its writes:

* answered: each write gets its own PutResponse / DeleteRangeResponse, carrying the
  Txn's header (coalesced writes share its revision);
* refused before anything was applied (:func:`refused`): each write re-runs alone,
  and meets the error it gets alone;
* outcome unknown: each caller gets the batch's error worded for its own
  Put/DeleteRange and key (:func:`for_caller`), as a lone write's error is.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Sequence, Tuple

from .. import codec, exceptions
from . import rpc as _rpc
from .error_causes import may_have_applied
from .rpc import Method

#: The context the batch's Txn is sent with: the final error's wording for it is
#: reworded for each caller (see :func:`for_caller`).
BATCH_CONTEXT = "coalesced writes"
_TXN_WHAT = f"Txn [{BATCH_CONTEXT}]"


def what(method: Method, context: str) -> str:
    """How errors name a call: ``"Put [key b'k']"``."""
    return f"{method.path.rpartition('/')[2]} [{context}]"


def put_op(key: bytes, value: bytes, lease: int, prev_kv: bool) -> Tuple[int, Any]:
    """A put as one op of the batch's Txn."""
    return codec.OP_PUT, (key, value, lease, prev_kv)


def delete_op(key: bytes, prev_kv: bool) -> Tuple[int, Any]:
    """A single-key delete as one op of the batch's Txn."""
    return codec.OP_DELETE_RANGE, (key, None, prev_kv)


def encode_alone(op: Tuple[int, Any]) -> bytes:
    """The PutRequest / DeleteRangeRequest a write (:func:`put_op`,
    :func:`delete_op`) sends when it goes alone."""
    kind, fields = op
    if kind == codec.OP_PUT:
        return codec.encode_put_request(*fields)
    return codec.encode_delete_range_request(*fields)


def encode_batch(ops: Iterable[Tuple[int, Any]]) -> bytes:
    """The batch's TxnRequest: no compares, every write in ``success``."""
    return codec.encode_txn_request([], list(ops))


def responses(response: Any, methods: Sequence[Method]) -> List[Any]:
    """Each write's own response (in batch order) from the batch's TxnResponse, with
    the Txn's header (``methods``: each write's Put or DeleteRange)."""
    header = response.header
    results = []
    for method, op in zip(methods, response.responses):
        result = op.response_put if method is _rpc.PUT else op.response_delete_range
        result.header = header
        results.append(result)
    return results


def refused(error: BaseException) -> bool:
    """True when a batch that failed with ``error`` was certainly not applied (its
    writes must re-run alone)."""
    return not may_have_applied(error)


def for_caller(error: exceptions.Etcd3Exception, method: Method, context: str
               ) -> exceptions.Etcd3Exception:
    """The batch's final ``error`` as the caller's own call would have got it: same
    type, attributes (``attempts``, ``endpoints_tried``, gRPC code) and cause,
    worded for ``method`` and ``context``."""
    text = str(error).replace(_TXN_WHAT, what(method, context)).replace(
        f"[{BATCH_CONTEXT}]", f"[{context}]")
    cls = type(error)
    reworded: exceptions.Etcd3Exception = cls.__new__(cls)
    reworded.__dict__.update(error.__dict__)
    reworded.args = (text,)
    reworded.message = text
    reworded.__cause__ = error.__cause__
    return reworded


def closed_in_flight(method: Method, context: str) -> exceptions.ClientClosedError:
    """The error of a write whose batch was on the wire when the client closed."""
    return exceptions.ClientClosedError(
        f"this etcd3 client was closed while {what(method, context)} was in flight; it "
        "may or may not have been applied (writes are not retried once sent: check "
        "before repeating it)")


def closed_queued(method: Method, context: str) -> exceptions.ClientClosedError:
    """The error of a queued write when the client closed (nothing was sent)."""
    return exceptions.ClientClosedError(
        f"this etcd3 client was closed before {what(method, context)} was sent "
        "(it was not applied)")


def expired_queued(method: Method, context: str) -> exceptions.ConnectionTimeoutError:
    """The error of a queued write whose deadline passed before it was sent."""
    return exceptions.ConnectionTimeoutError(
        f"{what(method, context)} did not complete within the deadline: it waited for "
        "a write slot and was not sent")
