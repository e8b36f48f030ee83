"""Users, roles and permissions, and switching authentication on and off.

The auth token itself (fetched lazily, attached to every call and stream, refreshed
when the server rejects it) lives in :mod:`etcd3._sync.token` and :mod:`etcd3._sync.transport`;
this module is the management API. Passwords are sent to the server and never kept,
logged or put into an error message.

Revokes are idempotent: revoking a role a user does not have, or a permission a role
does not hold, returns ``False`` instead of raising, so "equivalent" revokes can run
one after another. Unknown users and roles still raise
:class:`~etcd3.exceptions.EntityNotFoundError`.
"""

from __future__ import annotations

import enum
from typing import Any, List, Optional, Tuple, Union

import grpc

from . import codec, exceptions
from ._grpc import errors as _errors
from ._grpc import rpc as _rpc
from ._sync.base import UNSET, ServiceBase, Timeout
from ._sync.client_api import AuthClient
from .etcdrpc import auth_pb2
from .etcdrpc import rpc_pb2 as pb

KeyType = Union[str, bytes]

_NOT_GRANTED = ("role is not granted to the user", "permission is not granted to the role")
_NO_ROOT = ("root user does not exist", "root user does not have root role")


class Perms(enum.IntEnum):
    """Access a role is granted to keys: read, write or both (etcd's permission types)."""

    r = auth_pb2.Permission.READ
    w = auth_pb2.Permission.WRITE
    rw = auth_pb2.Permission.READWRITE


class Perm:
    """One permission of a role: ``mode`` (:class:`Perms`) on ``key`` .. ``end``.

    ``end`` is None for a single key; otherwise the range ``[key, end)`` (for a prefix
    grant, ``end`` is the prefix's range end). :attr:`prefix` tells whether the range is
    exactly "every key starting with ``key``".
    """

    __slots__ = ("mode", "key", "end")

    def __init__(self, mode: Union[Perms, int], key: bytes, end: Optional[bytes]) -> None:
        self.mode = _perms(mode)
        self.key = key
        self.end = end

    @property
    def prefix(self) -> bool:
        """True when the permission covers exactly the keys starting with :attr:`key`."""
        return self.end is not None and self.end == codec.prefix_range_end(self.key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Perm):
            return NotImplemented
        return (self.mode, self.key, self.end) == (other.mode, other.key, other.end)

    def __hash__(self) -> int:
        return hash((self.mode, self.key, self.end))

    def __repr__(self) -> str:
        return f"Perm({self.mode.name}, key={self.key!r}, end={self.end!r})"


class User:
    """An etcd user and the roles it held when it was read (python-etcd3-compatible).

    ``name`` (also ``user``) and ``roles`` (a list of role names). :meth:`grant` and
    :meth:`revoke` change the server and this object.
    """

    def __init__(self, name: str, roles: List[str], etcd_client: AuthClient) -> None:
        self.name = name
        self.roles = list(roles)
        self._etcd_client = etcd_client

    @property
    def user(self) -> str:
        """The user name (python-etcd3's attribute name)."""
        return self.name

    def grant(self, role: str) -> None:
        """Give this user ``role``.

        :raises EntityNotFoundError: the user or the role does not exist.
        """
        self._etcd_client.grant_role(self.name, role)
        if role not in self.roles:
            self.roles.append(role)

    def revoke(self, role: str) -> bool:
        """Take ``role`` away from this user; False if the user did not have it.

        :raises EntityNotFoundError: the user does not exist.
        """
        revoked: bool = self._etcd_client.revoke_role(self.name, role)
        if role in self.roles:
            self.roles.remove(role)
        return revoked

    def delete(self) -> None:
        """Delete this user from etcd.

        :raises EntityNotFoundError: it was already deleted.
        """
        self._etcd_client.delete_user(self.name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, User):
            return NotImplemented
        return (self.name, sorted(self.roles)) == (other.name, sorted(other.roles))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"User(name={self.name!r}, roles={self.roles!r})"


