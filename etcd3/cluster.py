"""Cluster membership: list, add (as voter or learner), promote, update, remove."""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, Optional, Sequence

from ._core.members import MemberInfo, Urls, member_fields
from ._core.members import url_list as _url_list
from ._grpc import rpc as _rpc
from ._sync.base import UNSET, ServiceBase, Timeout
from ._sync.client_api import ClusterClient, required
from .etcdrpc import rpc_pb2 as pb


class Member(MemberInfo):
    """A member of the etcd cluster (python-etcd3-compatible).

    ``id`` (int), ``name`` (empty until a newly added member has started),
    ``peer_urls`` and ``client_urls`` (lists of str) and ``is_learner``.
    """

    __slots__ = ("_etcd_client",)

    def __init__(self, id: int, name: str, peer_urls: Sequence[str],
                 client_urls: Sequence[str], etcd_client: Optional[ClusterClient] = None,
                 is_learner: bool = False) -> None:
        super().__init__(id, name, peer_urls, client_urls, is_learner)
        self._etcd_client = etcd_client

    @classmethod
    def from_pb(cls, member: Any, etcd_client: Optional[ClusterClient]) -> Member:
        """Build from an ``etcdserverpb.Member`` message."""
        id, name, peer_urls, client_urls, is_learner = member_fields(member)
        return cls(id, name, peer_urls, client_urls, etcd_client=etcd_client,
                   is_learner=is_learner)

    def remove(self) -> None:
        """Remove this member from the cluster.

        :raises EntityNotFoundError: it is no longer a member.
        """
        required(self._etcd_client, self).remove_member(self.id)

    def update(self, peer_urls: Urls) -> None:
        """Change this member's peer URLs.

        :raises EntityNotFoundError: it is no longer a member.
        """
        required(self._etcd_client, self).update_member(self.id, peer_urls)
        self.peer_urls = _url_list(peer_urls)

    def promote(self) -> None:
        """Promote this learner to a voting member (see :meth:`promote_member`)."""
        required(self._etcd_client, self).promote_member(self.id)
        self.is_learner = False

    @property
    def active_alarms(self) -> List[Any]:
        """The alarms currently raised for this member (a list of ``Alarm``)."""
        return list(required(self._etcd_client, self).list_alarms(member_id=self.id))


class ClusterMixin(ServiceBase):
    """Membership calls of the client."""

    # MaintenanceMixin's (declared, not defined, so the client's mixin order does not
    # hide it): a Member asks for its alarms.
    list_alarms: Callable[..., List[Any]]

    @property
    def members(self) -> Iterator[Member]:
        """Every member of the cluster, learners included (yields :class:`Member`).

        The list is linearizable (etcd >= 3.5): it reflects every membership change
        made before, whichever member answers. etcd 3.4 answers from the member's own
        state, which may lag a change made through another member by a moment.
        """
        response = self._call(_rpc.MEMBER_LIST, pb.MemberListRequest(linearizable=True))
        for member in response.members:
            yield Member.from_pb(member, self)

    def add_member(self, urls: Urls, is_learner: bool = False, *,
                   timeout: Timeout = UNSET) -> Member:
        """Register a new member with peer URL(s) ``urls``; then start its etcd process.

        Start the new process with ``--initial-cluster-state=existing`` and an
        ``--initial-cluster`` listing every member, itself included. A learner
        (``is_learner=True``) replicates without voting until :meth:`promote_member`.
        :returns: the new :class:`Member` (its name is empty until it starts).
        :raises AlreadyExistsError: a member already has one of these peer URLs.
        """
        response = self._call(_rpc.MEMBER_ADD,
                              pb.MemberAddRequest(peerURLs=_url_list(urls),
                                                  isLearner=bool(is_learner)),
                              timeout=timeout, context=f"peer URLs {urls!r}")
        return Member.from_pb(response.member, self)

    def remove_member(self, member_id: int, *, timeout: Timeout = UNSET) -> None:
        """Remove member ``member_id`` from the cluster.

        :raises EntityNotFoundError: no such member.
        """
        self._call(_rpc.MEMBER_REMOVE, pb.MemberRemoveRequest(ID=member_id), timeout=timeout,
                   context=f"member {member_id:x}")

    def update_member(self, member_id: int, peer_urls: Urls, *, timeout: Timeout = UNSET) -> None:
        """Change the peer URLs of member ``member_id``.

        :raises EntityNotFoundError: no such member.
        """
        self._call(_rpc.MEMBER_UPDATE,
                   pb.MemberUpdateRequest(ID=member_id, peerURLs=_url_list(peer_urls)),
                   timeout=timeout, context=f"member {member_id:x}")

    def promote_member(self, member_id: int, *, timeout: Timeout = UNSET) -> None:
        """Make learner ``member_id`` a voting member.

        :raises PreconditionFailedError: the learner has not caught up with the leader
            yet ("can only promote a learner member which is in sync with leader"):
            try again shortly; or the member is not a learner.
        :raises EntityNotFoundError: no such member.
        :raises UnsupportedByProxyError: the endpoint is etcd's gRPC proxy, which does
            not forward promotions.
        """
        self._call(_rpc.MEMBER_PROMOTE, pb.MemberPromoteRequest(ID=member_id),
                   timeout=timeout, context=f"member {member_id:x}")
