"""etcd3.aio: users, roles, permissions and authenticated clients against a real etcd
(auth enabled only on servers these tests start), checked with etcdctl; and 2-second
auth tokens refreshed under concurrent load."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, List, Optional

import pytest
from auth_support import ROOT_PASSWORD, enable_root_auth

import etcd3.aio
from etcd3 import exceptions
from etcd3.aio.auth import AioRole, AioUser
from etcd3.auth import Perm, Perms
from etcd3.testing import EtcdServer, run_etcdctl

Body = Callable[[etcd3.aio.Etcd3Client], Awaitable[None]]


@pytest.fixture(scope="module")
def auth_server() -> Iterator[EtcdServer]:
    with EtcdServer(name="etcd-aio-auth") as server:
        enable_root_auth(server)
        yield server


def aio_client(server: EtcdServer, user: str = "root", password: str = ROOT_PASSWORD,
               **kwargs: Any) -> etcd3.aio.Etcd3Client:
    return etcd3.aio.client(host=server.host, port=server.port, user=user,
                            password=password, **kwargs)


def as_root(server: EtcdServer, body: Body) -> None:
    """Run ``body(root client)``, then delete every user, role and key it made."""

    async def main() -> None:
        async with aio_client(server) as root:
            try:
                await body(root)
            finally:
                for user in await root.users():
                    if user.name != "root":
                        await user.delete()
                for role in await root.roles():
                    if role.name != "root":
                        await role.delete()
                await root.delete_prefix("/")

    asyncio.run(main())


def etcdctl(server: EtcdServer, *args: str) -> str:
    return run_etcdctl([server.endpoint], f"--user=root:{ROOT_PASSWORD}", *args).stdout


def test_users_and_roles_round_trip_as_etcdctl_sees_them(auth_server: EtcdServer) -> None:
    async def body(root: etcd3.aio.Etcd3Client) -> None:
        user = await root.add_user("alice", "alice-pw")
        assert isinstance(user, AioUser)
        assert (user.name, user.user, user.roles) == ("alice", "alice", [])
        role = await root.add_role("reader")
        assert isinstance(role, AioRole) and (role.name, role.perms) == ("reader", [])
        await role.grant(Perms.r, "/data/", prefix=True)
        await role.grant(Perms.rw, "/single")
        await user.grant("reader")
        assert user.roles == ["reader"]
        expected = {Perm(Perms.r, b"/data/", b"/data0"), Perm(Perms.rw, b"/single", None)}
        assert set(role.perms) == expected
        assert set((await root.get_role("reader")).perms) == expected
        assert await root.get_user("alice") == user
        assert [u.name for u in await root.users()] == ["alice", "root"]
        assert [r.name for r in await root.roles()] == ["reader", "root"]

        shown = etcdctl(auth_server, "user", "get", "alice")
        assert "User: alice" in shown and "Roles: reader" in shown
        shown = etcdctl(auth_server, "role", "get", "reader")
        read, write = shown.split("KV Write:")
        assert "/data/" in read and "/data0" in read and "/single" in read
        assert "/single" in write and "/data/" not in write
        assert etcdctl(auth_server, "user", "list").split() == ["alice", "root"]

        # And the other way: what etcdctl makes, the client reads.
        etcdctl(auth_server, "role", "add", "writer")
        etcdctl(auth_server, "role", "grant-permission", "writer", "--prefix=true",
                "write", "/w/")
        etcdctl(auth_server, "user", "grant-role", "alice", "writer")
        assert (await root.get_role("writer")).perms == [Perm(Perms.w, b"/w/", b"/w0")]
        assert sorted((await root.get_user("alice")).roles) == ["reader", "writer"]

        # Granting the same range again replaces its mode.
        await root.grant_permission_role("reader", Perms.rw, "/data/", end="/data0")
        perms = (await root.get_role("reader")).perms
        assert Perm(Perms.rw, b"/data/", b"/data0") in perms and len(perms) == 2

        await role.delete()
        assert "reader" not in etcdctl(auth_server, "role", "list").split()
        await user.delete()
        assert etcdctl(auth_server, "user", "list").split() == ["root"]

    as_root(auth_server, body)


def test_errors_and_idempotent_revokes(auth_server: EtcdServer) -> None:
    async def body(root: etcd3.aio.Etcd3Client) -> None:
        await root.add_user("bob", "bob-pw")
        with pytest.raises(exceptions.AlreadyExistsError):
            await root.add_user("bob", "other")
        with pytest.raises(ValueError, match="password"):
            await root.add_user("eve", "")
        with pytest.raises(exceptions.EntityNotFoundError, match="nobody"):
            await root.get_user("nobody")
        with pytest.raises(exceptions.EntityNotFoundError):
            await root.grant_role("bob", "no-such-role")
        role = await root.add_role("ops")
        with pytest.raises(exceptions.AlreadyExistsError):
            await root.add_role("ops")
        with pytest.raises(ValueError, match="Perms"):
            await role.grant(7, "/x")
        with pytest.raises(ValueError, match="contradicts prefix=True"):
            await role.grant(Perms.r, "/ops/", end="/b", prefix=True)
        await role.grant(Perms.rw, "/ops/", prefix=True)
        user = await root.get_user("bob")
        await user.grant("ops")
        assert await user.revoke("ops") is True
        assert await root.revoke_role("bob", "ops") is False
        assert (await root.get_user("bob")).roles == [] == user.roles
        assert await role.revoke("/ops/", prefix=True) is True
        assert await role.revoke("/ops/", end="/ops0") is False
        assert await root.revoke_permission_role("ops", "/ops/", prefix=True) is False
        assert (await root.get_role("ops")).perms == [] == role.perms
        with pytest.raises(exceptions.EntityNotFoundError):
            await root.revoke_role("nobody", "ops")
        with pytest.raises(exceptions.EntityNotFoundError):
            await root.revoke_permission_role("no-such-role", "/ops/", prefix=True)
        await root.delete_user("bob")
        with pytest.raises(exceptions.EntityNotFoundError):
            await root.delete_user("bob")

    as_root(auth_server, body)


def test_permissions_are_enforced_for_an_aio_user(auth_server: EtcdServer) -> None:
    async def body(root: etcd3.aio.Etcd3Client) -> None:
        await root.add_user("carol", "carol-pw")
        await (await root.add_role("carol-role")).grant(Perms.rw, "/carol/", prefix=True)
        await root.grant_role("carol", "carol-role")
        async with aio_client(auth_server, "carol", "carol-pw") as carol:
            await carol.put("/carol/a", "1")
            assert (await carol.get("/carol/a"))[0] == b"1"
            with pytest.raises(exceptions.PermissionDeniedError, match="/outside"):
                await carol.put("/outside", "x")
            with pytest.raises(exceptions.PermissionDeniedError):
                await carol.add_user("mallory", "pw")
            assert await root.revoke_role("carol", "carol-role") is True
            with pytest.raises(exceptions.PermissionDeniedError, match="/carol/a"):
                await carol.get("/carol/a")

    as_root(auth_server, body)


def test_changing_own_password_keeps_the_client_working(auth_server: EtcdServer) -> None:
    async def body(root: etcd3.aio.Etcd3Client) -> None:
        await root.add_user("admin2", "old-pw")
        await root.grant_role("admin2", "root")
        async with aio_client(auth_server, "admin2", "old-pw") as admin:
            await admin.put("/pw/a", "1")
            await admin.change_password("admin2", "new-pw")
            # The password change invalidated admin2's tokens: the client must
            # re-authenticate, with the new password.
            await admin.put("/pw/b", "2")
            assert (await admin.get("/pw/a"))[0] == b"1"
        async with aio_client(auth_server, "admin2", "old-pw") as stale:
            with pytest.raises(exceptions.AuthenticationFailedError):
                await stale.get("/pw/a")

    as_root(auth_server, body)


def test_enable_auth_without_root_user_says_what_to_do() -> None:
    async def main(server: EtcdServer) -> None:
        async with etcd3.aio.client(host=server.host, port=server.port) as client, \
                aio_client(server) as early:
            await early.put("/early", "1")  # credentials while auth is off: no token
            with pytest.raises(exceptions.PreconditionFailedError, match="Add user 'root'"):
                await client.enable_auth()
            await client.add_user("root", ROOT_PASSWORD)
            await client.add_role("root")
            with pytest.raises(exceptions.PreconditionFailedError, match="root role"):
                await client.enable_auth()
            await client.grant_role("root", "root")
            assert (await client.auth_status()).enabled is False
            assert await client._refuses_anonymous_calls(None) is False
            await client.enable_auth()
            status = await early.auth_status()
            assert status.enabled is True
            if not (await early.status()).version.startswith("3.4."):
                assert status.auth_revision > 0  # etcd 3.4's AuthStatus has no revision
            assert (await early.get("/early"))[0] == b"1"
            assert await client._refuses_anonymous_calls(None) is True
            with pytest.raises(exceptions.AuthError):
                await client.get("/early")
            await early.disable_auth()
            assert (await client.auth_status()).enabled is False
            assert (await client.get("/early"))[0] == b"1"

    with EtcdServer(name="etcd-aio-noroot") as server:
        asyncio.run(main(server))


# -- 2-second tokens under concurrent load --------------------------------------------

TOKEN_TTL = 2
ROUNDS = 3
WORKERS = 32
OPS_PER_WORKER = 15
BULK_ITEMS = 2_000


@pytest.fixture(params=["simple", "jwt"])
def short_token_server(request: Any, tmp_path: Path) -> Iterator[EtcdServer]:
    if request.param == "simple":
        args = ["--auth-token=simple", f"--auth-token-ttl={TOKEN_TTL}"]
    else:
        from test_token_refresh import _rsa_key_pair

        private, public = _rsa_key_pair(tmp_path)
        args = [f"--auth-token=jwt,pub-key={public},priv-key={private},"
                f"sign-method=RS256,ttl={TOKEN_TTL}s"]
    with EtcdServer(name=f"etcd-aio-{request.param}-token", extra_args=args) as server:
        enable_root_auth(server)
        yield server


def test_two_second_tokens_are_refreshed_under_concurrent_load(
        short_token_server: EtcdServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="etcd3")

    async def worker(client: etcd3.aio.Etcd3Client, round_: int,
                     n: int) -> List[Optional[bytes]]:
        seen = []
        for i in range(OPS_PER_WORKER):
            key = f"/load/{round_}/{n:02d}/{i:02d}"
            await client.put(key, key)
            seen.append((await client.get(key))[0])
        await client.auth_status()
        assert "root" in [user.name for user in await client.users()]
        return seen

    async def main() -> None:
        async with aio_client(short_token_server, timeout=10) as client:
            for round_ in range(ROUNDS):
                if round_:
                    # Every token issued so far is expired now (simple tokens after
                    # TTL seconds unused, JWTs TTL seconds after issue).
                    await asyncio.sleep(TOKEN_TTL + 1)
                bulk = asyncio.ensure_future(client.put_many(
                    ((f"/bulk/{round_}/{i:04d}", "v") for i in range(BULK_ITEMS)),
                    ops_per_txn=50))
                results = await asyncio.gather(*(worker(client, round_, n)
                                                 for n in range(WORKERS)))
                assert await bulk == BULK_ITEMS
                assert [v for seen in results for v in seen] == [
                    f"/load/{round_}/{n:02d}/{i:02d}".encode()
                    for n in range(WORKERS) for i in range(OPS_PER_WORKER)]
            response = await client.get_prefix_response("/load/", count_only=True)
            assert response.count == ROUNDS * WORKERS * OPS_PER_WORKER
            response = await client.get_prefix_response("/bulk/", count_only=True)
            assert response.count == ROUNDS * BULK_ITEMS
            # A snapshot stream opened with an expired token is reopened with a new one.
            await asyncio.sleep(TOKEN_TTL + 1)
            snapshot = io.BytesIO()
            assert await client.snapshot(snapshot) == len(snapshot.getvalue()) > 0
            await asyncio.sleep(TOKEN_TTL + 1)
            assert sum([len(chunk) async for chunk in client.snapshot_stream()]) > 0

    asyncio.run(main())
    assert "re-authenticating" in caplog.text
