"""Users, roles, permissions and switching authentication on and off, for the asyncio
client: the threaded :mod:`etcd3.auth`'s methods, same names, arguments and results,
awaited. The data (:class:`~etcd3.auth.Perm`, :class:`~etcd3.auth.Perms`,
:func:`~etcd3.auth.permission_range`, :class:`~etcd3.auth.AuthStatus`) is shared.

Revokes are idempotent (False when nothing was granted); unknown users and roles
raise :class:`~etcd3.exceptions.EntityNotFoundError`. Passwords are sent, never kept
(except the client's own, by its token provider), logged or put in a message.
"""

from __future__ import annotations

from typing import Any, List, Optional, Union

import grpc

from .. import exceptions
from .._core.auth_rules import (
    NOT_GRANTED,
    AuthStatus,
    KeyType,
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
from .._grpc import rpc as _rpc
from .._grpc.error_causes import cause_message
from ..etcdrpc import rpc_pb2 as pb
from ._base import UNSET, AioServiceBase, Timeout

__all__ = ["AioAuthMixin", "AioRole", "AioUser", "AuthStatus", "Perm", "Perms",
           "permission_range"]


class AioUser(UserInfo):
    """An etcd user and the roles it held when it was read.

    ``name`` (also ``user``) and ``roles``; ``await`` :meth:`grant`,
    :meth:`revoke` and :meth:`delete` change the server (and this object).
    """

    def __init__(self, name: str, roles: List[str], etcd_client: AioAuthMixin) -> None:
        super().__init__(name, roles)
        self._etcd_client = etcd_client

    async def grant(self, role: str) -> None:
        """Give this user ``role``.

        :raises EntityNotFoundError: the user or the role does not exist.
        """
        await self._etcd_client.grant_role(self.name, role)
        self._granted(role)

    async def revoke(self, role: str) -> bool:
        """Take ``role`` away from this user; False if the user did not have it.

        :raises EntityNotFoundError: the user does not exist.
        """
        revoked = await self._etcd_client.revoke_role(self.name, role)
        self._revoked(role)
        return revoked

    async def delete(self) -> None:
        """Delete this user from etcd.

        :raises EntityNotFoundError: it was already deleted.
        """
        await self._etcd_client.delete_user(self.name)


class AioRole(RoleInfo):
    """An etcd role and the permissions it held when it was read.

    ``name`` (also ``role``) and ``perms`` (a list of :class:`~etcd3.auth.Perm`);
    ``await`` :meth:`grant`, :meth:`revoke` and :meth:`delete` change the server
    (and this object).
    """

    def __init__(self, name: str, perms: List[Perm], etcd_client: AioAuthMixin) -> None:
        super().__init__(name, perms)
        self._etcd_client = etcd_client

    async def grant(self, perm: Union[Perms, int], key: KeyType,
                    end: Optional[KeyType] = None, prefix: bool = False) -> None:
        """Grant ``perm`` on ``key``, on ``[key, end)``, or on every key under ``key``.

        :raises EntityNotFoundError: the role no longer exists.
        :raises ValueError: ``end`` and ``prefix=True`` disagree, or a bad ``perm``.
        """
        await self._etcd_client.grant_permission_role(self.name, perm, key, end=end,
                                                      prefix=prefix)
        self._granted(perm, key, end, prefix)

    async def revoke(self, key: KeyType, end: Optional[KeyType] = None,
                     prefix: bool = False) -> bool:
        """Revoke the permission on exactly this key range; False if it was not granted.

        :raises EntityNotFoundError: the role no longer exists.
        """
        revoked = await self._etcd_client.revoke_permission_role(self.name, key, end=end,
                                                                 prefix=prefix)
        self._revoked(key, end, prefix)
        return revoked

    async def delete(self) -> None:
        """Delete this role (users holding it lose it).

        :raises EntityNotFoundError: it was already deleted.
        """
        await self._etcd_client.delete_role(self.name)


class AioAuthMixin(AioServiceBase):
    """User, role, permission and auth on/off methods of :class:`~etcd3.aio.Etcd3Client`."""

    # -- users --------------------------------------------------------------------

    async def add_user(self, name: str, password: str, *,
                       timeout: Timeout = UNSET) -> AioUser:
        """Create user ``name`` with ``password``; returns it (no roles yet).

        :raises AlreadyExistsError: the user exists.
        :raises ValueError: an empty password.
        """
        check_password(password)
        await self._call(_rpc.USER_ADD, pb.AuthUserAddRequest(name=name, password=password),
                         timeout=timeout, context=f"user {name!r}")
        return AioUser(name, [], self)

    async def get_user(self, name: str, *, timeout: Timeout = UNSET) -> AioUser:
        """The user ``name`` with its roles.

        :raises EntityNotFoundError: no such user.
        """
        response = await self._call(_rpc.USER_GET, pb.AuthUserGetRequest(name=name),
                                    timeout=timeout, context=f"user {name!r}")
        return AioUser(name, list(response.roles), self)

    async def delete_user(self, name: str, *, timeout: Timeout = UNSET) -> None:
        """Delete user ``name``.

        :raises EntityNotFoundError: no such user.
        """
        await self._call(_rpc.USER_DELETE, pb.AuthUserDeleteRequest(name=name),
                         timeout=timeout, context=f"user {name!r}")

    async def change_password(self, name: str, password: str, *,
                              timeout: Timeout = UNSET) -> None:
        """Set user ``name``'s password.

        When ``name`` is this client's own user, the client re-authenticates with the
        new password from then on.
        :raises EntityNotFoundError: no such user.
        :raises ValueError: an empty password.
        """
        check_password(password)
        await self._call(_rpc.USER_CHANGE_PASSWORD,
                         pb.AuthUserChangePasswordRequest(name=name, password=password),
                         timeout=timeout, context=f"user {name!r}")
        provider = self._transport.token_provider
        if provider is not None and provider.user == name:
            provider.set_password(password)

    async def users(self, *, timeout: Timeout = UNSET) -> List[AioUser]:
        """Every user, with its roles, sorted by name."""
        response = await self._call(_rpc.USER_LIST, pb.AuthUserListRequest(),
                                    timeout=timeout)
        found = []
        for name in response.users:
            try:
                found.append(await self.get_user(name, timeout=timeout))
            except exceptions.EntityNotFoundError:  # deleted since the listing
                continue
        return found

    async def grant_role(self, user: str, role: str, *, timeout: Timeout = UNSET) -> None:
        """Give ``user`` the role ``role`` (granting it again is accepted).

        :raises EntityNotFoundError: no such user or role.
        """
        await self._call(_rpc.USER_GRANT_ROLE,
                         pb.AuthUserGrantRoleRequest(user=user, role=role),
                         timeout=timeout, context=f"user {user!r}, role {role!r}")

    async def revoke_role(self, user: str, role: str, *, timeout: Timeout = UNSET) -> bool:
        """Take ``role`` away from ``user``: True if revoked, False if not granted.

        :raises EntityNotFoundError: no such user.
        """
        return await self._revoke(_rpc.USER_REVOKE_ROLE,
                                  pb.AuthUserRevokeRoleRequest(name=user, role=role),
                                  timeout, f"user {user!r}, role {role!r}")

    # -- roles --------------------------------------------------------------------

    async def add_role(self, name: str, *, timeout: Timeout = UNSET) -> AioRole:
        """Create role ``name``; returns it (no permissions yet).

        :raises AlreadyExistsError: the role exists.
        """
        await self._call(_rpc.ROLE_ADD, pb.AuthRoleAddRequest(name=name), timeout=timeout,
                         context=f"role {name!r}")
        return AioRole(name, [], self)

    async def get_role(self, name: str, *, timeout: Timeout = UNSET) -> AioRole:
        """The role ``name`` with its permissions.

        :raises EntityNotFoundError: no such role.
        """
        response = await self._call(_rpc.ROLE_GET, pb.AuthRoleGetRequest(role=name),
                                    timeout=timeout, context=f"role {name!r}")
        return AioRole(*role_from_response(name, response), self)

    async def delete_role(self, name: str, *, timeout: Timeout = UNSET) -> None:
        """Delete role ``name`` (users holding it lose it).

        :raises EntityNotFoundError: no such role.
        """
        await self._call(_rpc.ROLE_DELETE, pb.AuthRoleDeleteRequest(role=name),
                         timeout=timeout, context=f"role {name!r}")

    async def roles(self, *, timeout: Timeout = UNSET) -> List[AioRole]:
        """Every role, with its permissions, sorted by name."""
        response = await self._call(_rpc.ROLE_LIST, pb.AuthRoleListRequest(),
                                    timeout=timeout)
        found = []
        for name in response.roles:
            try:
                found.append(await self.get_role(name, timeout=timeout))
            except exceptions.EntityNotFoundError:  # deleted since the listing
                continue
        return found

    async def grant_permission_role(self, role: str, perm: Union[Perms, int], key: KeyType,
                                    end: Optional[KeyType] = None, prefix: bool = False, *,
                                    timeout: Timeout = UNSET) -> None:
        """Grant ``role`` the access ``perm`` (:class:`~etcd3.auth.Perms`) to keys:
        ``key`` alone, ``[key, end)``, or (``prefix=True``) every key starting with
        ``key``. Granting the same range again replaces its mode.

        :raises EntityNotFoundError: no such role.
        :raises ValueError: a bad ``perm``, or ``end`` contradicting ``prefix=True``.
        """
        mode = checked_perms(perm)
        start, range_end = permission_range(key, end, prefix)
        await self._call(_rpc.ROLE_GRANT_PERMISSION,
                         pb.AuthRoleGrantPermissionRequest(
                             name=role, perm=permission_message(mode, start, range_end)),
                         timeout=timeout, context=f"role {role!r}, key {start!r}")

    async def revoke_permission_role(self, role: str, key: KeyType,
                                     end: Optional[KeyType] = None, prefix: bool = False, *,
                                     timeout: Timeout = UNSET) -> bool:
        """Revoke ``role``'s permission on exactly this key range (as granted).

        :returns: True if revoked, False if the role held no permission on that range.
        :raises EntityNotFoundError: no such role.
        """
        start, range_end = permission_range(key, end, prefix)
        return await self._revoke(_rpc.ROLE_REVOKE_PERMISSION,
                                  pb.AuthRoleRevokePermissionRequest(
                                      role=role, key=start, range_end=range_end),
                                  timeout, f"role {role!r}, key {start!r}")

    async def _revoke(self, method: Any, request: Any, timeout: Any, context: str) -> bool:
        try:
            await self._call(method, request, timeout=timeout, context=context)
        except exceptions.EntityNotFoundError as error:
            if cause_message(error) in NOT_GRANTED:
                return False
            raise
        return True

    # -- switching auth on and off --------------------------------------------------

    async def enable_auth(self, *, timeout: Timeout = UNSET) -> None:
        """Turn authentication on; from then on clients need ``user=``/``password=``.

        :raises PreconditionFailedError: there is no user ``root`` holding role
            ``root`` (add them first).
        """
        try:
            await self._call(_rpc.AUTH_ENABLE, pb.AuthEnableRequest(), timeout=timeout)
        except exceptions.Etcd3Exception as error:
            no_root = no_root_error(cause_message(error))
            if no_root is None:
                raise
            raise no_root from error.__cause__

    async def disable_auth(self, *, timeout: Timeout = UNSET) -> None:
        """Turn authentication off (needs a client authenticated as a root user)."""
        await self._call(_rpc.AUTH_DISABLE, pb.AuthDisableRequest(), timeout=timeout)

    async def auth_status(self, *, timeout: Timeout = UNSET) -> AuthStatus:
        """Whether authentication is enabled, and the auth store's revision.

        etcd 3.4 has no AuthStatus RPC: there, ``enabled`` comes from whether a
        user listing without a token is refused, and ``auth_revision`` is 0.
        """
        try:
            response = await self._call(_rpc.AUTH_STATUS, pb.AuthStatusRequest(),
                                        timeout=timeout)
        except exceptions.Etcd3Exception as error:
            if getattr(error, "grpc_code", None) is not grpc.StatusCode.UNIMPLEMENTED:
                raise
            return AuthStatus(await self._refuses_anonymous_calls(timeout), 0)
        return AuthStatus(bool(response.enabled), int(response.authRevision))

    async def _refuses_anonymous_calls(self, timeout: Any) -> bool:
        try:
            await self._transport.call(_rpc.USER_LIST, pb.AuthUserListRequest(),
                                       timeout=timeout, anonymous=True,
                                       context="probing whether auth is on")
        except (exceptions.InvalidAuthTokenError, exceptions.PermissionDeniedError):
            return True
        return False
