"""Maintenance for the asyncio client: member status, alarms, defragmentation, hashes,
snapshots and leadership (the threaded :mod:`etcd3.maintenance`'s methods, awaited;
results are the same :class:`~etcd3.maintenance.Status`, ``Alarm`` and ``HashKV``).

Status, Defragment, Hash and HashKV describe or act on *one member*: each takes
``endpoint=`` (``"host:port"``, a URL or an :class:`~etcd3.pool.Endpoint` of this
client); without it the call goes to any healthy endpoint. A snapshot is an async
byte stream: :meth:`AioMaintenanceMixin.snapshot_stream`, or
:meth:`AioMaintenanceMixin.snapshot` to write it into a file.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import (
    IO,
    Any,
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    List,
    Optional,
    Union,
)

import grpc

from .. import exceptions
from .._core import maintenance_rules as _rules
from .._core.maintenance_rules import Alarm, AlarmType, EndpointArg, HashKV, Status
from .._grpc import errors as _errors
from .._grpc import rpc as _rpc
from .._grpc.error_causes import token_rejected
from ..etcdrpc import rpc_pb2 as pb
from ..pool import EndpointState
from ._base import UNSET, AioServiceBase, Timeout

__all__ = ["AioMaintenanceMixin", "Alarm", "AlarmType", "HashKV", "Status"]

Progress = Optional[Callable[[int], Any]]


class AioMaintenanceMixin(AioServiceBase):
    """Maintenance methods of :class:`~etcd3.aio.Etcd3Client`."""

    # AioClusterMixin's (declared, not defined, so the client's mixin order does not
    # hide it): statuses name the leader's member.
    _member_list: Callable[[], Awaitable[List[Any]]]

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

    async def _on(self, method: Any, request: Any, endpoint: EndpointArg, timeout: Any,
                  context: str = "") -> Any:
        return await self._transport.call(method, request, timeout=timeout,
                                          context=context,
                                          endpoint=self._endpoint_state(endpoint))

    # -- status -------------------------------------------------------------------

    async def _members_by_id(self) -> Dict[int, Any]:
        return {member.id: member for member in await self._member_list()}

    async def _status_response(self, endpoint: EndpointArg, timeout: Any) -> Any:
        return await self._on(_rpc.STATUS, pb.StatusRequest(), endpoint, timeout)

    async def status(self, endpoint: EndpointArg = None, *,
                     timeout: Timeout = UNSET) -> Status:
        """The status of the member at ``endpoint`` (default: any healthy endpoint).

        :raises ValueError: ``endpoint`` is not one of this client's endpoints.
        """
        state = self._endpoint_state(endpoint)
        response = await self._status_response(state, timeout)
        return _rules.status_of(response, await self._members_by_id(),
                                None if state is None else state.name)

    async def statuses(self, *, timeout: Timeout = UNSET
                       ) -> Dict[str, Union[Status, exceptions.Etcd3Exception]]:
        """The status of every endpoint of this client, keyed by ``"host:port"``, all
        asked at once. An endpoint that could not answer maps to the exception it
        raised (so one down member does not hide the others)."""
        states = list(self._transport.pool.states)

        async def ask(state: EndpointState) -> Any:
            try:
                return await self._status_response(state, timeout)
            except exceptions.Etcd3Exception as error:
                return error

        answers = await asyncio.gather(*(ask(state) for state in states))
        members = (await self._members_by_id()
                   if any(not isinstance(a, exceptions.Etcd3Exception) for a in answers)
                   else {})
        return {state.name: (answer if isinstance(answer, exceptions.Etcd3Exception)
                             else _rules.status_of(answer, members, state.name))
                for state, answer in zip(states, answers)}

    # -- alarms -------------------------------------------------------------------

    async def _alarm(self, action: Any, member_id: int, alarm: AlarmType, timeout: Any,
                     method: Any = _rpc.ALARM) -> List[Alarm]:
        response = await self._call(method, _rules.alarm_request(action, member_id, alarm),
                                    timeout=timeout)
        return _rules.alarms_of(response)

    async def create_alarm(self, member_id: int = 0, *,
                           timeout: Timeout = UNSET) -> List[Alarm]:
        """Raise a NOSPACE alarm for ``member_id`` (0: not tied to a member).

        While it is raised the cluster refuses writes (:class:`NoSpaceError`).
        :returns: the alarms raised by this call.
        """
        return await self._alarm(pb.AlarmRequest.ACTIVATE, member_id, AlarmType.NOSPACE,
                                 timeout)

    async def list_alarms(self, member_id: int = 0, alarm_type: Union[str, int] = "none", *,
                          timeout: Timeout = UNSET) -> List[Alarm]:
        """The active alarms, of member ``member_id`` (0: all) and of ``alarm_type``
        (``'none'``: every type; or ``'no space'``, ``'corrupt'``).

        :raises ValueError: an unknown alarm type.
        """
        wanted = _rules.alarm_type(alarm_type)
        alarms = await self._alarm(pb.AlarmRequest.GET, 0, AlarmType.NONE, timeout,
                                   _rpc.ALARM_LIST)
        return _rules.select_alarms(alarms, member_id, wanted)

    async def disarm_alarm(self, member_id: int = 0, *,
                           timeout: Timeout = UNSET) -> List[Alarm]:
        """Clear the active alarms of ``member_id`` (0: every active alarm, as
        ``etcdctl alarm disarm`` does); returns the alarms cleared."""
        cleared: List[Alarm] = []
        for alarm in await self.list_alarms(member_id, timeout=timeout):
            cleared += await self._alarm(pb.AlarmRequest.DEACTIVATE, alarm.member_id,
                                         alarm.alarm_type, timeout)
        return cleared

    # -- per-member maintenance -------------------------------------------------------

    async def defragment(self, endpoint: EndpointArg = None, *,
                         timeout: Timeout = UNSET) -> None:
        """Defragment the backend database of the member at ``endpoint`` (default: any),
        giving freed space back to the file system. The member blocks reads and writes
        meanwhile: defragment one member at a time."""
        await self._on(_rpc.DEFRAGMENT, pb.DefragmentRequest(), endpoint, timeout)

    async def hash(self, endpoint: EndpointArg = None, *, timeout: Timeout = UNSET) -> int:
        """The hash of the whole backend of the member at ``endpoint`` (default: any)."""
        response = await self._on(_rpc.HASH, pb.HashRequest(), endpoint, timeout)
        return int(response.hash)

    async def hash_kv(self, revision: int = 0, endpoint: EndpointArg = None, *,
                      timeout: Timeout = UNSET) -> HashKV:
        """The hash of the keyspace up to ``revision`` (0: the latest) on one member;
        equal hashes at the same revision mean the members hold the same data."""
        response = await self._on(_rpc.HASH_KV, pb.HashKVRequest(revision=revision),
                                  endpoint, timeout)
        return _rules.hash_kv_of(response)

    # -- snapshots --------------------------------------------------------------------

    def snapshot_stream(self, progress: Progress = None, endpoint: EndpointArg = None, *,
                        timeout: Optional[float] = None) -> AsyncIterator[bytes]:
        """``async for chunk in client.snapshot_stream()``: a snapshot of one member's
        database (``endpoint``, default: any), as it arrives. Joined, the chunks are a
        file ``etcdutl snapshot restore`` restores.

        :param progress: called with the number of bytes received so far, before
            each chunk is handed over.
        :param timeout: seconds for the whole snapshot (default: no deadline).
        :raises Etcd3Exception: the stream failed; what was received is incomplete.
        """
        return self._snapshot_chunks(progress, endpoint, timeout)

    async def snapshot(self, file_obj: IO[bytes], progress: Progress = None,
                       endpoint: EndpointArg = None, *,
                       timeout: Optional[float] = None) -> int:
        """Stream a snapshot of one member's database into ``file_obj`` (a binary file;
        a ``write`` that returns an awaitable, as aiofiles' does, is awaited).

        :param progress: called with the number of bytes written so far after each chunk.
        :param timeout: seconds for the whole snapshot (default: no deadline).
        :returns: the number of bytes written. The file can be restored with
            ``etcdutl snapshot restore``.
        :raises Etcd3Exception: the stream failed; the file is then incomplete.
        """
        written = 0
        chunks = self._snapshot_chunks(None, endpoint, timeout)
        try:
            async for blob in chunks:
                result = file_obj.write(blob)
                if inspect.isawaitable(result):
                    await result
                written += len(blob)
                if progress is not None:
                    progress(written)
        finally:
            await chunks.aclose()
        return written

    async def _snapshot_chunks(self, progress: Progress, endpoint: EndpointArg,
                               timeout: Optional[float]) -> AsyncGenerator[bytes, None]:
        transport = self._transport
        received = 0
        reopened = False
        while True:
            call, state = await transport.open_stream(
                _rpc.SNAPSHOT, pb.SnapshotRequest(), timeout=timeout,
                endpoint=self._endpoint_state(endpoint))
            try:
                while True:
                    try:
                        response = await call.read()
                    except grpc.RpcError as error:
                        transport.report_failure(state, error)
                        if _rules.reopen_snapshot(received, reopened,
                                                  transport.token_provider is not None,
                                                  token_rejected(error)):
                            reopened = True
                            await transport.refresh_token(
                                state, await transport.metadata_for(state))
                            break
                        raise _errors.translate(
                            error, context=f"snapshot, {received} bytes received",
                            endpoint=state.name) from error
                    if response is grpc.aio.EOF:
                        transport.report_success(state)
                        return
                    blob = response.blob
                    received += len(blob)
                    if progress is not None:
                        progress(received)
                    yield blob
            finally:
                call.cancel()

    # -- leadership -------------------------------------------------------------------

    async def move_leader(self, member_id: int, *, timeout: Timeout = UNSET) -> None:
        """Hand leadership to member ``member_id`` (a voting member).

        The request goes to the current leader (found by asking each endpoint).
        :raises ConnectionFailedError: no endpoint of this client is the leader.
        :raises Etcd3Exception: the transfer failed (e.g. the target is a learner).
        """
        leader_endpoint = None
        for state in self._transport.pool.states:
            try:
                response = await self._status_response(state, timeout)
            except exceptions.Etcd3Exception:
                continue
            if _rules.is_leader_status(response):
                leader_endpoint = state
                break
        if leader_endpoint is None:
            raise _rules.no_leader_endpoint(self._transport.pool.describe())
        await self._on(_rpc.MOVE_LEADER, pb.MoveLeaderRequest(targetID=member_id),
                       leader_endpoint, timeout, context=f"member {member_id:x}")
