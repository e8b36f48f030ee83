"""Locks: Go ``concurrency.Mutex`` semantics and layout, python-etcd3 names, real etcd."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from typing import Any, List

import pytest
from _concurrency_support import etcdctl, keys, readline, wait_for

from etcd3 import exceptions
from etcd3.testing import EtcdServer

pytestmark = pytest.mark.drivers("threaded", "aio")

# Other processes are plain ``python -c`` interpreters (not multiprocessing), each
# with its own client, as separate services would be. faulthandler makes a stuck
# one print every thread's stack and exit instead of hanging the test.
_PROLOGUE = """
import faulthandler, sys, time
faulthandler.enable()
faulthandler.dump_traceback_later(float(sys.argv[1]), exit=True)
import etcd3
host, port = sys.argv[2].rsplit(":", 1)
client = etcd3.client(host=host, port=int(port), timeout=15)
"""

_COUNTER = _PROLOGUE + """
key, rounds = sys.argv[3], int(sys.argv[4])
try:
    for _ in range(rounds):
        lock = client.lock("counter", ttl=5)
        if not lock.acquire(timeout=60):
            sys.exit("lock not acquired")
        value, _ = client.get(key)
        client.put(key, str(int(value) + 1))
        if not lock.release():
            sys.exit("lock lost while held")
finally:
    client.close()
print("done", flush=True)
"""

_HOLDER = _PROLOGUE + """
lock = client.lock(sys.argv[3], ttl=int(sys.argv[4]))
if lock.acquire(timeout=10):
    faulthandler.cancel_dump_traceback_later()
    print("ready", flush=True)
