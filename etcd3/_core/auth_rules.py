"""What users, roles and permissions are, for every driver: the data classes, the
permission key ranges, and how etcd's refusals of auth calls are read.

The drivers (:mod:`etcd3.auth`, :mod:`etcd3.aio.auth`) add the calls: their
``User``/``Role`` subclass :class:`UserInfo`/:class:`RoleInfo` with methods that
change the server and then this object.
"""

from __future__ import annotations

import enum
from typing import List, Optional, Tuple, Union

from .. import codec, exceptions
from ..etcdrpc import auth_pb2

KeyType = Union[str, bytes]

#: etcd's answers to a revoke of something that was not granted (revokes are
#: idempotent here: they return False).
NOT_GRANTED = ("role is not granted to the user", "permission is not granted to the role")
#: etcd's answers to enabling auth without a root user holding the root role.
NO_ROOT = ("root user does not exist", "root user does not have root role")


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
        self.mode = checked_perms(mode)
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


class AuthStatus:
    """Whether authentication is enabled, and the auth store's revision."""

    __slots__ = ("enabled", "auth_revision")

    def __init__(self, enabled: bool, auth_revision: int) -> None:
        self.enabled = enabled
        self.auth_revision = auth_revision

    def __repr__(self) -> str:
        return f"AuthStatus(enabled={self.enabled}, auth_revision={self.auth_revision})"


def checked_perms(value: Union[Perms, int]) -> Perms:
    """``value`` as a :class:`Perms`.

    :raises ValueError: not one of etcd's permission types.
    """
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


def permission_message(mode: Perms, start: bytes, range_end: bytes) -> auth_pb2.Permission:
    """The ``authpb.Permission`` of a grant."""
    return auth_pb2.Permission(permType=int(mode),  # type: ignore[arg-type]
                               key=start, range_end=range_end)


def check_password(password: str) -> None:
    """:raises ValueError: an empty password."""
    if not password:
        raise ValueError("a password is required")


def no_root_error(message: str) -> Optional[exceptions.PreconditionFailedError]:
    """The error to raise when enabling auth failed with etcd's ``message`` because
    there is no usable root user (None: some other failure, raise it as it is)."""
    if message not in NO_ROOT:
        return None
    return exceptions.PreconditionFailedError(
        f"cannot enable authentication: {message}. Add user 'root' with role "
        "'root' first: add_user('root', password); add_role('root'); "
        "grant_role('root', 'root')")


class UserInfo:
    """An etcd user and the roles it held when it was read (python-etcd3-compatible).

    ``name`` (also ``user``) and ``roles`` (a list of role names).
    """

    def __init__(self, name: str, roles: List[str]) -> None:
        self.name = name
        self.roles = list(roles)

    @property
    def user(self) -> str:
        """The user name (python-etcd3's attribute name)."""
        return self.name

    def _granted(self, role: str) -> None:
        if role not in self.roles:
            self.roles.append(role)

    def _revoked(self, role: str) -> None:
        if role in self.roles:
            self.roles.remove(role)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserInfo):
            return NotImplemented
        return (self.name, sorted(self.roles)) == (other.name, sorted(other.roles))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"User(name={self.name!r}, roles={self.roles!r})"


class RoleInfo:
    """An etcd role and the permissions it held when it was read.

    ``name`` (also ``role``) and ``perms`` (a list of :class:`Perm`).
    """

    def __init__(self, name: str, perms: List[Perm]) -> None:
        self.name = name
        self.perms = list(perms)

    @property
    def role(self) -> str:
        """The role name (python-etcd3's attribute name)."""
        return self.name

    def _granted(self, perm: Union[Perms, int], key: KeyType, end: Optional[KeyType],
                 prefix: bool) -> None:
        start, range_end = permission_range(key, end, prefix)
        granted = Perm(perm, start, range_end or None)
        self.perms = [p for p in self.perms if (p.key, p.end) != (granted.key, granted.end)]
        self.perms.append(granted)

    def _revoked(self, key: KeyType, end: Optional[KeyType], prefix: bool) -> None:
        start, range_end = permission_range(key, end, prefix)
        self.perms = [p for p in self.perms if (p.key, p.end) != (start, range_end or None)]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RoleInfo):
            return NotImplemented
        return (self.name, set(self.perms)) == (other.name, set(other.perms))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Role(name={self.name!r}, perms={self.perms!r})"


def role_from_response(name: str, response: object) -> Tuple[str, List[Perm]]:
    """``(name, perms)`` of a role from its AuthRoleGetResponse."""
    return name, [Perm(p.permType, p.key, p.range_end or None)
                  for p in response.perm]  # type: ignore[attr-defined]
