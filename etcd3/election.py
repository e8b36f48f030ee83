"""Leader election with etcd's Go ``concurrency.Election`` semantics.

Layout (the same as ``etcdctl elect NAME`` and Go's ``concurrency.NewElection``):
each candidate owns ``NAME/<lease hex>`` holding its proposal, attached to a lease
kept alive by the client's keepalive stream; the oldest key is the leader, and the
others wait in line (each watching only its predecessor). So Python candidates and
``etcdctl elect`` candidates take part in the same election.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator, Optional, Tuple, Union

from . import codec, exceptions
from ._core.deadline import Deadline, Timeout
from ._sync import concurrency as cc
from ._sync.base import UNSET, ServiceBase
from .events import DeleteEvent
from .leases import Lease, _check_ttl
from .locks import _check_name
from .results import KVMetadata
from .transactions import Create, Put

KeyType = Union[str, bytes]
#: ``(value, KVMetadata)`` of a leader.
LeaderInfo = Tuple[bytes, Any]


ElectionError = exceptions.ElectionError
NotLeaderError = exceptions.NotLeaderError


class Election(cc.LeaseHolder):
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

    def __init__(self, name: KeyType, ttl: int = 60, etcd_client: Any = None, *,
                 on_lost: Optional[Callable[[Election], None]] = None) -> None:
        self._init_holder(on_lost)
        self._what = f"leadership of election {name!r}"
        self.name = name
        self._prefix = _check_name(name, "election name") + b"/"
        self.ttl = _check_ttl(ttl)
        self.etcd_client = etcd_client
        self.lease: Optional[Lease] = None
        self.key: Optional[bytes] = None
        self.revision: Optional[int] = None
        self.header: Any = None

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
        client = self.etcd_client
        while True:
            try:
                self.lease = self._grant_lease(self.ttl)
                own, revision, response, _ = cc.create_own_key(client, self._prefix,
                                                                self.lease.id, data)
                self.key, self.revision, self.header = own, revision, response.header
                if not cc.wait_deletes(client, self._prefix, revision - 1, deadline):
                    self._withdraw()
                    return False
                if cc.key_create_revision(client, own) == revision:
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
        data = codec.to_bytes(value, "value")
        if self.key is None or self.revision is None or self.lease is None:
            raise NotLeaderError(f"not the leader of election {self.name!r}")
        response = cc.txn(self.etcd_client, [Create(self.key) == self.revision],
                          [Put(self.key, data, lease=self.lease.id)], [])
        if not response.succeeded:
            self._withdraw()
            raise NotLeaderError(f"no longer the leader of election {self.name!r} "
                                 "(its lease expired)")
        self.header = response.header

    def resign(self) -> bool:
        """Step down (or stop campaigning) so the next candidate leads; True if this
        candidate's key was still there to delete."""
        return cc.step_down(self.etcd_client, self.key, self.revision, self._withdraw)

    def _withdraw(self) -> None:
        lease, self.lease = self.lease, None
        self.key = self.revision = None
        cc.revoke_quietly(lease)

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
        response = self.etcd_client.get_prefix_response(
            self._prefix, sort_order="ascend", sort_target="create", limit=1,
            timeout=timeout)
        if not response.kvs:
            return None
        kv = response.kvs[0]
        return kv.value, KVMetadata.from_pb(kv, response.header)

    def observe(self) -> Observer:
        """An iterator of ``(value, KVMetadata)``: the current leader, then every new
        proclamation and every new leader, in order (values no longer current may be
        skipped, the latest never is). Call its ``cancel()`` (or use it as a context
        manager) to stop; closing the client stops it too."""
        return Observer(self.etcd_client, self._prefix)

    def __repr__(self) -> str:
        state = f"candidate key={self.key!r}" if self.key else "not campaigning"
        if self.key and self.lost:
            state += ", lost"
        return f"Election(name={self.name!r}, {state})"


class Observer:
    """Follows an election's leader (Go's ``Election.Observe``); see
    :meth:`Election.observe`."""

    def __init__(self, etcd_client: Any, prefix: bytes) -> None:
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
        while not self._cancelled:
            try:
                found = self._current_leader()
                if found is None:
                    return
                current, after = found
                yield current
                yield from self._until_deleted(current[1].key, after)
            except exceptions.RevisionCompactedError:
                continue  # start over from the current state
            finally:
                self._stop_watch()

    def _current_leader(self) -> Optional[Tuple[LeaderInfo, int]]:
        """The leader now (or the first one of an empty election) and the revision
        to follow it from; None when cancelled."""
        response = self._client.get_prefix_response(self._prefix, sort_order="ascend",
                                                     sort_target="create", limit=1)
        if response.kvs:
            kv = response.kvs[0]
            return (kv.value, KVMetadata.from_pb(kv, response.header)), \
                response.header.revision + 1
        first = self._first_put(response.header.revision + 1)
        self._stop_watch()
        return None if first is None else (first, first[1].mod_revision + 1)

    def _until_deleted(self, key: bytes, start_revision: int) -> Iterator[LeaderInfo]:
        """Every new value of ``key`` until it is deleted (or observing stops)."""
        for watch_response in self._watch(key, start_revision=start_revision) or ():
            for event in watch_response.events:
                if isinstance(event, DeleteEvent):
                    return
                yield event.value, KVMetadata.from_pb(event, watch_response.header)

    def _first_put(self, start_revision: int) -> Optional[LeaderInfo]:
        """Wait for the first candidate of an empty election."""
        responses = self._watch(self._prefix,
                                range_end=codec.prefix_range_end(self._prefix),
                                start_revision=start_revision)
        if responses is None:
            return None
        for watch_response in responses:
            for event in watch_response.events:
                if not isinstance(event, DeleteEvent):
                    return event.value, KVMetadata.from_pb(event, watch_response.header)
        return None

    def _stop_watch(self) -> None:
        with self._mutex:
            cancel, self._cancel_watch = self._cancel_watch, None
        if cancel is not None:
            cancel()


class ElectionMixin(ServiceBase):
    """Election methods of :class:`~etcd3.client.Etcd3Client`."""

    def election(self, name: KeyType, ttl: int = 60, *,
                 on_lost: Optional[Callable[[Election], None]] = None) -> Election:
        """An :class:`Election` handle on ``name`` (interoperates with
        ``etcdctl elect name``).

        :raises ValueError: empty name, ttl <= 0.
        """
        return Election(name, ttl=ttl, etcd_client=self, on_lost=on_lost)
