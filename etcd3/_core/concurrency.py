"""The lock and election algorithms of etcd's Go client, as steps that do no I/O.

Layout (Go's ``concurrency/key.go``, ``mutex.go``, ``election.go``): a contender owns
the key ``<prefix><lease id in hex>``, created in one transaction and attached to its
lease; the oldest key under the prefix (lowest create revision) holds the lock or
leads; a waiter watches only its predecessor, the newest key created before its own,
until no older key remains.

:class:`Contention` is one attempt to get to the front. It says which request to make
next (an :class:`~etcd3._core.ops.Txn`, a :class:`~etcd3._core.ops.Get`, or
:class:`WaitDelete`), and a driver makes it and hands back the result, until it says
:class:`Finished`. It reads no clock and starts nothing: the driver owns deadlines,
threads (or tasks) and the lease. :class:`Observation` follows an election's leader
the same way (Go's ``Election.Observe``). The other functions build the one-off
requests of locks and elections.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple, Union

from .. import codec
from ..events import DeleteEvent
from ..results import KVMetadata
from .ops import BaseCompare, Create, Delete, Get, Put, Txn

#: Pause before re-checking after a failed watch (compaction, broken stream), so a
#: persistent failure does not spin.
WATCH_RETRY_PAUSE = 0.1

#: A leader as ``(value, KVMetadata)``.
LeaderInfo = Tuple[bytes, Any]


def own_key(prefix: bytes, lease_id: int) -> bytes:
    """The key a contender holding the lease ``lease_id`` owns under ``prefix``."""
    return prefix + b"%x" % lease_id


def first_created(prefix: bytes) -> Get:
    """A read of the oldest key under ``prefix`` (Go's ``WithFirstCreate``): the
    holder or leader."""
    return Get(prefix, codec.prefix_range_end(prefix), sort_order="ascend",
               sort_target="create", limit=1)


def last_created_before(prefix: bytes, max_create_revision: int) -> Get:
    """A read of the newest key under ``prefix`` created at or before
    ``max_create_revision`` (Go's ``WithLastCreate`` + ``WithMaxCreateRev``)."""
    return Get(prefix, codec.prefix_range_end(prefix), sort_order="descend",
               sort_target="create", limit=1, max_create_revision=max_create_revision)


def is_owner(key: bytes, revision: int) -> BaseCompare:
    """A compare that holds only while ``key`` is the one created at ``revision``."""
    return Create(key) == revision


def delete_if_owner(key: bytes, revision: int) -> Txn:
    """Delete ``key`` only if it is still the one created at ``revision`` (the
    response's ``succeeded`` says whether it was)."""
    return Txn([is_owner(key, revision)], [Delete(key)], [])


def proclaim(key: bytes, revision: int, value: bytes, lease_id: int) -> Txn:
    """Set a leader's ``value`` only if its key is still the one created at
    ``revision`` (``succeeded`` False: it no longer leads)."""
    return Txn([is_owner(key, revision)], [Put(key, value, lease=lease_id)], [])


@dataclass(frozen=True)
class WaitDelete:
    """Wait until ``key`` is deleted at or after ``revision``; then hand back True, or
    False when the driver's deadline passed first. (A failed wait counts as a deletion:
    the next step checks the store again.)"""

    key: bytes
    revision: int


class Verdict(enum.Enum):
    """How an attempt ended."""

    #: At the front: the lock is held, or the election won.
    HELD = "held"
    #: Not at the front, and not waiting any longer (no wait asked, or the deadline
    #: passed). The own key is still there: the driver removes it.
    GAVE_UP = "gave up"
    #: The own key vanished while waiting (its lease expired): try again.
    LOST = "lost"


@dataclass(frozen=True)
class Finished:
    """The end of an attempt; ``header`` is the header of the response that proved
    it held (None otherwise)."""

    verdict: Verdict
    header: Any = None


Step = Union[Txn, Get, WaitDelete, Finished]


class Contention:
    """One attempt of a contender to get to the front of ``prefix`` (Go's
    ``Mutex.Lock`` and ``Election.Campaign``, after the lease was granted).

    :param value: the value of the own key (an election's proposal).
    :param first_wins: finish as soon as the create transaction shows this key is
        the oldest (a lock); otherwise always ask for the predecessors (an election).
    :param wait: wait for older keys to go; otherwise give up when not first.

    Drive it with :meth:`start`, then feed each step's result to :meth:`on_txn`
    (for a :class:`~etcd3._core.ops.Txn`), :meth:`on_range` (a
    :class:`~etcd3._core.ops.Get`) or :meth:`on_waited` (a :class:`WaitDelete`) until
    a step is :class:`Finished`. After the transaction, :attr:`key`,
    :attr:`revision` and :attr:`created_header` describe the own key.
    """

    def __init__(self, prefix: bytes, lease_id: int, value: bytes = b"", *,
                 first_wins: bool, wait: bool) -> None:
        self.prefix = prefix
        self.lease_id = lease_id
        self.value = value
        self.first_wins = first_wins
        self.wait = wait
        self.key = own_key(prefix, lease_id)
        self.revision: Optional[int] = None
        self.created_header: Any = None
        self._checking_own_key = False

    def start(self) -> Txn:
        """The transaction that creates the own key unless it exists, and reads it
        (when it existed) and the oldest key."""
        return Txn([Create(self.key) == 0],
                   [Put(self.key, self.value, lease=self.lease_id),
                    first_created(self.prefix)],
                   [Get(self.key), first_created(self.prefix)])

    def on_txn(self, response: Any) -> Step:
        """The next step after the create transaction's ``response``."""
        if response.succeeded:
            self.revision = int(response.header.revision)
        else:  # it existed: its value is left alone
            self.revision = int(response.responses[0].response_range.kvs[0].create_revision)
        self.created_header = response.header
        oldest = response.responses[1].response_range.kvs
        if self.first_wins and (not oldest or oldest[0].create_revision == self.revision):
            return Finished(Verdict.HELD, response.header)
        if not self.wait:
            return Finished(Verdict.GAVE_UP)
        return self._predecessor()

    def on_range(self, response: Any) -> Step:
        """The next step after a requested read's ``response``."""
        kvs = response.kvs
        if self._checking_own_key:
            if kvs and kvs[0].create_revision == self.revision:
                return Finished(Verdict.HELD, response.header)
            return Finished(Verdict.LOST)
        if kvs:
            return WaitDelete(kvs[0].key, int(response.header.revision))
        # No older key is left: is ours still there (its lease may have expired)?
        self._checking_own_key = True
        return Get(self.key)

    def on_waited(self, deleted: bool) -> Step:
        """The next step after a :class:`WaitDelete`: ``deleted`` False means the
        deadline passed."""
        if not deleted:
            return Finished(Verdict.GAVE_UP)
        return self._predecessor()

    def _predecessor(self) -> Get:
        assert self.revision is not None
        return last_created_before(self.prefix, self.revision - 1)


def leader_of(response: Any) -> Optional[LeaderInfo]:
    """The leader in the response to :func:`first_created` (None: nobody leads)."""
    if not response.kvs:
        return None
    kv = response.kvs[0]
    return kv.value, KVMetadata.from_pb(kv, response.header)


@dataclass(frozen=True)
class Watch:
    """Watch ``key`` (or ``[key, range_end)``) from ``start_revision``, handing each
    response to :meth:`Observation.on_watch`; one watch at a time."""

    key: bytes
    start_revision: int
    range_end: Optional[bytes] = None


class Observation:
    """Following the leader of the election under ``prefix`` (Go's
    ``Election.Observe``): the current leader (or the first candidate of an empty
    election), every new value it proclaims, and, once its key is deleted, the next
    leader.

    Drive it with :meth:`start` (a :class:`~etcd3._core.ops.Get`), feed the response
    to :meth:`on_range`, then each response of the :class:`Watch` it asks for to
    :meth:`on_watch`. Each returns the leaders to report, in order, and the next step.
    """

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        #: True while the election is empty and the watch waits for a first candidate.
        self.awaiting_first = False

    def start(self) -> Get:
        """The read of the current leader (again after a leader's key was deleted)."""
        return first_created(self.prefix)

    def on_range(self, response: Any) -> Tuple[List[LeaderInfo], Watch]:
        """The leader now, if any, and the watch to follow it (or to wait for the
        first candidate) from just after the read."""
        after = int(response.header.revision) + 1
        leader = leader_of(response)
        self.awaiting_first = leader is None
        if leader is None:
            return [], Watch(self.prefix, after, codec.prefix_range_end(self.prefix))
        return [leader], Watch(leader[1].key, after)

    def on_watch(self, response: Any) -> Tuple[List[LeaderInfo], Optional[Union[Watch, Get]]]:
        """Leaders to report from a watch response, and what next: None keeps the
        watch; a :class:`Watch` replaces it (a first candidate arrived); a
        :class:`~etcd3._core.ops.Get` starts over (the leader's key was deleted)."""
        found: List[LeaderInfo] = []
        for event in response.events:
            deleted = isinstance(event, DeleteEvent)
            if self.awaiting_first:
                if not deleted:  # a delete is no candidate: keep waiting
                    self.awaiting_first = False
                    leader = (event.value, KVMetadata.from_pb(event, response.header))
                    return [leader], Watch(event.key, leader[1].mod_revision + 1)
            elif deleted:
                return found, self.start()
            else:
                found.append((event.value, KVMetadata.from_pb(event, response.header)))
        return found, None
