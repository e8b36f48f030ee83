"""Maintenance: member status, alarms, defragmentation, hashes, snapshots, leadership.

Status, Defragment, Hash and HashKV describe or act on *one member*: each takes
``endpoint=`` (``"host:port"``, a URL or an :class:`~etcd3.pool.Endpoint` of this
client) to choose it; without it the call goes to any healthy endpoint.
:meth:`MaintenanceMixin.statuses` asks every endpoint.
"""

from __future__ import annotations

import enum
from typing import IO, Any, Callable, Dict, List, Optional, Union

import grpc

from . import exceptions
from ._grpc import errors as _errors
from ._grpc import rpc as _rpc
from ._sync.base import UNSET, ServiceBase, Timeout
from .cluster import Member
from .etcdrpc import rpc_pb2 as pb
from .pool import Endpoint, EndpointState
from .results import ResponseHeader

EndpointArg = Any  # "host:port", a URL or an etcd3.Endpoint


class AlarmType(enum.IntEnum):
    """etcd's alarm kinds (compare equal to python-etcd3's raw ints)."""

    NONE = pb.NONE
    NOSPACE = pb.NOSPACE
    CORRUPT = pb.CORRUPT


_ALARM_NAMES = {"none": AlarmType.NONE, "no space": AlarmType.NOSPACE,
                "nospace": AlarmType.NOSPACE, "corrupt": AlarmType.CORRUPT}


class Alarm:
    """An alarm raised on a member: ``alarm_type`` (:class:`AlarmType`), ``member_id``."""

    __slots__ = ("alarm_type", "member_id")

    def __init__(self, alarm_type: int, member_id: int) -> None:
        self.alarm_type = AlarmType(alarm_type)
        self.member_id = member_id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Alarm):
            return NotImplemented
        return (self.alarm_type, self.member_id) == (other.alarm_type, other.member_id)

    def __hash__(self) -> int:
        return hash((self.alarm_type, self.member_id))

    def __repr__(self) -> str:
        return f"Alarm({self.alarm_type.name}, member_id={self.member_id})"


class Status:
    """One member's status (python-etcd3's fields first).

    ``version`` (server version), ``db_size`` (bytes), ``leader`` (the leader's
    :class:`~etcd3.cluster.Member`, or None without a leader), ``raft_index``,
    ``raft_term``; also ``member_id`` (the answering member), ``endpoint`` (where it
    was asked), ``raft_applied_index``, ``db_size_in_use``, ``is_learner``, ``errors``
    and ``header``.
    """

    def __init__(self, version: str, db_size: int, leader: Optional[Member], raft_index: int,
                 raft_term: int, **extra: Any) -> None:
        self.version = version
        self.db_size = db_size
        self.leader = leader
        self.raft_index = raft_index
        self.raft_term = raft_term
        self.member_id: int = extra.get("member_id", 0)
        self.endpoint: Optional[str] = extra.get("endpoint")
        self.raft_applied_index: int = extra.get("raft_applied_index", 0)
        self.db_size_in_use: int = extra.get("db_size_in_use", 0)
        self.is_learner: bool = extra.get("is_learner", False)
        self.errors: List[str] = list(extra.get("errors", ()))
        self.header: Any = extra.get("header")  # a ResponseHeader

    @property
    def is_leader(self) -> bool:
        """True when the answering member is the leader."""
        return self.leader is not None and self.leader.id == self.member_id

    def __repr__(self) -> str:
        leader = self.leader.id if self.leader is not None else None
        return (f"Status(endpoint={self.endpoint!r}, member_id={self.member_id}, "
                f"version={self.version!r}, db_size={self.db_size}, leader={leader}, "
                f"raft_index={self.raft_index}, raft_term={self.raft_term})")


class HashKV:
    """A member's hash of its MVCC keyspace up to ``hash_revision``."""

    __slots__ = ("hash", "compact_revision", "hash_revision", "member_id")

    def __init__(self, hash: int, compact_revision: int, hash_revision: int,
                 member_id: int) -> None:
        self.hash = hash
        self.compact_revision = compact_revision
        self.hash_revision = hash_revision
        self.member_id = member_id

    def __repr__(self) -> str:
        return (f"HashKV(hash={self.hash}, compact_revision={self.compact_revision}, "
                f"hash_revision={self.hash_revision}, member_id={self.member_id})")


def _header(header: Any) -> Any:
    """A :class:`~etcd3.results.ResponseHeader` from a protobuf header."""
    return ResponseHeader(header.cluster_id, header.member_id, header.revision,
                          header.raft_term)