time.sleep(60)
"""


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


# -- basics ---------------------------------------------------------------------------


def test_acquire_release_and_go_key_layout(etcd_client: Any) -> None:
    lock = etcd_client.lock("job", ttl=5)
    assert lock.name == "job" and lock.key == lock.prefix_key == "/locks/job"
    assert not lock.is_acquired()
    assert lock.acquire() is True
    assert lock.is_acquired()
    assert lock.owner_key == b"/locks/job/%x" % lock.lease.id
    assert keys(etcd_client, "/locks/job/") == [lock.owner_key]
    assert etcd_client.get_lease_info(lock.lease.id).TTL > 0
    lease = lock.lease
    assert lock.release() is True
    assert not lock.is_acquired()
    assert keys(etcd_client, "/locks/") == []
    assert etcd_client.get_lease_info(lease.id).TTL == -1  # revoked on release


def test_context_manager_and_custom_prefix(etcd_client: Any) -> None:
    with etcd_client.lock("ctx", prefix="/mine") as lock:
        assert lock.prefix_key == "/mine/ctx" and lock.is_acquired()
        assert lock.key.startswith("/mine/ctx/") and etcd_client.get(lock.key)[0] == b""
        assert lock.owner_key.startswith(b"/mine/ctx/")
    assert not lock.is_acquired()
    assert keys(etcd_client, "/mine/") == []


def test_enter_raises_when_not_acquired(etcd_client: Any) -> None:
    holder = etcd_client.lock("busy")
    assert holder.acquire()
    with pytest.raises(exceptions.LockError, match="could not acquire"), \
            etcd_client.lock("busy", timeout=0.2):
        pytest.fail("entered a lock held elsewhere")
    assert holder.is_acquired()
    assert holder.release()


def test_non_blocking_and_timeout_leave_nothing_behind(etcd_client: Any) -> None:
    holder = etcd_client.lock("nb", ttl=5)
    assert holder.acquire()
    other = etcd_client.lock("nb", ttl=5)
    assert other.acquire(timeout=0) is False
    started = time.monotonic()
    assert other.acquire(timeout=0.5) is False
    assert time.monotonic() - started >= 0.5
    assert not other.is_acquired() and other.lease is None
    assert keys(etcd_client, "/locks/nb/") == [holder.owner_key]
    assert holder.release()
    assert other.acquire(timeout=0) is True
    assert other.release()


def test_release_when_not_held_is_false(etcd_client: Any) -> None:
    lock = etcd_client.lock("never")
    assert lock.release() is False
    assert lock.acquire()
    assert lock.release() is True
    assert lock.release() is False
    with pytest.raises(ValueError, match="acquired"):
        lock.refresh()


def test_refresh_and_reacquire_while_held(etcd_client: Any) -> None:
    lock = etcd_client.lock("again", ttl=5)
    assert lock.acquire()
    revision = lock.revision
    assert lock.refresh()[0].TTL == 5
    # Not re-entrant: acquiring a held lock changes nothing and answers at once, as
    # python-etcd3's own tests expect: False with a timeout, True without one (there
    # the lease expired and the lock was taken again; this one's never expires).
    assert lock.acquire(timeout=0) is False
    assert lock.acquire(timeout=1) is False
    assert lock.acquire(None) is True
    assert lock.is_acquired()
    assert lock.revision == revision
    assert len(keys(etcd_client, "/locks/again/")) == 1
    # A nested ``with`` would release the lock on its way out: refused.
    with pytest.raises(exceptions.LockError, match="already held"), lock:
        pass
    assert lock.is_acquired()
    assert lock.release()
    assert not lock.release()  # held once, released once


@pytest.mark.parametrize("kwargs, error", [
    ({"name": ""}, ValueError),
    ({"name": b""}, ValueError),
    ({"name": "x", "ttl": 0}, ValueError),
    ({"name": "x", "ttl": -3}, ValueError),
    ({"name": "x", "timeout": -1}, ValueError),
    ({"name": "x", "ttl": "60"}, TypeError),
    ({"name": 5}, TypeError),
])
def test_bad_input(etcd_client: Any, kwargs: Any, error: type) -> None:
    with pytest.raises(error):
        etcd_client.lock(**kwargs)


def test_negative_acquire_timeout(etcd_client: Any) -> None:
    with pytest.raises(ValueError):
        etcd_client.lock("neg").acquire(timeout=-1)


# -- ownership ------------------------------------------------------------------------


def test_is_owner_fences_writes(etcd_client: Any) -> None:
    lock = etcd_client.lock("fence", ttl=5)
    with pytest.raises(exceptions.LockError):
        lock.is_owner()
    assert lock.acquire()
    put = etcd_client.transactions.put
    assert etcd_client.transaction(compare=[lock.is_owner()],
                                   success=[put("/guarded", "1")])[0]
    stale, old_revision = lock.is_owner(), lock.revision
    assert lock.release()
    successor = etcd_client.lock("fence", ttl=5)
    assert successor.acquire()
    assert successor.revision > old_revision  # the fencing token grows
    assert not etcd_client.transaction(compare=[stale], success=[put("/guarded", "2")])[0]
    assert etcd_client.get("/guarded")[0] == b"1"
    assert successor.release()


def test_lease_expiry_while_held(etcd_client: Any) -> None:
    lock = etcd_client.lock("expiring", ttl=5)
    assert lock.acquire()
    etcd_client.revoke_lease(lock.lease.id)  # as if the lease ran out
    assert lock.is_acquired() is False
    assert lock.release() is False  # nothing of ours left to delete
    waiter = etcd_client.lock("expiring")
    assert waiter.acquire(timeout=0)
    assert waiter.release()


def test_release_never_deletes_a_newer_holders_key(etcd_client: Any) -> None:
    old = etcd_client.lock("gen", ttl=5)
    assert old.acquire()
    etcd_client.revoke_lease(old.lease.id)
    new = etcd_client.lock("gen", ttl=5)
    assert new.acquire(timeout=0)
    assert old.release() is False
    assert new.is_acquired()
    assert new.release()


def test_waiters_are_served_in_fifo_order(etcd_client: Any) -> None:
    holder = etcd_client.lock("fifo", ttl=5)
    assert holder.acquire()
    order: List[str] = []
    threads = []

    def wait_turn(lock: Any, name: str) -> None:
        if lock.acquire(timeout=20):
            order.append(name)
            time.sleep(0.05)
            lock.release()

    for index, name in enumerate("BCD"):
        thread = threading.Thread(target=wait_turn,
                                  args=(etcd_client.lock("fifo", ttl=5), name))
        thread.start()
        threads.append(thread)
        queued = index + 2
        wait_for(lambda: len(keys(etcd_client, "/locks/fifo/")) == queued)  # noqa: B023
    assert order == []
    assert holder.release()
    for thread in threads:
        thread.join(20)
    assert order == ["B", "C", "D"]


@pytest.mark.drivers("threaded")  # its workers are threaded-client processes
def test_processes_increment_a_counter_exactly(etcd_server: EtcdServer,
                                               etcd_client: Any) -> None:
    etcd_client.put("/counter", "0")
    workers = [_python(_COUNTER, "100", etcd_server.endpoint, "/counter", "100")
               for _ in range(4)]
    outcomes = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0, 0], outcomes
    assert all(out.strip() == "done" for out, _ in outcomes), outcomes
    assert etcd_client.get("/counter")[0] == b"400"
    assert keys(etcd_client, "/locks/") == []


def test_killed_holder_frees_the_lock_after_its_ttl(etcd_server: EtcdServer,
                                                    etcd_client: Any) -> None:
    ttl = 2
    holder = _python(_HOLDER, "25", etcd_server.endpoint, "crash", str(ttl))
    try:
        assert readline(holder, timeout=30) == "ready", "the holder did not get the lock"
        holder.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        (_, meta), = etcd_client.get_prefix("/locks/crash/")
        remaining = etcd_client.get_lease_info(meta.lease_id).TTL
        assert remaining >= 0
        waiter = etcd_client.lock("crash", ttl=5)
        assert waiter.acquire(timeout=0) is False  # not before the TTL
        assert waiter.acquire(timeout=ttl + 5) is True
        waited = time.monotonic() - killed_at
        assert waited >= remaining - 0.2
        assert waited <= ttl + 3
        assert waiter.release()
    finally:
        holder.kill()
        holder.communicate(timeout=10)


# -- etcdctl interop ---------------------------------------------------------------


def test_python_holder_excludes_etcdctl_lock(etcd_server: EtcdServer,
                                             etcd_client: Any) -> None:
    lock = etcd_client.lock("shared", ttl=5)
    assert lock.acquire()
    proc = etcdctl(etcd_server, "lock", "/locks/shared", "echo", "etcdctl-got-it")
    try:
        wait_for(lambda: len(keys(etcd_client, "/locks/shared/")) == 2)
        time.sleep(0.3)
        assert proc.poll() is None  # still waiting behind us
        assert lock.release()
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "etcdctl-got-it" in out
    finally:
        proc.kill()
        proc.wait()


def test_etcdctl_holder_excludes_python_lock(etcd_server: EtcdServer,
                                             etcd_client: Any) -> None:
    proc = etcdctl(etcd_server, "lock", "/locks/cli")
    try:
        held_key = readline(proc)
        assert held_key.startswith("/locks/cli/")
        lock = etcd_client.lock("cli", ttl=5)
        assert lock.acquire(timeout=0) is False
        assert lock.acquire(timeout=0.3) is False
        proc.send_signal(signal.SIGINT)  # etcdctl unlocks on interrupt
        assert lock.acquire(timeout=10) is True
        assert lock.owner_key.startswith(b"/locks/cli/")
        assert lock.release()
    finally:
        proc.kill()
        proc.communicate()
