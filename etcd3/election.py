"""Leader election with etcd's Go ``concurrency.Election`` semantics.

Layout (the same as ``etcdctl elect NAME`` and Go's ``concurrency.NewElection``):
each candidate owns ``NAME/<lease hex>`` holding its proposal, attached to a lease
kept alive by the client's keepalive stream; the oldest key is the leader, and the
others wait in line (each watching only its predecessor). So Python candidates and
``etcdctl elect`` candidates take part in the same election.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Iterator, Optional, Union

from . import codec, exceptions
from ._core import concurrency as core
from ._core.deadline import Deadline, Timeout
from ._core.ops import Get
from ._holders import CandidateState
from ._sync import concurrency as cc
from ._sync.base import UNSET, ServiceBase
from ._sync.client_api import ConcurrencyClient
from .leases import Lease

KeyType = Union[str, bytes]
#: ``(value, KVMetadata)`` of a leader.
LeaderInfo = core.LeaderInfo


ElectionError = exceptions.ElectionError
NotLeaderError = exceptions.NotLeaderError


class Election(CandidateState, cc.LeaseHolder):
    """One candidate's handle on the election ``name``.

    :param name: the election's name, used as key prefix ``name + "/"`` exactly as
        ``etcdctl elect`` does.
    :param ttl: seconds leadership survives the leader's death (its lease TTL).
    :param on_lost: called with the election if this candidate's lease is lost while
        it campaigns or leads: :attr:`lost` becomes True, :meth:`is_leader` answers
        False and a WARNING is logged (as for :class:`~etcd3.locks.Lock`).
    :raises ValueError: empty name, ttl <= 0.

    While campaigning or leading: ``key`` (this candidate's key), ``revision`` (its
    create revision), ``lease`` and ``header``. Use one object per candidate.
    """

    lease: Optional[Lease]

    def campaign(self, value: KeyType, timeout: Optional[float] = None) -> bool:
        """Stand with ``value`` and wait until elected; True once leader, False if
        ``timeout`` seconds passed first (the candidacy is then withdrawn).

        :param timeout: None waits as long as it takes; 0 only wins an empty election.
        :raises Etcd3Exception: etcd could not be reached (the candidacy is withdrawn).

        A candidate that already leads just proclaims ``value``.
        """
        data = codec.to_bytes(value, "value")
        deadline = Deadline.after(timeout)
        if self.key is not None and self.is_leader():
            self.proclaim(data)
            return True
        self._withdraw()
        while True:
            try:
                self.lease = self._grant_lease(self.ttl)
                attempt = self._contention(data)
                end = cc.contend(self._client, attempt, deadline,
                                 functools.partial(self._created, attempt))
                if end.verdict is core.Verdict.GAVE_UP:
                    self._withdraw()
                    return False
                if end.verdict is core.Verdict.HELD:
                    return True
            except BaseException:
                self._withdraw()
                raise
            self._withdraw()  # our lease expired while waiting: stand again
            if deadline.expired:
                return False

    def proclaim(self, value: KeyType) -> None:
        """Announce a new ``value`` as the leader, without a new election.

        :raises NotLeaderError: this candidate does not lead.
        """
        proclamation = self._proclamation(codec.to_bytes(value, "value"))
        response = cc.run_txn(self._client, proclamation)
        if not response.succeeded:
            self._withdraw()
            raise self._no_longer_leader()
        self.header = response.header

    def resign(self) -> bool:
        """Step down (or stop campaigning) so the next candidate leads; True if this
        candidate's key was still there to delete."""
        return cc.step_down(self._client, self.key, self.revision, self._withdraw)

    def _withdraw(self) -> None:
        cc.revoke_quietly(self._forget())

    def is_leader(self) -> bool:
        """True if this candidate leads now (asks etcd, unless it already knows its
        lease was lost: see :attr:`lost`)."""
        if self.key is None or not self._lease_alive():
            return False
        leader = self._leader(self._check_timeout())
        return leader is not None and leader[1].key == self.key

    def leader(self) -> Optional[LeaderInfo]:
        """The current leader as ``(value, KVMetadata)``; None when nobody leads."""
        return self._leader(UNSET)

    def _leader(self, timeout: Timeout) -> Optional[LeaderInfo]:
        return core.leader_of(cc.run_get(self._client, core.first_created(self._prefix),
                                         timeout))

    def observe(self) -> Observer:
        """An iterator of ``(value, KVMetadata)``: the current leader, then every new
        proclamation and every new leader, in order (values no longer current may be
        skipped, the latest never is). Call its ``cancel()`` (or use it as a context
        manager) to stop; closing the client stops it too."""
        return Observer(self._client, self._prefix)



class Observer:
    """Follows an election's leader (Go's ``Election.Observe``); see
    :meth:`Election.observe`."""

    def __init__(self, etcd_client: ConcurrencyClient, prefix: bytes) -> None:
        self._client = etcd_client
        self._prefix = prefix
        self._mutex = threading.Lock()
        self._cancel_watch: Any = None
        self._cancelled = False
        self._iterator = self._follow()

    def __iter__(self) -> Observer:
        return self

    def __next__(self) -> LeaderInfo:
        return next(self._iterator)

    def cancel(self) -> None:
        """Stop observing; iteration ends."""
        with self._mutex:
            self._cancelled = True
            cancel, self._cancel_watch = self._cancel_watch, None
        if cancel is not None:
            cancel()

    def __enter__(self) -> Observer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.cancel()

    def _watch(self, key: bytes, **options: Any) -> Optional[Iterator[Any]]:
        responses, cancel = self._client.watch_response(key, **options)
        with self._mutex:
            if not self._cancelled:
                self._cancel_watch = cancel
                result: Iterator[Any] = iter(responses)
                return result
        cancel()
        return None

    def _follow(self) -> Iterator[LeaderInfo]:
        observation = core.Observation(self._prefix)
        step: Union[core.Watch, Get, None]
        while not self._cancelled:
            try:
                leaders, step = observation.on_range(
                    cc.run_get(self._client, observation.start()))
                while isinstance(step, core.Watch):
                    yield from leaders
                    awaiting_first = observation.awaiting_first
                    leaders, watch, step = [], step, None
                    for response in self._watch(watch.key, range_end=watch.range_end,
                                                start_revision=watch.start_revision) or ():
                        leaders, step = observation.on_watch(response)
                        if step is not None:
                            break
                        yield from leaders
                        leaders = []
                    self._stop_watch()
                    if step is None and awaiting_first:
                        return  # cancelled before a first candidate stood
                yield from leaders  # values proclaimed before the leader's key went
            except exceptions.RevisionCompactedError:
                continue  # start over from the current state
            except exceptions.ClientClosedError:
                return  # closing the client stops the observer, wherever it was
            finally:
                self._stop_watch()

    def _stop_watch(self) -> None:
        with self._mutex:
            cancel, self._cancel_watch = self._cancel_watch, None
        if cancel is not None:
            cancel()


class ElectionMixin(ServiceBase):
    """Election methods of :class:`~etcd3.client.Etcd3Client`."""

    def election(self: ConcurrencyClient, name: KeyType, ttl: int = 60, *,
                 on_lost: Optional[Callable[[Election], None]] = None) -> Election:
        """An :class:`Election` handle on ``name`` (interoperates with
        ``etcdctl elect name``).

        :raises ValueError: empty name, ttl <= 0.
        """
        return Election(name, ttl=ttl, etcd_client=self, on_lost=on_lost)
