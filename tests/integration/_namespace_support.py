"""Helpers shared by the namespace tests (threaded and asyncio views).

The reused test bodies: every body of the plain client's KV, transaction, watch,
lock, lease, election and STM modules that takes the client from a fixture runs again
with a view as its client. Keys are planted around the namespace
(:data:`OUTSIDE`): a body that expects exact contents fails if the view sees one of
them, and :func:`planted` checks after each test that they are untouched and that
nothing was written outside the namespace.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Dict, Iterator, List, Mapping, Tuple

import etcd3
from etcd3.testing import EtcdServer
from etcd3.testing.fixtures import threaded_client

PREFIX = "ns/"
#: Keys next to the namespace (below it, the prefix itself, its end, elsewhere).
OUTSIDE = {b"ns": b"below", b"ns/": b"the prefix itself", b"ns0": b"the end",
           b"/t/key": b"a key the bodies use, outside", b"a": b"elsewhere"}

REUSED = ("test_kv", "test_transactions", "test_watch", "test_locks", "test_leases",
          "test_election", "test_stm")
#: Bodies that can't run through a view, and why.
NOT_THROUGH_A_VIEW = {
    "test_watch_once": "inspects the client's watch engine",
    "test_joiner_gets_only_later_events_and_server_watch_is_shared":
        "inspects the client's watch engine",
    "test_thousand_watchers_shared_and_distinct": "inspects the client's watch engine",
    "test_compacted_start_revision": "inspects the client's watch engine",
    "test_python_holder_excludes_etcdctl_lock": "etcdctl with absolute keys",
    "test_etcdctl_holder_excludes_python_lock": "etcdctl with absolute keys",
    "test_etcdctl_candidate_waits_behind_python_leader": "etcdctl with absolute keys",
    "test_etcdctl_observes_python_proclamations": "etcdctl with absolute keys",
    "test_killed_holder_frees_the_lock_after_its_ttl": "a holder in another process",
    "test_processes_increment_a_counter_exactly": "holders in other processes",
}
#: The fixtures through which a body gets the client.
_CLIENT_FIXTURES = {"etcd_client", "sorted_keys", "txn_client"}


def reused_bodies(driver: str, skipped: Mapping[str, str]) -> Dict[str, Any]:
    """Every body of the :data:`REUSED` modules that takes the client from a fixture
    and runs with ``driver``, but those in ``skipped``, as ``test_<module>__<name>``."""
    bodies = {}
    for module_name in REUSED:
        module = importlib.import_module(module_name)
        for name, body in vars(module).items():
            if not name.startswith("test_") or not inspect.isfunction(body):
                continue
            if name in skipped or body.__module__ != module_name:
                continue
            drivers = [mark.args for mark in getattr(body, "pytestmark", [])
                       if mark.name == "drivers"]
            if drivers and driver not in drivers[0]:
                continue
            if _CLIENT_FIXTURES & set(inspect.signature(body).parameters):
                bodies[f"test_{module_name[5:]}__{name[5:]}"] = body
    return bodies


def check_untouched(client: etcd3.Etcd3Client) -> None:
    """The :data:`OUTSIDE` keys are as planted, and no other key outside ``ns/``."""
    stored = {kv.key: kv.value for kv in client.get_all_response().kvs}
    assert {key: stored.get(key) for key in OUTSIDE} == OUTSIDE
    assert [key for key in stored if key not in OUTSIDE and not key.startswith(b"ns/")
            ] == []


def planted(server: EtcdServer) -> Iterator[etcd3.Etcd3Client]:
    """The body of a ``plain`` fixture: a threaded client of the emptied ``server``
    with the :data:`OUTSIDE` keys; checks them after the test (:func:`check_untouched`)."""
    made = threaded_client(server)
    client = next(made)
    try:
        for key, value in OUTSIDE.items():
            client.put(key, value)
        yield client
        check_untouched(client)
    finally:
        made.close()


def etcdctl_pairs(server: EtcdServer, prefix: str) -> List[Tuple[str, str]]:
    """``(key, value)`` of every key starting with ``prefix``, as etcdctl prints them."""
    lines = server.etcdctl("get", "--prefix", prefix).stdout.splitlines()
    return list(zip(lines[::2], lines[1::2]))
