"""Users, roles, permissions and authenticated clients, against a real etcd.

Auth is enabled only on servers these tests start themselves.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any, Iterator

import grpc
import pytest
from auth_support import ROOT_PASSWORD, client_for, enable_root_auth

import etcd3
from etcd3 import exceptions
from etcd3.auth import Perm, Perms, permission_range
from etcd3.etcdrpc import rpc_pb2 as pb
from etcd3.testing import EtcdServer

pytestmark = pytest.mark.drivers("threaded", "aio")


@pytest.fixture(scope="module")
def auth_server() -> Iterator[EtcdServer]:
    with EtcdServer(name="etcd-auth") as server:
        enable_root_auth(server)
        yield server


@pytest.fixture
def login(connect: Any) -> Any:
    """``login(server, user, password)``: :func:`client_for`, for the test's driver."""
    def make(server: EtcdServer, user: str = "root", password: str = ROOT_PASSWORD,
             **kwargs: Any) -> Any:
        return connect(host=server.host, port=server.port, user=user,
                       password=password, **kwargs)
    return make


@pytest.fixture
def root(auth_server: EtcdServer, login: Any) -> Iterator[etcd3.Etcd3Client]:
    client = login(auth_server)
    yield client
    for user in client.users():
        if user.name != "root":
            user.delete()
    for role in client.roles():
        if role.name != "root":
            role.delete()
    client.delete_prefix("/")
    client.close()


def test_perms_and_permission_ranges() -> None:
    assert (Perms.r, Perms.w, Perms.rw) == (0, 1, 2)
    assert permission_range("/a/", prefix=True) == (b"/a/", b"/a0")
    assert permission_range("/a/", end="/a0") == permission_range("/a/", prefix=True)
    assert permission_range(b"/k") == (b"/k", b"")
    assert Perm(Perms.r, b"/a/", b"/a0").prefix
    with pytest.raises(ValueError, match="contradicts prefix=True"):
        permission_range("/a/", end="/b", prefix=True)


def test_enable_auth_without_root_user_says_what_to_do() -> None:
    with EtcdServer(name="etcd-noroot") as server, \
            etcd3.client(host=server.host, port=server.port) as client, \
            client_for(server) as early:
        # Credentials given while auth is off: calls go without a token.
        early.put("/early", "1")
        with pytest.raises(exceptions.PreconditionFailedError,
                           match="add user 'root' with role 'root'|Add user 'root'"):
            client.enable_auth()
        client.add_user("root", ROOT_PASSWORD)
        client.add_role("root")
        with pytest.raises(exceptions.PreconditionFailedError, match="root role"):
            client.enable_auth()
        client.grant_role("root", "root")
        assert client.auth_status().enabled is False
        # etcd 3.4 has no AuthStatus RPC; what auth_status() falls back to there:
        assert client._refuses_anonymous_calls(None) is False
        client.enable_auth()
        # The early client now needs (and fetches) a token, then goes without again.
        assert early.get("/early")[0] == b"1"
        assert early.auth_status().enabled is True
        assert early._refuses_anonymous_calls(None) is True
        assert client._refuses_anonymous_calls(None) is True
        early.disable_auth()
        assert client.auth_status().enabled is False
        assert early.get("/early")[0] == b"1"


def test_users_crud_and_errors(root: etcd3.Etcd3Client) -> None:
    user = root.add_user("alice", "alice-pw")
    assert (user.name, user.user, user.roles) == ("alice", "alice", [])
    assert root.get_user("alice") == user
    assert {u.name for u in root.users()} == {"root", "alice"}
    with pytest.raises(exceptions.AlreadyExistsError):
        root.add_user("alice", "other")
    with pytest.raises(exceptions.EntityNotFoundError, match="nobody"):
        root.get_user("nobody")
    with pytest.raises(exceptions.EntityNotFoundError):
        root.grant_role("nobody", "root")
    with pytest.raises(exceptions.EntityNotFoundError):
        root.grant_role("alice", "no-such-role")
    root.delete_user("alice")
    with pytest.raises(exceptions.EntityNotFoundError):
        root.delete_user("alice")


def test_roles_crud_and_perms(root: etcd3.Etcd3Client) -> None:
    role = root.add_role("reader")
    assert (role.name, role.role, role.perms) == ("reader", "reader", [])
    role.grant(Perms.r, "/data/", prefix=True)
    role.grant(Perms.rw, "/single")
    expected = {Perm(Perms.r, b"/data/", b"/data0"), Perm(Perms.rw, b"/single", None)}
    assert set(role.perms) == expected
    assert set(root.get_role("reader").perms) == expected
    # The explicit range end is the same grant as prefix=True: it replaces the mode.
    root.grant_permission_role("reader", Perms.rw, "/data/", end="/data0")
    assert Perm(Perms.rw, b"/data/", b"/data0") in root.get_role("reader").perms
    assert len(root.get_role("reader").perms) == 2
    assert {r.name for r in root.roles()} == {"root", "reader"}
    with pytest.raises(exceptions.AlreadyExistsError):
        root.add_role("reader")
    with pytest.raises(ValueError, match="Perms"):
        role.grant(7, "/x")
    role.delete()
    with pytest.raises(exceptions.EntityNotFoundError, match="reader"):
        root.get_role("reader")


