"""The python-etcd3 README tour, line by line, against a real etcd.

Keys, locks, transactions, watches (iterators and callbacks), then "enabling
authentication.. it's a whole process": users, roles, permissions, and disabling it
again. The watch loops are bounded (a feeder thread writes the events they wait for).

The authentication part changes the cluster's users and enables auth, so it runs
only on the etcd this script starts, unless ``--auth`` is given with ETCD_ENDPOINTS
(it cleans up after itself either way). Run:  python examples/seed_tour.py
"""

from __future__ import annotations

import argparse
import threading
from typing import Any, Callable, List, Optional

from _support import etcd_endpoints

import etcd3

ROOT_PASSWORD = "SuperSecretPassword8"


def feed(etcd: etcd3.Etcd3Client, key_of: Callable[[int], str]) -> threading.Event:
    """Put keys from another thread until the returned event is set (at most 200)."""
    done = threading.Event()

    def run() -> None:
        for i in range(200):
            if done.wait(0.01):
                return
            etcd.put(key_of(i), "doot")

    threading.Thread(target=run, daemon=True).start()
    return done


def basics(etcd: etcd3.Etcd3Client) -> None:
    etcd.get('foo')
    etcd.put('bar', 'doot')
    etcd.delete('bar')

    # locks
    lock = etcd.lock('thing')
    lock.acquire()
    print("lock 'thing' acquired:", lock.is_acquired())
    lock.release()

    with etcd.lock('doot-machine') as lock:
        print("lock 'doot-machine' held:", lock.is_acquired())

    # transactions
    etcd.put('/doot/testing', 'doot')
    succeeded, _responses = etcd.transaction(
        compare=[
            etcd.transactions.value('/doot/testing') == 'doot',
            etcd.transactions.version('/doot/testing') > 0,
        ],
        success=[etcd.transactions.put('/doot/testing', 'success')],
        failure=[etcd.transactions.put('/doot/testing', 'failure')],
    )
    print("transaction succeeded:", succeeded, "->", etcd.get('/doot/testing')[0])


def watches(etcd: etcd3.Etcd3Client) -> None:
    # watch key: the loop stops itself after 11 events
    watch_count = 0
    events_iterator, cancel = etcd.watch("/doot/watch")
    fed = feed(etcd, lambda i: "/doot/watch")
    for event in events_iterator:
        print(event)
        watch_count += 1
        if watch_count > 10:
            cancel()
    fed.set()
    print("watch key: saw", watch_count, "events")

    # watch prefix
    watch_count = 0
    events_iterator, cancel = etcd.watch_prefix("/doot/watch/prefix/")
    fed = feed(etcd, lambda i: f"/doot/watch/prefix/{i}")
    for event in events_iterator:
        print(event)
        watch_count += 1
        if watch_count > 10:
            cancel()
    fed.set()
    print("watch prefix: saw", watch_count, "events")

    # receive watch events via a callback function (it gets a WatchResponse)
    got: List[Any] = []
    seen = threading.Event()

    def watch_callback(response: Any) -> None:
        got.append(response)
        seen.set()

    watch_id = etcd.add_watch_callback("/anotherkey", watch_callback)
    etcd.put("/anotherkey", "doot")
    seen.wait(5)
    etcd.cancel_watch(watch_id)
    print("callback got:", got[0].events if got else "nothing")

    seen.clear()
    watch_id = etcd.add_watch_prefix_callback("/doot/watch/prefix/", watch_callback)
    etcd.put("/doot/watch/prefix/callback", "doot")
    seen.wait(5)
    etcd.cancel_watch(watch_id)


def enable_auth(etcd: etcd3.Etcd3Client) -> None:
    # Add root user -- don't lock yourself out
    etcd.add_user("root", ROOT_PASSWORD)
    etcd.add_role("root")
    user = etcd.get_user("root")
    user.grant("root")
    etcd.grant_role("root", "root")  # the alternate method: granting twice is fine
    etcd.enable_auth()
    print("auth enabled")


def users_and_roles(endpoints: List[str]) -> None:
    # Now authenticate the connection as it's required now
    with etcd3.client(endpoints=endpoints, user="root", password=ROOT_PASSWORD) as etcd:
        etcd.add_user("doot", "doot_is_a_password_too")
        etcd.add_role("role.doot")
        role = etcd.get_role("role.doot")
        role.grant(etcd3.Perms.rw, "/locations/doot")             # a single key
        role.grant(etcd3.Perms.rw, "/clients/doot/", prefix=True)  # a "tree"
        role.grant(etcd3.Perms.rw, "/clients/doot/", end="/clients/doot0")  # same grant
        etcd.grant_permission_role("role.doot", etcd3.Perms.rw,
                                   "/clients/doot/", end="/clients/doot0")
        etcd.grant_role("doot", "role.doot")
        print("role.doot permissions:", etcd.get_role("role.doot").perms)

        with etcd3.client(endpoints=endpoints, user="doot",
                          password="doot_is_a_password_too") as doot:
            doot.put("/clients/doot/x", "mine")
            try:
                doot.put("/clients/other", "not mine")
            except etcd3.exceptions.PermissionDeniedError as error:
                print("doot outside its tree:", type(error).__name__)

        user = etcd.get_user("doot")
        print("revoke role:", user.revoke("role.doot"),
              "| again (idempotent):", etcd.revoke_role("doot", "role.doot"))
        role = etcd.get_role("role.doot")
        role.revoke("/clients/doot/", prefix=True)
        etcd.revoke_permission_role("role.doot", "/clients/doot/", prefix=True)
        print("users:", [u.name for u in etcd.users()],
              "roles:", [r.name for r in etcd.roles()])

        # Disable authentication, and leave the cluster as we found it
        etcd.disable_auth()
        etcd.delete_user("doot")
        etcd.delete_role("role.doot")
        etcd.delete_user("root")
        etcd.delete_role("root")
    print("auth disabled")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auth", action="store_true",
                        help="run the authentication part on ETCD_ENDPOINTS too")
    args = parser.parse_args(argv)
    from _support import configured_endpoints

    run_auth = args.auth or not configured_endpoints()
    with etcd_endpoints() as endpoints:
        with etcd3.client(endpoints=endpoints, timeout=10) as etcd:
            basics(etcd)
            watches(etcd)
            etcd.delete_prefix("/doot/")
            etcd.delete("/anotherkey")
            if run_auth:
                enable_auth(etcd)
        if run_auth:
            users_and_roles(endpoints)
    print("seed tour done.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