class Role:
    """An etcd role and the permissions it held when it was read.

    ``name`` (also ``role``) and ``perms`` (a list of :class:`Perm`). :meth:`grant`
    and :meth:`revoke` change the server and this object.
    """

    def __init__(self, name: str, perms: List[Perm], etcd_client: AuthClient) -> None:
        self.name = name
        self.perms = list(perms)
        self._etcd_client = etcd_client

    @property
    def role(self) -> str:
        """The role name (python-etcd3's attribute name)."""
        return self.name

    def grant(self, perm: Union[Perms, int], key: KeyType, end: Optional[KeyType] = None,
              prefix: bool = False) -> None:
        """Grant ``perm`` on ``key``, on ``[key, end)``, or on every key under prefix ``key``.

        Granting the same key range again replaces its mode.
        :raises EntityNotFoundError: the role no longer exists.
        :raises ValueError: ``end`` and ``prefix=True`` disagree, or a bad ``perm``.
        """
        self._etcd_client.grant_permission_role(self.name, perm, key, end=end, prefix=prefix)
        start, range_end = permission_range(key, end, prefix)
        granted = Perm(perm, start, range_end or None)
        self.perms = [p for p in self.perms if (p.key, p.end) != (granted.key, granted.end)]
        self.perms.append(granted)

    def revoke(self, key: KeyType, end: Optional[KeyType] = None, prefix: bool = False) -> bool:
        """Revoke the permission on exactly this key range; False if it was not granted.

        :raises EntityNotFoundError: the role no longer exists.
        """
        revoked: bool = self._etcd_client.revoke_permission_role(self.name, key, end=end,
                                                                 prefix=prefix)
        start, range_end = permission_range(key, end, prefix)
        self.perms = [p for p in self.perms if (p.key, p.end) != (start, range_end or None)]
        return revoked

    def delete(self) -> None:
        """Delete this role (users holding it lose it).

        :raises EntityNotFoundError: it was already deleted.
        """
        self._etcd_client.delete_role(self.name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return (self.name, set(self.perms)) == (other.name, set(other.perms))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Role(name={self.name!r}, perms={self.perms!r})"


class AuthStatus:
    """Whether authentication is enabled, and the auth store's revision."""

    __slots__ = ("enabled", "auth_revision")

    def __init__(self, enabled: bool, auth_revision: int) -> None:
        self.enabled = enabled
        self.auth_revision = auth_revision

    def __repr__(self) -> str:
        return f"AuthStatus(enabled={self.enabled}, auth_revision={self.auth_revision})"


def _perms(value: Union[Perms, int]) -> Perms:
    if isinstance(value, bool):
        raise ValueError(f"invalid permission {value!r}; use etcd3.Perms.r, .w or .rw")
    try:
        return Perms(value)
    except ValueError:
        raise ValueError(f"invalid permission {value!r}; use etcd3.Perms.r, .w or .rw"
                         ) from None


def permission_range(key: KeyType, end: Optional[KeyType] = None,
                     prefix: bool = False) -> Tuple[bytes, bytes]:
    """``(key, range_end)`` of a permission as etcd stores it (``b""``: a single key).

    ``prefix=True`` gives the prefix's range end, the same as passing it as ``end``.
    :raises ValueError: ``end`` disagrees with ``prefix=True``.
    :raises TypeError: key or end is not str/bytes.
    """
    start = codec.to_bytes(key)
    range_end = b"" if end is None else codec.to_bytes(end, "end")
    if prefix:
        prefix_end = codec.prefix_range_end(start)
        if range_end and range_end != prefix_end:
            raise ValueError(f"end={range_end!r} contradicts prefix=True (the prefix's "
                             f"range end is {prefix_end!r}); give only one of them")
        range_end = prefix_end
    return start, range_end


def _cause_message(error: BaseException) -> str:
    cause = error.__cause__ if error.__cause__ is not None else error
    return _errors.etcd_message(_errors.status_of(cause)[1])


class AuthMixin(ServiceBase):
    """User, role, permission and auth on/off calls of the client."""

    # -- users --------------------------------------------------------------------

    def add_user(self, name: str, password: str, *, timeout: Timeout = UNSET) -> User:
        """Create user ``name`` with ``password``; returns it (no roles yet).

        :raises AlreadyExistsError: the user exists.
        """
        if not password:
            raise ValueError("a password is required")
        self._call(_rpc.USER_ADD, pb.AuthUserAddRequest(name=name, password=password),
                   timeout=timeout, context=f"user {name!r}")
        return User(name, [], self)

    def get_user(self, name: str, *, timeout: Timeout = UNSET) -> User:
        """The user ``name`` with its roles.

        :raises EntityNotFoundError: no such user.
        """
        response = self._call(_rpc.USER_GET, pb.AuthUserGetRequest(name=name),
                              timeout=timeout, context=f"user {name!r}")
        return User(name, list(response.roles), self)

    def delete_user(self, name: str, *, timeout: Timeout = UNSET) -> None:
        """Delete user ``name``.

        :raises EntityNotFoundError: no such user.
        """
        self._call(_rpc.USER_DELETE, pb.AuthUserDeleteRequest(name=name), timeout=timeout,
                   context=f"user {name!r}")

    def change_password(self, name: str, password: str, *, timeout: Timeout = UNSET) -> None:
        """Set user ``name``'s password.

        When ``name`` is this client's own user, the client re-authenticates with the
        new password from then on.
        :raises EntityNotFoundError: no such user.
        """
        if not password:
            raise ValueError("a password is required")
        self._call(_rpc.USER_CHANGE_PASSWORD,
                   pb.AuthUserChangePasswordRequest(name=name, password=password),
                   timeout=timeout, context=f"user {name!r}")
        provider = self._transport.token_provider
        if provider is not None and provider.user == name:
            provider.set_password(password)

    def users(self, *, timeout: Timeout = UNSET) -> List[User]:
        """Every user, with its roles, sorted by name."""
        response = self._call(_rpc.USER_LIST, pb.AuthUserListRequest(), timeout=timeout)
        found = []
        for name in response.users:
            try:
                found.append(self.get_user(name, timeout=timeout))
            except exceptions.EntityNotFoundError:  # deleted since the listing
                continue
        return found

    def grant_role(self, user: str, role: str, *, timeout: Timeout = UNSET) -> None:
        """Give ``user`` the role ``role`` (granting it again is accepted).

        :raises EntityNotFoundError: no such user or role.
        """
        self._call(_rpc.USER_GRANT_ROLE, pb.AuthUserGrantRoleRequest(user=user, role=role),
                   timeout=timeout, context=f"user {user!r}, role {role!r}")

    def revoke_role(self, user: str, role: str, *, timeout: Timeout = UNSET) -> bool:
        """Take ``role`` away from ``user``: True if revoked, False if not granted.

        :raises EntityNotFoundError: no such user.
        """
        return self._revoke(_rpc.USER_REVOKE_ROLE,
                            pb.AuthUserRevokeRoleRequest(name=user, role=role),
                            timeout, f"user {user!r}, role {role!r}")

    # -- roles --------------------------------------------------------------------

    def add_role(self, name: str, *, timeout: Timeout = UNSET) -> Role:
        """Create role ``name``; returns it (no permissions yet).

        :raises AlreadyExistsError: the role exists.
        """
        self._call(_rpc.ROLE_ADD, pb.AuthRoleAddRequest(name=name), timeout=timeout,
                   context=f"role {name!r}")
        return Role(name, [], self)

    def get_role(self, name: str, *, timeout: Timeout = UNSET) -> Role:
        """The role ``name`` with its permissions.

        :raises EntityNotFoundError: no such role.
        """
        response = self._call(_rpc.ROLE_GET, pb.AuthRoleGetRequest(role=name),
                              timeout=timeout, context=f"role {name!r}")
        return Role(name, [Perm(p.permType, p.key, p.range_end or None)
                           for p in response.perm], self)

    def delete_role(self, name: str, *, timeout: Timeout = UNSET) -> None:
        """Delete role ``name`` (users holding it lose it).

        :raises EntityNotFoundError: no such role.
        """
        self._call(_rpc.ROLE_DELETE, pb.AuthRoleDeleteRequest(role=name), timeout=timeout,
                   context=f"role {name!r}")

    def roles(self, *, timeout: Timeout = UNSET) -> List[Role]:
        """Every role, with its permissions, sorted by name."""
        response = self._call(_rpc.ROLE_LIST, pb.AuthRoleListRequest(), timeout=timeout)
        found = []
        for name in response.roles:
            try:
                found.append(self.get_role(name, timeout=timeout))
            except exceptions.EntityNotFoundError:  # deleted since the listing
                continue
        return found

    def grant_permission_role(self, role: str, perm: Union[Perms, int], key: KeyType,
                              end: Optional[KeyType] = None, prefix: bool = False, *,
                              timeout: Timeout = UNSET) -> None:
        """Grant ``role`` the access ``perm`` (:class:`Perms`) to keys.

        ``key`` alone: that key; ``end``: the range ``[key, end)``; ``prefix=True``:
        every key starting with ``key`` (the same grant as ``end`` = the prefix's range
        end). Granting the same range again replaces its mode.
        :raises EntityNotFoundError: no such role.
        :raises ValueError: a bad ``perm``, or ``end`` contradicting ``prefix=True``.
        """
        mode = _perms(perm)
        start, range_end = permission_range(key, end, prefix)
        permission = auth_pb2.Permission(permType=int(mode),  # type: ignore[arg-type]
                                         key=start, range_end=range_end)
        self._call(_rpc.ROLE_GRANT_PERMISSION,
                   pb.AuthRoleGrantPermissionRequest(name=role, perm=permission),
                   timeout=timeout, context=f"role {role!r}, key {start!r}")

    def revoke_permission_role(self, role: str, key: KeyType, end: Optional[KeyType] = None,
                               prefix: bool = False, *, timeout: Timeout = UNSET) -> bool:
        """Revoke ``role``'s permission on exactly this key range (as granted).

        :returns: True if revoked, False if the role held no permission on that range.
        :raises EntityNotFoundError: no such role.
        """
        start, range_end = permission_range(key, end, prefix)
        return self._revoke(_rpc.ROLE_REVOKE_PERMISSION,
                            pb.AuthRoleRevokePermissionRequest(role=role, key=start,
                                                               range_end=range_end),
                            timeout, f"role {role!r}, key {start!r}")

    def _revoke(self, method: Any, request: Any, timeout: Any, context: str) -> bool:
        try:
            self._call(method, request, timeout=timeout, context=context)
        except exceptions.EntityNotFoundError as error:
            if _cause_message(error) in _NOT_GRANTED:
                return False
            raise
        return True

    # -- switching auth on and off --------------------------------------------------

    def enable_auth(self, *, timeout: Timeout = UNSET) -> None:
        """Turn authentication on; from then on clients need ``user=``/``password=``.

        :raises PreconditionFailedError: there is no user ``root`` holding role
            ``root`` (add them first).
        """
        try:
            self._call(_rpc.AUTH_ENABLE, pb.AuthEnableRequest(), timeout=timeout)
        except exceptions.Etcd3Exception as error:
            message = _cause_message(error)
            if message not in _NO_ROOT:
                raise
            raise exceptions.PreconditionFailedError(
                f"cannot enable authentication: {message}. Add user 'root' with role "
                "'root' first: add_user('root', password); add_role('root'); "
                "grant_role('root', 'root')") from error.__cause__

    def disable_auth(self, *, timeout: Timeout = UNSET) -> None:
        """Turn authentication off (needs a client authenticated as a root user)."""
        self._call(_rpc.AUTH_DISABLE, pb.AuthDisableRequest(), timeout=timeout)

    def auth_status(self, *, timeout: Timeout = UNSET) -> AuthStatus:
        """Whether authentication is enabled, and the auth store's revision.

        etcd 3.4 has no AuthStatus RPC: there, ``enabled`` comes from whether a
        user listing without a token is refused, and ``auth_revision`` is 0.
        """
        try:
            response = self._call(_rpc.AUTH_STATUS, pb.AuthStatusRequest(), timeout=timeout)
        except exceptions.Etcd3Exception as error:
            if getattr(error, "grpc_code", None) is not grpc.StatusCode.UNIMPLEMENTED:
                raise
            return AuthStatus(self._refuses_anonymous_calls(timeout), 0)
        return AuthStatus(bool(response.enabled), int(response.authRevision))

    def _refuses_anonymous_calls(self, timeout: Any) -> bool:
        try:
            self._transport.call(_rpc.USER_LIST, pb.AuthUserListRequest(), timeout=timeout,
                                 anonymous=True, context="probing whether auth is on")
        except (exceptions.InvalidAuthTokenError, exceptions.PermissionDeniedError):
            return True
        return False
