"""The python-etcd3 README tour with ``await``: the same calls through ``etcd3.aio``.

Keys, locks, transactions, watches (async iterators and callbacks), then "enabling
authentication.. it's a whole process": users, roles, permissions, and disabling it
again. Each call is the seed README's, awaited; the watch loops are bounded (a
feeder task writes the events they wait for).

The authentication part changes the cluster's users and enables auth, so it runs
only on the etcd this script starts, unless ``--auth`` is given with ETCD_ENDPOINTS
(it cleans up after itself either way). Run:  python examples/aio_seed_tour.py
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, Callable, List, Optional

from _support import configured_endpoints, etcd_endpoints

import etcd3
import etcd3.aio

ROOT_PASSWORD = "SuperSecretPassword8"


async def feed(etcd: etcd3.aio.Etcd3Client, key_of: Callable[[int], str],
               done: asyncio.Event) -> None:
    """Put keys until ``done`` is set (at most 200)."""
    for i in range(200):
        if done.is_set():
            return
        await etcd.put(key_of(i), "doot")
        await asyncio.sleep(0.01)


async def basics(etcd: etcd3.aio.Etcd3Client) -> None:
    await etcd.get('foo')
    await etcd.put('bar', 'doot')
    await etcd.delete('bar')

    # locks
    lock = etcd.lock('thing')
    await lock.acquire()
    print("lock 'thing' acquired:", await lock.is_acquired())
    await lock.release()

    async with etcd.lock('doot-machine') as lock:
        print("lock 'doot-machine' held:", await lock.is_acquired())

    # transactions
    await etcd.put('/doot/testing', 'doot')
    succeeded, _responses = await etcd.transaction(
        compare=[
            etcd.transactions.value('/doot/testing') == 'doot',
            etcd.transactions.version('/doot/testing') > 0,
        ],
        success=[etcd.transactions.put('/doot/testing', 'success')],
        failure=[etcd.transactions.put('/doot/testing', 'failure')],
    )
    value, _meta = await etcd.get('/doot/testing')
    print("transaction succeeded:", succeeded, "->", value)


async def watches(etcd: etcd3.aio.Etcd3Client) -> None:
    # watch key: the loop stops itself after 11 events
    watch_count = 0
    events_iterator, cancel = await etcd.watch("/doot/watch")
    done = asyncio.Event()
    feeder = asyncio.create_task(feed(etcd, lambda i: "/doot/watch", done))
    async for event in events_iterator:
        print(event)
        watch_count += 1
        if watch_count > 10:
            await cancel()
    done.set()
    await feeder
    print("watch key: saw", watch_count, "events")

    # watch prefix
    watch_count = 0
    events_iterator, cancel = await etcd.watch_prefix("/doot/watch/prefix/")
    done = asyncio.Event()
    feeder = asyncio.create_task(feed(etcd, lambda i: f"/doot/watch/prefix/{i}", done))
    async for event in events_iterator:
        print(event)
        watch_count += 1
        if watch_count > 10:
            await cancel()
    done.set()
    await feeder
    print("watch prefix: saw", watch_count, "events")

    # receive watch events via a callback function (it gets a WatchResponse);
    # a plain function or a coroutine function
    got: List[Any] = []
    seen = asyncio.Event()

    def watch_callback(response: Any) -> None:
        got.append(response)
        seen.set()

    watch_id = await etcd.add_watch_callback("/anotherkey", watch_callback)
    await etcd.put("/anotherkey", "doot")
    await asyncio.wait_for(seen.wait(), 5)
    await etcd.cancel_watch(watch_id)
    print("callback got:", got[0].events)

    async def async_watch_callback(response: Any) -> None:
        got.append(response)
        seen.set()

    seen.clear()
    watch_id = await etcd.add_watch_prefix_callback("/doot/watch/prefix/",
                                                    async_watch_callback)
    await etcd.put("/doot/watch/prefix/callback", "doot")
    await asyncio.wait_for(seen.wait(), 5)
    await etcd.cancel_watch(watch_id)
    print("coroutine callback got:", got[-1].events)


async def enable_auth(etcd: etcd3.aio.Etcd3Client) -> None:
    # Add root user -- don't lock yourself out
    await etcd.add_user("root", ROOT_PASSWORD)
    await etcd.add_role("root")
    user = await etcd.get_user("root")
    await user.grant("root")
    await etcd.grant_role("root", "root")  # the alternate method: granting twice is fine
    await etcd.enable_auth()
    print("auth enabled")


async def users_and_roles(endpoints: List[str]) -> None:
    # Now authenticate the connection as it's required now
    async with etcd3.aio.client(endpoints=endpoints, user="root",
                                password=ROOT_PASSWORD) as etcd:
        await etcd.add_user("doot", "doot_is_a_password_too")
        await etcd.add_role("role.doot")
        role = await etcd.get_role("role.doot")
        await role.grant(etcd3.Perms.rw, "/locations/doot")             # a single key
        await role.grant(etcd3.Perms.rw, "/clients/doot/", prefix=True)  # a "tree"
        await role.grant(etcd3.Perms.rw, "/clients/doot/", end="/clients/doot0")  # same
        await etcd.grant_permission_role("role.doot", etcd3.Perms.rw,
                                         "/clients/doot/", end="/clients/doot0")
        await etcd.grant_role("doot", "role.doot")
        print("role.doot permissions:", (await etcd.get_role("role.doot")).perms)

        async with etcd3.aio.client(endpoints=endpoints, user="doot",
                                    password="doot_is_a_password_too") as doot:
            await doot.put("/clients/doot/x", "mine")
            try:
                await doot.put("/clients/other", "not mine")
            except etcd3.exceptions.PermissionDeniedError as error:
                print("doot outside its tree:", type(error).__name__)

        user = await etcd.get_user("doot")
        print("revoke role:", await user.revoke("role.doot"),
              "| again (idempotent):", await etcd.revoke_role("doot", "role.doot"))
        role = await etcd.get_role("role.doot")
        await role.revoke("/clients/doot/", prefix=True)
        await etcd.revoke_permission_role("role.doot", "/clients/doot/", prefix=True)
        print("users:", [u.name for u in await etcd.users()],
              "roles:", [r.name for r in await etcd.roles()])

        # Disable authentication, and leave the cluster as we found it
        await etcd.disable_auth()
        await etcd.delete_user("doot")
        await etcd.delete_role("role.doot")
        await etcd.delete_user("root")
        await etcd.delete_role("root")
    print("auth disabled")


async def tour(endpoints: List[str], run_auth: bool) -> None:
    async with etcd3.aio.client(endpoints=endpoints, timeout=10) as etcd:
        await basics(etcd)
        await watches(etcd)
        await etcd.delete_prefix("/doot/")
        await etcd.delete("/anotherkey")
        if run_auth:
            await enable_auth(etcd)
    if run_auth:
        await users_and_roles(endpoints)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auth", action="store_true",
                        help="run the authentication part on ETCD_ENDPOINTS too")
    args = parser.parse_args(argv)
    run_auth = args.auth or not configured_endpoints()
    with etcd_endpoints() as endpoints:
        asyncio.run(tour(endpoints, run_auth))
    print("aio seed tour done.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
