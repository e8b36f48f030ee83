"""Which failed calls are tried again, and how long to wait between tries.

The rule is etcd's Go client's (``client/v3/retry_interceptor.go``):

- a *repeatable* call (Range, lease TimeToLive/Leases, MemberList, Status, alarm
  list, Hash/HashKV, user/role get/list; see ``repeatable`` in :mod:`etcd3._grpc.rpc`)
  is retried on the next endpoint when it failed with UNAVAILABLE (member down,
  connection broken, "etcdserver: no leader", "leader changed", "request timed
  out") or when one attempt ran out of its own budget (a frozen or hung member);
  never on a typed etcd error such as a compacted revision;
- a *write* (Put, DeleteRange, Txn, Compact, lease grant/revoke, member and auth
  changes) is retried only when the request provably never left this process
  (connection refused, no address, channel not connected), so a write is never
  applied twice. A write that failed after it was sent raises
  :class:`~etcd3.exceptions.ConnectionFailedError` or
  :class:`~etcd3.exceptions.ConnectionTimeoutError` whose message says the write
  may or may not have been applied;
- an auth-token error ("invalid auth token", "revision of auth store is old",
  "user name is empty") re-authenticates once and repeats the call (for writes
  too: the server rejected it before applying it).

The first retry goes at once to another endpoint; later ones wait a jittered,
exponentially growing pause. Everything happens inside the call's deadline. The
error that ends a call carries ``attempts`` and ``endpoints_tried`` (see
:class:`~etcd3.exceptions.Etcd3Exception`). The rules themselves are one pure
function, :func:`etcd3._core.retry_rules.decide`, which every driver calls.

Attempt budget: while another healthy endpoint is left that the call has not tried,
an attempt of a repeatable call may use only :attr:`Retry.attempt_fraction` (half) of
the time left, but never less than :attr:`Retry.min_attempt_timeout` (nor more than
:attr:`Retry.attempt_timeout`). An attempt that runs out of its budget ejects its
endpoint (see :mod:`etcd3.pool`) and the call goes on elsewhere, so a member that
keeps its connection but answers nothing (hung on disk, a stalled proxy) costs one
call half its deadline once, instead of failing every call it gets: with
``timeout=5`` and three endpoints, the first attempt gets 2.5 s, the second 1.25 s,
the last what is left. A try is never given less than ``min_attempt_timeout``
(0.5 s) by the split, so a deadline of 0.5 s or less is not split at all. Writes
always get the whole deadline (they are not retried once sent).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

from ._core import retry_rules as _rules
from ._grpc import errors as _errors


@dataclass(frozen=True)
class Retry:
    """A retry policy, shared by every unary call of a client.

    :param max_attempts: tries in all, the first one included (1 disables retries).
    :param initial_backoff: seconds to wait before the second retry (the first
        retry goes at once to another endpoint, as etcd's Go client does).
    :param max_backoff: the longest wait between two tries.
    :param multiplier: growth of the wait from one retry to the next.
    :param jitter: the wait is drawn uniformly from ``[w * (1 - jitter), w]``.
    :param attempt_timeout: seconds one try of a repeatable call may take before it
        is abandoned and retried elsewhere (None: no fixed cap). This is what gets a
        read past a frozen, still-connected member when the call has no deadline.
    :param attempt_fraction: the share of the time left that one try of a repeatable
        call may use while an untried healthy endpoint remains (see the module
        docstring); 1 turns the split off.
    :param min_attempt_timeout: a try is never given less than this many seconds by
        the split (nor more than the time left), so a slow but working member is not
        ejected for a client's very short deadline.
    """

    max_attempts: int = 10
    initial_backoff: float = 0.025
    max_backoff: float = 1.0
    multiplier: float = 2.0
    jitter: float = 0.5
    attempt_timeout: Optional[float] = 10.0
    attempt_fraction: float = 0.5
    min_attempt_timeout: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("Retry.max_attempts must be >= 1")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("Retry backoffs must be >= 0")
        if not 0 <= self.jitter <= 1:
            raise ValueError("Retry.jitter must be between 0 and 1")
        if self.attempt_timeout is not None and self.attempt_timeout <= 0:
            raise ValueError("Retry.attempt_timeout must be > 0 or None")
        if not 0 < self.attempt_fraction <= 1:
            raise ValueError("Retry.attempt_fraction must be > 0 and <= 1")
        if self.min_attempt_timeout < 0:
            raise ValueError("Retry.min_attempt_timeout must be >= 0")

    @classmethod
    def disabled(cls) -> Retry:
        """A policy that never retries."""
        return cls(max_attempts=1, attempt_timeout=None, attempt_fraction=1.0)

    def attempt_budget(self, remaining: Optional[float], *, more_endpoints: bool
                       ) -> Optional[float]:
        """Seconds the next try of a repeatable call may take, given the seconds left
        in its deadline (None: no deadline) and whether an untried healthy endpoint
        remains; None: no limit of its own."""
        budget = remaining
        cap = self.attempt_timeout
        if cap is not None and (budget is None or cap < budget):
            budget = cap
        if more_endpoints and remaining is not None and self.attempt_fraction < 1:
            share = min(remaining, max(remaining * self.attempt_fraction,
                                       self.min_attempt_timeout))
            if budget is None or share < budget:
                budget = share
        return budget

    def backoff(self, retry_number: int) -> float:
        """Seconds to sleep before retry number ``retry_number`` (1-based)."""
        if retry_number <= 1:
            return 0.0
        wait = min(self.max_backoff,
                   self.initial_backoff * self.multiplier ** (retry_number - 2))
        return wait * (1 - self.jitter * random.random())

    def is_retryable(self, error: BaseException, *, repeatable: bool,
                     attempt_timed_out: bool = False) -> bool:
        """Whether ``error`` (a gRPC error) may be retried for a call of this kind
        (``repeatable``: a read; ``attempt_timed_out``: the attempt ran out of its own
        budget, not the call's deadline). The whole decision, attempts and deadline
        included, is :func:`etcd3._core.retry_rules.decide`."""
        return _rules.retryable(_errors.classify(error), repeatable=repeatable,
                                attempt_timed_out=attempt_timed_out)
