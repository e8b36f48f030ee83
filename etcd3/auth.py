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

from typing import Any, List, Optional, Union

import grpc

from . import exceptions
from ._core.auth_rules import (
    NOT_GRANTED,
    AuthStatus,
    Perm,
    Perms,
    RoleInfo,
    UserInfo,
    check_password,
    checked_perms,
    no_root_error,
    permission_message,
    permission_range,
    role_from_response,
)
from ._grpc import rpc as _rpc
from ._grpc.error_causes import cause_message
from ._sync.base import UNSET, ServiceBase, Timeout
from ._sync.client_api import AuthClient
from .etcdrpc import rpc_pb2 as pb

KeyType = Union[str, bytes]


class User(UserInfo):
    """An etcd user and the roles it held when it was read (python-etcd3-compatible).

    ``name`` (also ``user``) and ``roles`` (a list of role names). :meth:`grant` and
    :meth:`revoke` change the server and this object.
    """

    def __init__(self, name: str, roles: List[str], etcd_client: AuthClient) -> None:
        super().__init__(name, roles)
        self._etcd_client = etcd_client

    def grant(self, role: str) -> None:
        """Give this user ``role``.

        :raises EntityNotFoundError: the user or the role does not exist.
        """
        self._etcd_client.grant_role(self.name, role)
        self._granted(role)

    def revoke(self, role: str) -> bool:
        """Take ``role`` away from this user; False if the user did not have it.

        :raises EntityNotFoundError: the user does not exist.
        """
        revoked: bool = self._etcd_client.revoke_role(self.name, role)
        self._revoked(role)
        return revoked

    def delete(self) -> None:
        """Delete this user from etcd.

        :raises EntityNotFoundError: it was already deleted.
        """
        self._etcd_client.delete_user(self.name)


class Role(RoleInfo):
    """An etcd role and the permissions it held when it was read.

    ``name`` (also ``role``) and ``perms`` (a list of :class:`Perm`). :meth:`grant`
    and :meth:`revoke` change the server and this object.
    """

    def __init__(self, name: str, perms: List[Perm], etcd_client: AuthClient) -> None:
        super().__init__(name, perms)
        self._etcd_client = etcd_client

    def grant(self, perm: Union[Perms, int], key: KeyType, end: Optional[KeyType] = None,
              prefix: bool = False) -> None:
        """Grant ``perm`` on ``key``, on ``[key, end)``, or on every key under prefix ``key``.

        Granting the same key range again replaces its mode.
        :raises EntityNotFoundError: the role no longer exists.
        :raises ValueError: ``end`` and ``prefix=True`` disagree, or a bad ``perm``.
        """
        self._etcd_client.grant_permission_role(self.name, perm, key, end=end, prefix=prefix)
        self._granted(perm, key, end, prefix)

    def revoke(self, key: KeyType, end: Optional[KeyType] = None, prefix: bool = False) -> bool:
        """Revoke the permission on exactly this key range; False if it was not granted.

        :raises EntityNotFoundError: the role no longer exists.
        """
        revoked: bool = self._etcd_client.revoke_permission_role(self.name, key, end=end,
                                                                 prefix=prefix)
        self._revoked(key, end, prefix)
        return revoked

    def delete(self) -> None:
        """Delete this role (users holding it lose it).

        :raises EntityNotFoundError: it was already deleted.
        """
        self._etcd_client.delete_role(self.name)


class AuthMixin(ServiceBase):
    """User, role, permission and auth on/off calls of the client."""

    # -- users --------------------------------------------------------------------

    def add_user(self, name: str, password: str, *, timeout: Timeout = UNSET) -> User:
        """Create user ``name`` with ``password``; returns it (no roles yet).

        :raises AlreadyExistsError: the user exists.
        """
        check_password(password)
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
        check_password(password)
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
        return Role(*role_from_response(name, response), self)

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
        mode = checked_perms(perm)
        start, range_end = permission_range(key, end, prefix)
        permission = permission_message(mode, start, range_end)
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
            if cause_message(error) in NOT_GRANTED:
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
            no_root = no_root_error(cause_message(error))
            if no_root is None:
                raise
            raise no_root from error.__cause__

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


__all__ = ["AuthMixin", "AuthStatus", "Perm", "Perms", "Role", "User", "permission_range"]
