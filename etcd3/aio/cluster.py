"""Cluster membership for the asyncio client: list, add (as voter or learner),
promote, update, remove (the threaded :mod:`etcd3.cluster`'s methods, awaited;
``members`` is iterated with ``async for``)."""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, List, Optional, Protocol, Sequence

from .._core.members import MemberInfo, Urls, member_fields, url_list
from .._grpc import rpc as _rpc
from ..etcdrpc import rpc_pb2 as pb
from ._base import UNSET, AioServiceBase, Timeout

__all__ = ["AioClusterMixin", "AioMember"]


class AioClusterClient(Protocol):
    """What an :class:`AioMember` uses of the client."""

    async def remove_member(self, member_id: int, *, timeout: Timeout = ...) -> None:
        """Remove a member."""

    async def update_member(self, member_id: int, peer_urls: Urls, *,
                            timeout: Timeout = ...) -> None:
        """Change a member's peer URLs."""

    async def promote_member(self, member_id: int, *, timeout: Timeout = ...) -> None:
        """Promote a learner."""

    async def list_alarms(self, member_id: int = 0, alarm_type: Any = ..., *,
                          timeout: Timeout = ...) -> List[Any]:
        """The active alarms."""


class AioMember(MemberInfo):
    """A member of the etcd cluster: ``id``, ``name`` (empty until a newly added
    member has started), ``peer_urls``, ``client_urls``, ``is_learner``; ``await``
    :meth:`remove`, :meth:`update` and :meth:`promote` change the cluster."""

    __slots__ = ("_etcd_client",)

    def __init__(self, id: int, name: str, peer_urls: Sequence[str],
                 client_urls: Sequence[str], etcd_client: Optional[AioClusterClient] = None,
                 is_learner: bool = False) -> None:
        super().__init__(id, name, peer_urls, client_urls, is_learner)
        self._etcd_client = etcd_client

    @classmethod
    def from_pb(cls, member: Any, etcd_client: Optional[AioClusterClient]) -> AioMember:
        """Build from an ``etcdserverpb.Member`` message."""
        id, name, peer_urls, client_urls, is_learner = member_fields(member)
        return cls(id, name, peer_urls, client_urls, etcd_client=etcd_client,
                   is_learner=is_learner)

    def _client(self) -> AioClusterClient:
        if self._etcd_client is None:
            raise AttributeError("this AioMember has no etcd_client")
        return self._etcd_client

    async def remove(self) -> None:
        """Remove this member from the cluster.

        :raises EntityNotFoundError: it is no longer a member.
        """
        await self._client().remove_member(self.id)

    async def update(self, peer_urls: Urls) -> None:
        """Change this member's peer URLs.

        :raises EntityNotFoundError: it is no longer a member.
        """
        urls = url_list(peer_urls)
        await self._client().update_member(self.id, urls)
        self.peer_urls = urls

    async def promote(self) -> None:
        """Promote this learner to a voting member (see ``promote_member``)."""
        await self._client().promote_member(self.id)
        self.is_learner = False

    @property
    def active_alarms(self) -> Awaitable[List[Any]]:
        """``await member.active_alarms``: the alarms currently raised for this member
        (a list of :class:`~etcd3.maintenance.Alarm`)."""
        return self._client().list_alarms(member_id=self.id)


class _MemberList:
    """``async for member in client.members``: the member list, fetched when the
    iteration starts (one MemberList call)."""

    def __init__(self, client: AioClusterMixin) -> None:
        self._client = client
        self._members: Optional[List[AioMember]] = None
        self._next = 0

    def __aiter__(self) -> AsyncIterator[AioMember]:
        return self

    async def __anext__(self) -> AioMember:
        if self._members is None:
            self._members = await self._client._member_list()
        if self._next >= len(self._members):
            raise StopAsyncIteration
        self._next += 1
        return self._members[self._next - 1]


class AioClusterMixin(AioServiceBase):
    """Membership methods of :class:`~etcd3.aio.Etcd3Client`."""

    @property
    def members(self) -> AsyncIterator[AioMember]:
        """``async for member in client.members``: every member of the cluster,
        learners included (each an :class:`AioMember`).

        The list is linearizable (etcd >= 3.5): it reflects every membership change
        made before, whichever member answers. etcd 3.4 answers from the member's own
        state, which may lag a change made through another member by a moment.
        """
        return _MemberList(self)

    async def _member_list(self) -> List[AioMember]:
        response = await self._call(_rpc.MEMBER_LIST, pb.MemberListRequest(linearizable=True))
        return [AioMember.from_pb(member, self)  # type: ignore[arg-type]
                for member in response.members]

    async def add_member(self, urls: Urls, is_learner: bool = False, *,
                         timeout: Timeout = UNSET) -> AioMember:
        """Register a new member with peer URL(s) ``urls``; then start its etcd process
        (with ``--initial-cluster-state=existing`` and an ``--initial-cluster`` listing
        every member, itself included). A learner (``is_learner=True``) replicates
        without voting until :meth:`promote_member`.

        :returns: the new :class:`AioMember` (its name is empty until it starts).
        :raises AlreadyExistsError: a member already has one of these peer URLs.
        """
        response = await self._call(_rpc.MEMBER_ADD,
                                    pb.MemberAddRequest(peerURLs=url_list(urls),
                                                        isLearner=bool(is_learner)),
                                    timeout=timeout, context=f"peer URLs {urls!r}")
        return AioMember.from_pb(response.member, self)  # type: ignore[arg-type]

    async def remove_member(self, member_id: int, *, timeout: Timeout = UNSET) -> None:
        """Remove member ``member_id`` from the cluster.

        :raises EntityNotFoundError: no such member.
        """
        await self._call(_rpc.MEMBER_REMOVE, pb.MemberRemoveRequest(ID=member_id),
                         timeout=timeout, context=f"member {member_id:x}")

    async def update_member(self, member_id: int, peer_urls: Urls, *,
                            timeout: Timeout = UNSET) -> None:
        """Change the peer URLs of member ``member_id``.

        :raises EntityNotFoundError: no such member.
        """
        await self._call(_rpc.MEMBER_UPDATE,
                         pb.MemberUpdateRequest(ID=member_id, peerURLs=url_list(peer_urls)),
                         timeout=timeout, context=f"member {member_id:x}")

    async def promote_member(self, member_id: int, *, timeout: Timeout = UNSET) -> None:
        """Make learner ``member_id`` a voting member.

        :raises PreconditionFailedError: the learner has not caught up with the leader
            yet: try again shortly; or the member is not a learner.
        :raises EntityNotFoundError: no such member.
        """
        await self._call(_rpc.MEMBER_PROMOTE, pb.MemberPromoteRequest(ID=member_id),
                         timeout=timeout, context=f"member {member_id:x}")
