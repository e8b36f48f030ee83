"""Maintenance: member status, alarms, defragmentation, hashes, snapshots, leadership.

Status, Defragment, Hash and HashKV describe or act on *one member*: each takes
``endpoint=`` (``"host:port"``, a URL or an :class:`~etcd3.pool.Endpoint` of this
client) to choose it; without it the call goes to any healthy endpoint.
:meth:`MaintenanceMixin.statuses` asks every endpoint.
"""

from __future__ import annotations

from typing import IO, Any, Callable, Dict, List, Optional, Union

import grpc

from . import exceptions
from ._core import maintenance_rules as _rules
from ._core.maintenance_rules import Alarm, AlarmType, EndpointArg, HashKV, Status
from ._grpc import errors as _errors
from ._grpc import rpc as _rpc
from ._grpc.error_causes import token_rejected
from ._sync.base import UNSET, ServiceBase, Timeout
from .cluster import Member
from .etcdrpc import rpc_pb2 as pb
from .pool import EndpointState


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
        pool = self._transport.pool
        state: EndpointState = _rules.choose_endpoint(pool.states, endpoint,
                                                      pool.describe())
        return state

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
        return _rules.status_of(response, members, endpoint)

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
        response = self._call(method, _rules.alarm_request(action, member_id, alarm),
                              timeout=timeout)
        return _rules.alarms_of(response)

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
        wanted = _rules.alarm_type(alarm_type)
        alarms = self._alarm(pb.AlarmRequest.GET, 0, AlarmType.NONE, timeout,
                             _rpc.ALARM_LIST)
        return _rules.select_alarms(alarms, member_id, wanted)

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
        return _rules.hash_kv_of(response)

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
                if _rules.reopen_snapshot(written, refreshed,
                                          transport.token_provider is not None,
                                          token_rejected(error)):
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
            if _rules.is_leader_status(response):
                leader_endpoint = state
                break
        if leader_endpoint is None:
            raise _rules.no_leader_endpoint(self._transport.pool.describe())
        self._on(_rpc.MOVE_LEADER, pb.MoveLeaderRequest(targetID=member_id), leader_endpoint,
                 timeout, context=f"member {member_id:x}")


__all__ = ["Alarm", "AlarmType", "HashKV", "MaintenanceMixin", "Status"]
