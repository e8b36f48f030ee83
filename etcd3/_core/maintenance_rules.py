"""What maintenance calls return and decide, for every driver: alarms, statuses,
hashes, choosing one member's endpoint, finding the leader, and when a snapshot
stream may be reopened. The drivers (:mod:`etcd3.maintenance`,
:mod:`etcd3.aio.maintenance`) do the calls."""

from __future__ import annotations

import enum
from typing import Any, Dict, List, Optional, Sequence, Union

from .. import exceptions
from ..etcdrpc import rpc_pb2 as pb
from ..results import ResponseHeader

EndpointArg = Any  # "host:port", a URL, an etcd3.Endpoint or a pool's EndpointState


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
    ``Member``, or None without a leader), ``raft_index``, ``raft_term``; also
    ``member_id`` (the answering member), ``endpoint`` (where it was asked),
    ``raft_applied_index``, ``db_size_in_use``, ``is_learner``, ``errors`` and
    ``header``.
    """

    def __init__(self, version: str, db_size: int, leader: Optional[Any], raft_index: int,
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


def header(response_header: Any) -> ResponseHeader:
    """A :class:`~etcd3.results.ResponseHeader` from a protobuf header."""
    return ResponseHeader(response_header.cluster_id, response_header.member_id,
                          response_header.revision, response_header.raft_term)


def alarm_type(value: Union[str, int]) -> AlarmType:
    """``value`` (a name such as ``'no space'``, or etcd's number) as an AlarmType.

    :raises ValueError: an unknown alarm type.
    """
    if isinstance(value, str):
        try:
            return _ALARM_NAMES[value.lower()]
        except KeyError:
            raise ValueError(f"unknown alarm type {value!r}; use 'none', 'no space' or "
                             "'corrupt'") from None
    return AlarmType(value)


def alarms_of(response: Any) -> List[Alarm]:
    """The alarms of an AlarmResponse."""
    return [Alarm(a.alarm, a.memberID) for a in response.alarms]


def alarm_request(action: Any, member_id: int, alarm: AlarmType) -> pb.AlarmRequest:
    """An AlarmRequest."""
    return pb.AlarmRequest(action=action, memberID=member_id,
                           alarm=int(alarm))  # type: ignore[arg-type]


def select_alarms(alarms: List[Alarm], member_id: int, wanted: AlarmType) -> List[Alarm]:
    """The alarms of member ``member_id`` (0: all) and of type ``wanted`` (NONE: all)."""
    return [a for a in alarms
            if (not member_id or a.member_id == member_id)
            and (wanted is AlarmType.NONE or a.alarm_type is wanted)]


def status_of(response: Any, members: Dict[int, Any], endpoint: Optional[str]) -> Status:
    """The :class:`Status` of a StatusResponse; ``members`` maps ids to Members (for
    ``leader``), ``endpoint`` is where it was asked (None: any)."""
    return Status(response.version, response.dbSize, members.get(response.leader),
                  response.raftIndex, response.raftTerm,
                  member_id=response.header.member_id, endpoint=endpoint,
                  raft_applied_index=response.raftAppliedIndex,
                  db_size_in_use=response.dbSizeInUse,
                  is_learner=bool(response.isLearner), errors=response.errors,
                  header=header(response.header))


def hash_kv_of(response: Any) -> HashKV:
    """The :class:`HashKV` of a HashKVResponse."""
    return HashKV(int(response.hash), response.compact_revision, response.hash_revision,
                  response.header.member_id)


def is_leader_status(response: Any) -> bool:
    """True when the member that sent this StatusResponse is the leader."""
    return bool(response.leader) and response.leader == response.header.member_id


def no_leader_endpoint(described: str) -> exceptions.ConnectionFailedError:
    """move_leader's error when no endpoint (``described``) is the leader."""
    return exceptions.ConnectionFailedError(
        "move_leader: none of this client's endpoints is the current leader "
        f"({described}); add the leader's endpoint")


def choose_endpoint(states: Sequence[Any], endpoint: EndpointArg, described: str) -> Any:
    """The pool state (of ``states``) that ``endpoint`` names: ``"host:port"``, a URL,
    an ``Endpoint`` (by its ``netloc``) or one of the states itself.

    :raises ValueError: not one of these endpoints.
    """
    if any(endpoint is state for state in states):
        return endpoint
    netloc = getattr(endpoint, "netloc", None)
    name = netloc if isinstance(netloc, str) else (
        str(endpoint).split("://", 1)[-1].rstrip("/"))
    for state in states:
        if state.name == name:
            return state
    raise ValueError(f"{endpoint!r} is not one of this client's endpoints ({described})")


def reopen_snapshot(written: int, reopened: bool, has_credentials: bool,
                    token_rejected: bool) -> bool:
    """True when a failed snapshot stream is opened once more: its token was
    rejected before any byte arrived (a fresh token is fetched first)."""
    return not written and not reopened and has_credentials and token_rejected
