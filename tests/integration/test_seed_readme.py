"""The user's seed README (shared/seed-README.rst), run top to bottom against etcd.

Its lines are kept as written, with two typos fixed: ``etc3d`` -> ``etcd3`` and
``doot.role`` -> ``role.doot``. The watch loops are bounded: a helper thread puts keys
until the loop has seen enough events, and cancels the watch itself if it never does.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import pytest

import etcd3
from etcd3.testing import EtcdServer

MAX_PUTS = 200


@pytest.fixture
def seed_server() -> Iterator[EtcdServer]:
    with EtcdServer(name="etcd-seed") as server:
        yield server


def _feed(server: EtcdServer, key_of: Callable[[int], str], cancel: Callable[[], Any]
          ) -> threading.Event:
    """Put keys from another thread until the returned event is set (bounded)."""
    done = threading.Event()

    def run() -> None:
        with etcd3.client(host=server.host, port=server.port) as feeder:
            for i in range(MAX_PUTS):
                if done.wait(0.01):
                    return
                feeder.put(key_of(i), "doot")
        cancel()  # the loop never ended: end it so the test fails instead of hanging

    threading.Thread(target=run, daemon=True).start()
    return done


def test_seed_readme_top_to_bottom(seed_server: EtcdServer) -> None:
    etcd = etcd3.client(host=seed_server.host, port=seed_server.port)

    etcd.get('foo')
    etcd.put('bar', 'doot')
    etcd.delete('bar')
    assert etcd.get('bar') == (None, None)

    # locks
    lock = etcd.lock('thing')
    lock.acquire()
    # do something
    assert lock.is_acquired()
    lock.release()

    with etcd.lock('doot-machine') as lock:
        # do something
        assert lock.is_acquired()

    # transactions
    etcd.put('/doot/testing', 'doot')
    etcd.transaction(
        compare=[
            etcd.transactions.value('/doot/testing') == 'doot',
            etcd.transactions.version('/doot/testing') > 0,
        ],
        success=[
            etcd.transactions.put('/doot/testing', 'success'),
        ],
        failure=[
            etcd.transactions.put('/doot/testing', 'failure'),
        ]
    )
    assert etcd.get('/doot/testing')[0] == b'success'

    # watch key
    watch_count = 0
    events_iterator, cancel = etcd.watch("/doot/watch")
    fed = _feed(seed_server, lambda i: "/doot/watch", cancel)
    for event in events_iterator:
        print(event)
        watch_count += 1
        if watch_count > 10:
            cancel()
    fed.set()
    assert watch_count == 11

    # watch prefix
    watch_count = 0
    events_iterator, cancel = etcd.watch_prefix("/doot/watch/prefix/")
    fed = _feed(seed_server, lambda i: f"/doot/watch/prefix/{i}", cancel)
    for event in events_iterator:
        print(event)
        watch_count += 1
        if watch_count > 10:
            cancel()
    fed.set()
    assert watch_count == 11

    # recieve watch events via callback function
    seen = threading.Event()

    def watch_callback(event: Any) -> None:
        print(event)
        seen.set()

    watch_id = etcd.add_watch_callback("/anotherkey", watch_callback)
    etcd.put("/anotherkey", "doot")
    assert seen.wait(5)

    # cancel watch
    etcd.cancel_watch(watch_id)

    # recieve watch events for a prefix via callback function
    seen.clear()
    watch_id = etcd.add_watch_prefix_callback("/doot/watch/prefix/", watch_callback)
    etcd.put("/doot/watch/prefix/callback", "doot")
    assert seen.wait(5)

    # cancel watch
    etcd.cancel_watch(watch_id)

    #
    # Enabling authentication.. it's a whole process
    #

    # Set up the base credentials for the system
    # Add root user -- don't lock your self out
    etcd.add_user("root", "SuperSecretPassword8")
    # Add root role
    etcd.add_role("root")

    # Add the root role to the root user
    user = etcd.get_user("root")
    user.grant("root")
    # Add the root role to the root user, alternate method
    etcd.grant_role("root", "root")

    # Wonder Powers Activate Authentication.
    etcd.enable_auth()

    #
    # End enabling authentication
    #
    etcd.close()

    # Now authenticate the connection as it's required now
    etcd = etcd3.client(host=seed_server.host, port=seed_server.port,
                        user="root", password="SuperSecretPassword8")
    assert etcd.auth_status().enabled

    # Add normal user
    etcd.add_user("doot", "doot_is_a_password_too")

    # Add a normal role (int this case specific to the doot user by naming
    # convention.  This only has meaning if you make it have meaning...
    etcd.add_role("role.doot")

    # Start granting permissions
    role = etcd.get_role("role.doot")
    # Grant permssion to a single key
    role.grant(etcd3.Perms.rw, "/locations/doot")
    # Grant permssion to a "tree"
    role.grant(etcd3.Perms.rw, "/clients/doot/", prefix=True)
    # This creates the exact same grant.
    role.grant(etcd3.Perms.rw, "/clients/doot/", end="/clients/doot0")
    # Alternate method:
    etcd.grant_permission_role("role.doot", etcd3.Perms.rw,
        "/clients/doot/", end="/clients/doot0")
    assert len(etcd.get_role("role.doot").perms) == 2

    # Assign the role to the doot user
    etcd.grant_role("doot", "role.doot")
    with etcd3.client(host=seed_server.host, port=seed_server.port,
                      user="doot", password="doot_is_a_password_too") as doot:
        doot.put("/clients/doot/x", "mine")
        doot.put("/locations/doot", "here")
        with pytest.raises(etcd3.exceptions.PermissionDeniedError):
            doot.put("/clients/other", "not mine")

    # Revoke a role from a user
    user = etcd.get_user("doot")
    user.revoke("role.doot")
    # Equivelent
    etcd.revoke_role("doot", "role.doot")
    assert etcd.get_user("doot").roles == []

    # Revoke a permission from a grant
    role = etcd.get_role("role.doot")
    role.revoke("/clients/doot/", prefix=True)
    # Or equivelent 1
    role = etcd.get_role("role.doot")
    role.revoke("/clients/doot/", end="/clients/doot0")
    # Or equivelent 2
    etcd.revoke_permission_role("role.doot", "/clients/doot/",
        end="/clients/doot0")
    # Or equivelent 3
    etcd.revoke_permission_role("role.doot", "/clients/doot/", prefix=True)
    assert [p.key for p in etcd.get_role("role.doot").perms] == [b"/locations/doot"]

    # Disable authentication
    etcd.disable_auth()
    assert not etcd.auth_status().enabled
    etcd.close()
