"""Every etcd RPC this client calls, with its retry class.

``repeatable`` follows etcd's Go client (retry_interceptor.go): reads, status and list
calls may be retried on another endpoint; writes only when never sent. This table is
the single place where that decision is made.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Tuple

from .. import codec, events
from ..etcdrpc import rpc_pb2 as pb

_REQUIRE_LEADER_SERVICES = ("/etcdserverpb.KV/", "/etcdserverpb.Lease/",
                            "/etcdserverpb.Watch/", "/etcdserverpb.Auth/")


@dataclass(frozen=True)
class Method:
    """An etcd RPC: its path, wire (de)serializers and whether it may be repeated."""

    path: str
    serializer: Callable[[Any], bytes]
    deserializer: Callable[[bytes], Any]
    repeatable: bool
    kind: str = "unary_unary"
    key: Tuple[str, int] = field(init=False, repr=False, compare=False)
    #: Sent with require-leader metadata when routed (see etcd3._sync.transport).
    require_leader: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.path, id(self)))
        object.__setattr__(self, "require_leader",
                           self.path.startswith(_REQUIRE_LEADER_SERVICES))


def _wire(request: Any) -> bytes:
    """Request bytes: already encoded by :mod:`etcd3.codec`, or a protobuf message."""
    if type(request) is bytes:
        return request
    data: bytes = request.SerializeToString()
    return data


def _method(service: str, name: str, request: Any, response: Any, repeatable: bool,
            kind: str = "unary_unary") -> Method:
    return Method(f"/etcdserverpb.{service}/{name}", request.SerializeToString,
                  response.FromString, repeatable, kind)


# The hot KV calls skip protobuf objects: requests arrive as codec-encoded bytes (or a
# protobuf message) and replies are decoded by the codec into etcd3.results types.
RANGE = Method("/etcdserverpb.KV/Range", _wire, codec.decode_range_response, True)
PUT = Method("/etcdserverpb.KV/Put", _wire, codec.decode_put_response, False)
DELETE_RANGE = Method("/etcdserverpb.KV/DeleteRange", _wire,
                      codec.decode_delete_range_response, False)
TXN = Method("/etcdserverpb.KV/Txn", _wire, codec.decode_txn_response, False)
COMPACT = _method("KV", "Compact", pb.CompactionRequest, pb.CompactionResponse, False)

# Watch replies are decoded by the codec straight into etcd3.events objects, once per
# response however many subscribers share the watch.
WATCH = Method("/etcdserverpb.Watch/Watch", pb.WatchRequest.SerializeToString,
               functools.partial(codec.decode_watch_response,
                                 event_types=codec.event_layout(events.PutEvent,
                                                                events.DeleteEvent)),
               True, "stream_stream")

LEASE_GRANT = _method("Lease", "LeaseGrant", pb.LeaseGrantRequest, pb.LeaseGrantResponse,
                      False)
LEASE_REVOKE = _method("Lease", "LeaseRevoke", pb.LeaseRevokeRequest,
                       pb.LeaseRevokeResponse, False)
LEASE_KEEPALIVE = _method("Lease", "LeaseKeepAlive", pb.LeaseKeepAliveRequest,
                          pb.LeaseKeepAliveResponse, True, "stream_stream")
LEASE_TIME_TO_LIVE = _method("Lease", "LeaseTimeToLive", pb.LeaseTimeToLiveRequest,
                             pb.LeaseTimeToLiveResponse, True)
LEASE_LEASES = _method("Lease", "LeaseLeases", pb.LeaseLeasesRequest,
                       pb.LeaseLeasesResponse, True)

MEMBER_ADD = _method("Cluster", "MemberAdd", pb.MemberAddRequest, pb.MemberAddResponse,
                     False)
MEMBER_REMOVE = _method("Cluster", "MemberRemove", pb.MemberRemoveRequest,
                        pb.MemberRemoveResponse, False)
MEMBER_UPDATE = _method("Cluster", "MemberUpdate", pb.MemberUpdateRequest,
                        pb.MemberUpdateResponse, False)
MEMBER_LIST = _method("Cluster", "MemberList", pb.MemberListRequest, pb.MemberListResponse,
                      True)
MEMBER_PROMOTE = _method("Cluster", "MemberPromote", pb.MemberPromoteRequest,
                         pb.MemberPromoteResponse, False)

ALARM = _method("Maintenance", "Alarm", pb.AlarmRequest, pb.AlarmResponse, False)
ALARM_LIST = _method("Maintenance", "Alarm", pb.AlarmRequest, pb.AlarmResponse, True)
STATUS = _method("Maintenance", "Status", pb.StatusRequest, pb.StatusResponse, True)
DEFRAGMENT = _method("Maintenance", "Defragment", pb.DefragmentRequest,
                     pb.DefragmentResponse, False)
HASH = _method("Maintenance", "Hash", pb.HashRequest, pb.HashResponse, True)
HASH_KV = _method("Maintenance", "HashKV", pb.HashKVRequest, pb.HashKVResponse, True)
SNAPSHOT = _method("Maintenance", "Snapshot", pb.SnapshotRequest, pb.SnapshotResponse, True,
                   "unary_stream")
MOVE_LEADER = _method("Maintenance", "MoveLeader", pb.MoveLeaderRequest,
                      pb.MoveLeaderResponse, True)

AUTH_ENABLE = _method("Auth", "AuthEnable", pb.AuthEnableRequest, pb.AuthEnableResponse,
                      False)
AUTH_DISABLE = _method("Auth", "AuthDisable", pb.AuthDisableRequest,
                       pb.AuthDisableResponse, False)
AUTH_STATUS = _method("Auth", "AuthStatus", pb.AuthStatusRequest, pb.AuthStatusResponse,
                      True)
AUTHENTICATE = _method("Auth", "Authenticate", pb.AuthenticateRequest,
                       pb.AuthenticateResponse, False)
USER_ADD = _method("Auth", "UserAdd", pb.AuthUserAddRequest, pb.AuthUserAddResponse, False)
USER_GET = _method("Auth", "UserGet", pb.AuthUserGetRequest, pb.AuthUserGetResponse, True)
USER_LIST = _method("Auth", "UserList", pb.AuthUserListRequest, pb.AuthUserListResponse,
                    True)
USER_DELETE = _method("Auth", "UserDelete", pb.AuthUserDeleteRequest,
                      pb.AuthUserDeleteResponse, False)
USER_CHANGE_PASSWORD = _method("Auth", "UserChangePassword",
                               pb.AuthUserChangePasswordRequest,
                               pb.AuthUserChangePasswordResponse, False)
USER_GRANT_ROLE = _method("Auth", "UserGrantRole", pb.AuthUserGrantRoleRequest,
                          pb.AuthUserGrantRoleResponse, False)
USER_REVOKE_ROLE = _method("Auth", "UserRevokeRole", pb.AuthUserRevokeRoleRequest,
                           pb.AuthUserRevokeRoleResponse, False)
ROLE_ADD = _method("Auth", "RoleAdd", pb.AuthRoleAddRequest, pb.AuthRoleAddResponse, False)
ROLE_GET = _method("Auth", "RoleGet", pb.AuthRoleGetRequest, pb.AuthRoleGetResponse, True)
ROLE_LIST = _method("Auth", "RoleList", pb.AuthRoleListRequest, pb.AuthRoleListResponse,
                    True)
ROLE_DELETE = _method("Auth", "RoleDelete", pb.AuthRoleDeleteRequest,
                      pb.AuthRoleDeleteResponse, False)
ROLE_GRANT_PERMISSION = _method("Auth", "RoleGrantPermission",
                                pb.AuthRoleGrantPermissionRequest,
                                pb.AuthRoleGrantPermissionResponse, False)
ROLE_REVOKE_PERMISSION = _method("Auth", "RoleRevokePermission",
                                 pb.AuthRoleRevokePermissionRequest,
                                 pb.AuthRoleRevokePermissionResponse, False)
