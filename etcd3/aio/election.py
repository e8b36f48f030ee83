"""Leader election of the asyncio client: the threaded :mod:`etcd3.election` (etcd's
Go ``concurrency.Election`` semantics and key layout), awaited.

Candidates of this client, of the threaded client and of ``etcdctl elect NAME`` take
part in the same election. ``election.observe()`` is an async iterator of leaders.
"""

from __future__ import annotations

import functools
from typing import Any, AsyncIterator, Callable, Optional, Union

from .. import codec, exceptions
from .._core import concurrency as core
from .._core.deadline import UNSET, Deadline, Timeout
from .._core.ops import Get
from .._holders import CandidateState, KeyType
from . import _concurrency as cc
from ._base import AioServiceBase

__all__ = ["AioElectionMixin", "Election", "LeaderInfo", "Observer"]

#: ``(value, KVMetadata)`` of a leader.
LeaderInfo = core.LeaderInfo


class Election(CandidateState, cc.AioLeaseHolder):
    """One candidate's handle on the election ``name`` (see
    :class:`etcd3.election.Election`: same arguments, attributes and rules).

    :meth:`campaign`, :meth:`proclaim`, :meth:`resign`, :meth:`is_leader` and
    :meth:`leader` are awaited; :meth:`observe` returns an async iterator.
    A campaign whose task is cancelled withdraws the candidacy (its key is deleted).
    ``on_lost(election)`` runs in the event loop; it may be a coroutine function.
    """

    async def campaign(self, value: KeyType, timeout: Optional[float] = None) -> bool:
        """Stand with ``value`` and wait until elected; True once leader, False if
        ``timeout`` seconds passed first (the candidacy is then withdrawn).

        :param timeout: None waits as long as it takes; 0 only wins an empty election.
        :raises Etcd3Exception: etcd could not be reached (the candidacy is withdrawn).
        :raises asyncio.CancelledError: the task was cancelled (the candidacy is
            withdrawn).

        A candidate that already leads just proclaims ``value``.
        """
        data = codec.to_bytes(value, "value")
        deadline = Deadline.after(timeout)
        if self.key is not None and await self.is_leader():
            await self.proclaim(data)
            return True
        await self._withdraw()
        while True:
            try:
                self.lease = await self._grant_lease(self.ttl)
                attempt = self._contention(data)
                end = await cc.contend(self._client, attempt, deadline,
                                       functools.partial(self._created, attempt))
                if end.verdict is core.Verdict.GAVE_UP:
                    await self._withdraw()
                    return False
                if end.verdict is core.Verdict.HELD:
                    return True
            except BaseException:
                await cc.shielded(self._withdraw())
                raise
            await self._withdraw()  # our lease expired while waiting: stand again
            if deadline.expired:
                return False

    async def proclaim(self, value: KeyType) -> None:
        """Announce a new ``value`` as the leader, without a new election.

        :raises NotLeaderError: this candidate does not lead.
        """
        proclamation = self._proclamation(codec.to_bytes(value, "value"))
        response = await cc.run_txn(self._client, proclamation)
        if not response.succeeded:
            await self._withdraw()
            raise self._no_longer_leader()
        self.header = response.header

    async def resign(self) -> bool:
        """Step down (or stop campaigning) so the next candidate leads; True if this
        candidate's key was still there to delete."""
        return await cc.step_down(self._client, self.key, self.revision, self._withdraw)

    async def _withdraw(self) -> None:
        await cc.revoke_quietly(self._forget())

    async def is_leader(self) -> bool:
        """True if this candidate leads now (asks etcd, unless it already knows its
        lease was lost: see :attr:`lost`)."""
        if self.key is None or not self._lease_alive():
            return False
        leader = await self._leader(self._check_timeout())
        return leader is not None and leader[1].key == self.key

    async def leader(self) -> Optional[LeaderInfo]:
        """The current leader as ``(value, KVMetadata)``; None when nobody leads."""
        return await self._leader(UNSET)

    async def _leader(self, timeout: Timeout) -> Optional[LeaderInfo]:
        return core.leader_of(await cc.run_get(self._client,
                                               core.first_created(self._prefix), timeout))

    def observe(self) -> Observer:
        """An async iterator of ``(value, KVMetadata)``: the current leader, then
        every new proclamation and every new leader, in order (values no longer
        current may be skipped, the latest never is). ``await observer.cancel()``
        (or ``async with election.observe() as leaders:``) stops it; closing the
        client stops it too."""
        return Observer(self._client, self._prefix)


class Observer:
    """Follows an election's leader (Go's ``Election.Observe``); see
    :meth:`Election.observe`."""

    def __init__(self, etcd_client: Any, prefix: bytes) -> None:
        self._client = etcd_client
        self._prefix = prefix
        self._cancel_watch: Any = None
        self._cancelled = False
        self._iterator = self._follow()

    def __aiter__(self) -> Observer:
        return self

    async def __anext__(self) -> LeaderInfo:
        return await self._iterator.__anext__()

    async def cancel(self) -> None:
        """Stop observing; iteration ends."""
        self._cancelled = True
        await self._stop_watch()

    async def __aenter__(self) -> Observer:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.cancel()

    async def _watch(self, key: bytes, **options: Any) -> Optional[AsyncIterator[Any]]:
        responses, cancel = await self._client.watch_response(key, **options)
        if self._cancelled:
            await cancel()
            return None
        self._cancel_watch = cancel
        result: AsyncIterator[Any] = responses
        return result

    async def _follow(self) -> AsyncIterator[LeaderInfo]:
        observation = core.Observation(self._prefix)
        step: Union[core.Watch, Get, None]
        while not self._cancelled:
            try:
                leaders, step = observation.on_range(
                    await cc.run_get(self._client, observation.start()))
                while isinstance(step, core.Watch):
                    for leader in leaders:
                        yield leader
                    awaiting_first = observation.awaiting_first
                    leaders, watch, step = [], step, None
                    responses = await self._watch(watch.key, range_end=watch.range_end,
                                                  start_revision=watch.start_revision)
                    if responses is not None:
                        async for response in responses:
                            leaders, step = observation.on_watch(response)
                            if step is not None:
                                break
                            for leader in leaders:
                                yield leader
                            leaders = []
                    await self._stop_watch()
                    if step is None and awaiting_first:
                        return  # cancelled before a first candidate stood
                for leader in leaders:  # values proclaimed before the leader's key went
                    yield leader
            except exceptions.RevisionCompactedError:
                continue  # start over from the current state
            except exceptions.ClientClosedError:
                return  # closing the client ends the observation, wherever it was
            finally:
                await self._stop_watch()

    async def _stop_watch(self) -> None:
        cancel, self._cancel_watch = self._cancel_watch, None
        if cancel is not None:
            await cancel()


class AioElectionMixin(AioServiceBase):
    """Election methods of :class:`~etcd3.aio.Etcd3Client`."""

    def election(self, name: KeyType, ttl: int = 60, *,
                 on_lost: Optional[Callable[[Election], Any]] = None) -> Election:
        """An :class:`Election` handle on ``name`` (interoperates with
        ``etcdctl elect name`` and the threaded client).

        :raises ValueError: empty name, ttl <= 0.
        """
        return Election(name, ttl=ttl, etcd_client=self, on_lost=on_lost)