def test_revokes_are_idempotent(root: etcd3.Etcd3Client) -> None:
    root.add_user("bob", "bob-pw")
    role = root.add_role("ops")
    role.grant(Perms.rw, "/ops/", prefix=True)
    user = root.get_user("bob")
    user.grant("ops")
    assert root.get_user("bob").roles == ["ops"]
    assert user.revoke("ops") is True
    assert root.revoke_role("bob", "ops") is False
    assert root.get_user("bob").roles == []
    assert role.revoke("/ops/", prefix=True) is True
    assert role.revoke("/ops/", end="/ops0") is False
    assert root.revoke_permission_role("ops", "/ops/", prefix=True) is False
    assert root.get_role("ops").perms == []
    with pytest.raises(exceptions.EntityNotFoundError):
        root.revoke_role("nobody", "ops")
    with pytest.raises(exceptions.EntityNotFoundError):
        root.revoke_permission_role("no-such-role", "/ops/", prefix=True)


def test_prefix_grant_is_enforced_and_revoking_takes_effect(
        auth_server: EtcdServer, root: etcd3.Etcd3Client, login: Any) -> None:
    root.add_user("carol", "carol-pw")
    root.add_role("carol-role").grant(Perms.rw, "/carol/", prefix=True)
    root.add_role("carol-ro").grant(Perms.r, "/shared/", prefix=True)
    root.grant_role("carol", "carol-role")
    root.grant_role("carol", "carol-ro")
    root.put("/shared/x", "hello")
    with login(auth_server, "carol", "carol-pw") as carol:
        carol.put("/carol/a", "1")
        assert carol.get("/carol/a")[0] == b"1"
        assert [v for v, _ in carol.get_prefix("/carol/")] == [b"1"]
        assert carol.get("/shared/x")[0] == b"hello"
        with pytest.raises(exceptions.PermissionDeniedError, match="/outside"):
            carol.put("/outside", "x")
        with pytest.raises(exceptions.PermissionDeniedError, match="/outside"):
            carol.get("/outside")
        with pytest.raises(exceptions.PermissionDeniedError, match="/shared/x"):
            carol.put("/shared/x", "overwrite")
        with pytest.raises(exceptions.PermissionDeniedError):
            carol.add_user("mallory", "pw")
        assert root.revoke_role("carol", "carol-role") is True
        with pytest.raises(exceptions.PermissionDeniedError, match="/carol/a"):
            carol.get("/carol/a")
        assert carol.get("/shared/x")[0] == b"hello"


def test_wrong_password_is_reported_and_never_shown(
        auth_server: EtcdServer, root: etcd3.Etcd3Client, login: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "dave-Secret-Value-42"
    root.add_user("dave", secret)
    with login(auth_server, "dave", "not-" + secret) as wrong:
        assert secret not in repr(wrong)
        with pytest.raises(exceptions.AuthenticationFailedError) as info:
            wrong.get("/k")
    text = f"{info.value} {info.value!r} {info.value.__cause__!r}"
    assert "dave" in text and secret not in text
    with login(auth_server, "dave", secret) as dave:
        assert "dave" in repr(dave) and secret not in repr(dave)
        assert secret not in repr(dave._transport.token_provider)
        with pytest.raises(exceptions.PermissionDeniedError):
            dave.get("/k")
    assert secret not in caplog.text


@pytest.mark.drivers("threaded")  # the threaded raw stubs
def test_raw_stubs_carry_the_token(root: etcd3.Etcd3Client) -> None:
    root.put("/raw", "1")
    assert root.metadata is not None and root.metadata[0][0] == "token"
    response = root.kvstub.Range(pb.RangeRequest(key=b"/raw"), 5,
                                 credentials=root.call_credentials, metadata=root.metadata)
    assert [kv.value for kv in response.kvs] == [b"1"]
    with pytest.raises(grpc.RpcError) as info:
        root.kvstub.Range(pb.RangeRequest(key=b"/raw"), 5)
    assert "user name is empty" in info.value.details()


def test_unauthenticated_client_gets_an_auth_error(auth_server: EtcdServer,
                                                  connect: Any) -> None:
    with connect(host=auth_server.host, port=auth_server.port) as anonymous, \
            pytest.raises(exceptions.AuthError):
        anonymous.get("/k")


@pytest.mark.drivers("threaded")  # reads the threaded token cache
@pytest.mark.parametrize("timeout", [0.3, 1])
def test_constructing_an_authenticated_client_does_no_io(timeout: float) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here
    started = time.monotonic()
    # Whether the deadline cuts the last connection attempt short or not, the error
    # says the server is unreachable.
    client = etcd3.client(host="127.0.0.1", port=port, user="u", password="p-secret",
                          timeout=timeout)
    assert time.monotonic() - started < 0.5
    assert client._transport.token_provider.cached(f"127.0.0.1:{port}") is None
    with pytest.raises(exceptions.ConnectionFailedError) as info:
        client.get("/k")
    assert "p-secret" not in str(info.value)
    client.close()


def test_changing_own_password_keeps_the_client_working(
        auth_server: EtcdServer, root: etcd3.Etcd3Client, login: Any) -> None:
    root.add_user("admin2", "old-pw")
    root.grant_role("admin2", "root")
    with login(auth_server, "admin2", "old-pw") as admin:
        admin.put("/pw/a", "1")
        admin.change_password("admin2", "new-pw")
        # Changing a password invalidates the user's tokens: the client must
        # re-authenticate, with the new password.
        admin.put("/pw/b", "2")
        assert admin.get("/pw/a")[0] == b"1"
    with login(auth_server, "admin2", "old-pw") as stale, \
            pytest.raises(exceptions.AuthenticationFailedError):
        stale.get("/pw/a")