def _alarm_type(value: Union[str, int]) -> AlarmType:
    if isinstance(value, str):
        try:
            return _ALARM_NAMES[value.lower()]
        except KeyError:
            raise ValueError(f"unknown alarm type {value!r}; use 'none', 'no space' or "
                             "'corrupt'") from None
    return AlarmType(value)


class MaintenanceMixin(ServiceBase):
    """Maintenance calls of the client."""

    def _endpoint_state(self, endpoint: EndpointArg) -> Optional[EndpointState]:
        """The pool state of ``endpoint`` (None: let the pool pick).

        :raises ValueError: not one of this client's endpoints.
        :raises ClientClosedError: the client is closed.
        """
        if endpoint is None:
            return None
        if self._transport.closed:
            raise exceptions.ClientClosedError("this etcd3 client has been closed")
        if isinstance(endpoint, EndpointState):
            return endpoint
        name = endpoint.netloc if isinstance(endpoint, Endpoint) else (
            str(endpoint).split("://", 1)[-1].rstrip("/"))
        for state in self._transport.pool.states:
            if state.name == name:
                return state
        raise ValueError(f"{endpoint!r} is not one of this client's endpoints "
                         f"({self._transport.pool.describe()})")

    def _on(self, method: Any, request: Any, endpoint: EndpointArg, timeout: Any,
            context: str = "") -> Any:
        return self._transport.call(method, request, timeout=timeout, context=context,
                                    endpoint=self._endpoint_state(endpoint))

    # -- status -------------------------------------------------------------------

    def _members_by_id(self) -> Dict[int, Member]:
        return {member.id: member for member in self.members}  # type: ignore[attr-defined]

    def _status_response(self, endpoint: EndpointArg, timeout: Any) -> Any:
        return self._on(_rpc.STATUS, pb.StatusRequest(), endpoint, timeout)

    @staticmethod
    def _status(response: Any, members: Dict[int, Member], endpoint: Optional[str]) -> Status:
        return Status(response.version, response.dbSize, members.get(response.leader),
                      response.raftIndex, response.raftTerm,
                      member_id=response.header.member_id, endpoint=endpoint,
                      raft_applied_index=response.raftAppliedIndex,
                      db_size_in_use=response.dbSizeInUse,
                      is_learner=bool(response.isLearner), errors=response.errors,
                      header=_header(response.header))

    def status(self, endpoint: EndpointArg = None, *, timeout: Timeout = UNSET) -> Status:
        """The status of the member at ``endpoint`` (default: any healthy endpoint).

        :raises ValueError: ``endpoint`` is not one of this client's endpoints.
        """
        response = self._status_response(endpoint, timeout)
        state = self._endpoint_state(endpoint)
        return self._status(response, self._members_by_id(),
                            None if state is None else state.name)

    def statuses(self, *, timeout: Timeout = UNSET
                 ) -> Dict[str, Union[Status, exceptions.Etcd3Exception]]:
        """The status of every endpoint of this client, keyed by ``"host:port"``.

        An endpoint that could not answer maps to the exception it raised (so one
        down member does not hide the others).
        """
        results: Dict[str, Union[Status, exceptions.Etcd3Exception]] = {}
        responses: Dict[str, Any] = {}
        for state in self._transport.pool.states:
            try:
                responses[state.name] = self._status_response(state, timeout)
            except exceptions.Etcd3Exception as error:
                results[state.name] = error
        members = self._members_by_id() if responses else {}
        for name, response in responses.items():
            results[name] = self._status(response, members, name)
        return {state.name: results[state.name] for state in self._transport.pool.states}

    # -- alarms -------------------------------------------------------------------

    def _alarm(self, action: Any, member_id: int, alarm: AlarmType, timeout: Any,
               method: Any = _rpc.ALARM) -> List[Alarm]:
        response = self._call(method, pb.AlarmRequest(action=action, memberID=member_id,
                                                      alarm=int(alarm)),  # type: ignore[arg-type]
                              timeout=timeout)
        return [Alarm(a.alarm, a.memberID) for a in response.alarms]

    def create_alarm(self, member_id: int = 0, *, timeout: Timeout = UNSET) -> List[Alarm]:
        """Raise a NOSPACE alarm for ``member_id`` (0: not tied to a member).

        While it is raised the cluster refuses writes (:class:`NoSpaceError`).
        :returns: the alarms raised by this call.
        """
        return self._alarm(pb.AlarmRequest.ACTIVATE, member_id, AlarmType.NOSPACE, timeout)

    def list_alarms(self, member_id: int = 0, alarm_type: Union[str, int] = "none", *,
                    timeout: Timeout = UNSET) -> List[Alarm]:
        """The active alarms, of member ``member_id`` (0: all) and of ``alarm_type``
        (``'none'``: every type; or ``'no space'``, ``'corrupt'``)."""
        wanted = _alarm_type(alarm_type)
        alarms = self._alarm(pb.AlarmRequest.GET, 0, AlarmType.NONE, timeout,
                             _rpc.ALARM_LIST)
        return [a for a in alarms
                if (not member_id or a.member_id == member_id)
                and (wanted is AlarmType.NONE or a.alarm_type is wanted)]

    def disarm_alarm(self, member_id: int = 0, *, timeout: Timeout = UNSET) -> List[Alarm]:
        """Clear the active alarms of ``member_id`` (0: every active alarm, as
        ``etcdctl alarm disarm`` does); returns the alarms cleared."""
        cleared: List[Alarm] = []
        for alarm in self.list_alarms(member_id, timeout=timeout):
            cleared += self._alarm(pb.AlarmRequest.DEACTIVATE, alarm.member_id,
                                   alarm.alarm_type, timeout)
        return cleared

    # -- per-member maintenance -------------------------------------------------------

    def defragment(self, endpoint: EndpointArg = None, *, timeout: Timeout = UNSET) -> None:
        """Defragment the backend database of the member at ``endpoint`` (default: any),
        giving freed space back to the file system. The member blocks reads and writes
        meanwhile: defragment one member at a time."""
        self._on(_rpc.DEFRAGMENT, pb.DefragmentRequest(), endpoint, timeout)

    def hash(self, endpoint: EndpointArg = None, *, timeout: Timeout = UNSET) -> int:
        """The hash of the whole backend of the member at ``endpoint`` (default: any)."""
        response = self._on(_rpc.HASH, pb.HashRequest(), endpoint, timeout)
        return int(response.hash)

    def hash_kv(self, revision: int = 0, endpoint: EndpointArg = None, *,
                timeout: Timeout = UNSET) -> HashKV:
        """The hash of the keyspace up to ``revision`` (0: the latest) on one member;
        equal hashes at the same revision mean the members hold the same data."""
        response = self._on(_rpc.HASH_KV, pb.HashKVRequest(revision=revision), endpoint,
                            timeout)
        return HashKV(int(response.hash), response.compact_revision,
                      response.hash_revision, response.header.member_id)

    def snapshot(self, file_obj: IO[bytes], progress: Optional[Callable[[int], Any]] = None,
                 endpoint: EndpointArg = None, *, timeout: Optional[float] = None) -> int:
        """Stream a snapshot of one member's database into ``file_obj``.

        :param progress: called with the number of bytes written so far after each chunk.
        :param timeout: seconds for the whole snapshot (default: no deadline).
        :returns: the number of bytes written. The file can be restored with
            ``etcdutl snapshot restore``.
        :raises Etcd3Exception: the stream failed; the file is then incomplete.
        """
        transport = self._transport
        written = 0
        refreshed = False
        while True:
            call, state = transport.open_stream(_rpc.SNAPSHOT, pb.SnapshotRequest(),
                                                timeout=timeout,
                                                endpoint=self._endpoint_state(endpoint))
            try:
                for response in call:
                    file_obj.write(response.blob)
                    written += len(response.blob)
                    if progress is not None:
                        progress(written)
            except grpc.RpcError as error:
                transport.report_failure(state, error)
                if (not written and not refreshed and transport.token_provider is not None
                        and _errors.is_auth_token_error(error)):
                    refreshed = True
                    transport.refresh_token(state, transport.metadata_for(state))
                    continue
                raise _errors.translate(error, context=f"snapshot, {written} bytes written",
                                        endpoint=state.name) from error
            transport.report_success(state)
            return written

    def move_leader(self, member_id: int, *, timeout: Timeout = UNSET) -> None:
        """Hand leadership to member ``member_id`` (a voting member).

        The request goes to the current leader (found by asking each endpoint).
        :raises ConnectionFailedError: no endpoint of this client is the leader.
        :raises Etcd3Exception: the transfer failed (e.g. the target is a learner).
        """
        leader_endpoint = None
        for state in self._transport.pool.states:
            try:
                response = self._status_response(state, timeout)
            except exceptions.Etcd3Exception:
                continue
            if response.leader and response.leader == response.header.member_id:
                leader_endpoint = state
                break
        if leader_endpoint is None:
            raise exceptions.ConnectionFailedError(
                "move_leader: none of this client's endpoints is the current leader "
                f"({self._transport.pool.describe()}); add the leader's endpoint")
        self._on(_rpc.MOVE_LEADER, pb.MoveLeaderRequest(targetID=member_id), leader_endpoint,
                 timeout, context=f"member {member_id:x}")
