"""Fork as a deployment model: a client made before os.fork() works in the child as
a fresh one (calls, watches, leases with keepalive, locks), forks of a busy parent
do not crash the child, and a lock holder learns that it lost its lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import etcd3
from etcd3 import exceptions

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # Python >= 3.12 warns about any fork of a threaded process; surviving it is the point.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]


def _run_script(body: str, endpoint: str, timeout: float = 240) -> str:
    """Run ``body`` in a fresh interpreter (as a user's program would be); returns
    its stdout, failing the test on a non-zero exit."""
    script = "import os, sys, signal, threading, time\nimport etcd3\n" \
             f"ENDPOINT = {endpoint!r}\n" + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    return result.stdout


BUSY_PARENT = """
FORKS = 50
client = etcd3.client(endpoints=[ENDPOINT], timeout=10)
stop = threading.Event()

def busy(i):
    while not stop.is_set():
        client.get("/busy/%d" % i)
        client.put("/busy/%d" % i, "x")

threads = [threading.Thread(target=busy, args=(i,), daemon=True) for i in range(4)]
for thread in threads:
    thread.start()
events, cancel = client.watch_prefix("/busy/")
threading.Thread(target=lambda: [None for _ in events], daemon=True).start()
lease = client.lease(5, keep_alive=True)

def child():
    signal.alarm(60)
    me = "%d" % os.getpid()
    client.put("/child/" + me, "v")
    assert client.get("/child/" + me)[0] == b"v"
    watched, cancel_watch = client.watch("/child-watch/" + me)
    client.put("/child-watch/" + me, "w")
    assert next(watched).value == b"w"
    cancel_watch()
    with client.lock("fork-" + me, ttl=5) as lock:
        assert lock.is_acquired()

outcomes = {}
for _ in range(FORKS):
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            child()
        except BaseException as error:
            sys.stderr.write("child failed: %r\\n" % (error,))
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    outcome = ("signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status)
               else "exit %d" % os.WEXITSTATUS(status))
    outcomes[outcome] = outcomes.get(outcome, 0) + 1
stop.set()
print("OUTCOMES", outcomes)
"""


def test_busy_parent_forks_50_children_none_crashes(etcd_server) -> None:
    out = _run_script(BUSY_PARENT, etcd_server.endpoint)
    assert "OUTCOMES {'exit 0': 50}" in out, out


def test_rapid_forks_never_go_ahead_with_streams_in_grpc(etcd_server) -> None:
    """Forks in quick succession (a Pool starting its workers) while the parent's
    watch and keepalive streams reopen after each one: every fork still finds them
    out of gRPC (no fork waits out the gate and goes ahead regardless)."""
    script = textwrap.dedent(f"""
        import logging, os, sys, time
        import etcd3
        logging.basicConfig(level=logging.WARNING)
        client = etcd3.client(endpoints=[{etcd_server.endpoint!r}], timeout=5)
        events, cancel = client.watch_prefix("/rapid/")
        lease = client.lease(30, keep_alive=True)
        time.sleep(0.3)
        statuses = []
        for _ in range(10):
            pids = []
            for _ in range(4):
                pid = os.fork()
                if pid == 0:
                    client.put("/rapid-child/%d" % os.getpid(), "v")
                    os._exit(0)
                pids.append(pid)
            statuses += [os.waitpid(pid, 0)[1] for pid in pids]
        client.put("/rapid/after", "1")
        assert next(events).value == b"1"  # the parent's watch survived 40 forks
        print("STATUSES", sorted(set(statuses)))
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "STATUSES [0]" in result.stdout, (result.stdout, result.stderr[-3000:])
    assert "still in flight" not in result.stderr, result.stderr[-3000:]


def test_child_calls_even_when_forked_while_a_thread_was_creating_a_grpc_call(
        etcd_server) -> None:
    """gRPC holds a process-wide lock while it creates a call; a fork at that moment
    (seen under load: a stream reopening after the previous fork) must not leave the
    child's first call waiting on it forever. The lock is held here on purpose."""
    out = _run_script("""
        import grpc._observability
        client = etcd3.client(endpoints=[ENDPOINT], timeout=5)
        client.put("/before-fork", "1")
        inside, release = threading.Event(), threading.Event()

        def creating_a_call():
            with grpc._observability._plugin_lock:
                inside.set()
                release.wait()

        holder = threading.Thread(target=creating_a_call, daemon=True)
        holder.start()
        inside.wait()
        pid = os.fork()
        if pid == 0:
            signal.alarm(20)  # a hang kills the child: status is not 0
            client.put("/forked-child", "made it")
            os._exit(0 if client.get("/forked-child")[0] == b"made it" else 3)
        release.set()
        _, status = os.waitpid(pid, 0)
        print("CHILD", os.WEXITSTATUS(status) if os.WIFEXITED(status) else status)
        """, etcd_server.endpoint)
    assert "CHILD 0" in out, out


def test_child_keeps_its_lock_alive_past_the_ttl(etcd_server) -> None:
    out = _run_script("""
        client = etcd3.client(endpoints=[ENDPOINT], timeout=5)
        client.put("/before-fork", "1")  # the parent used the client before forking
        pid = os.fork()
        if pid == 0:
            signal.alarm(60)
            lock = client.lock("child-lock", ttl=2)
            ok = lock.acquire()
            time.sleep(5)  # 2.5 TTLs: only a working keepalive keeps it
            os._exit(0 if ok and lock.is_acquired() and not lock.lost else 4)
        _, status = os.waitpid(pid, 0)
        print("CHILD", os.WEXITSTATUS(status) if os.WIFEXITED(status) else status)
        """, etcd_server.endpoint)
    assert "CHILD 0" in out, out


def test_a_watch_of_the_parent_says_so_in_the_child(etcd_server) -> None:
    out = _run_script("""
        client = etcd3.client(endpoints=[ENDPOINT], timeout=5)
        events, cancel = client.watch("/parent-watch")
        pid = os.fork()
        if pid == 0:
            signal.alarm(30)
            try:
                next(events)
            except etcd3.exceptions.ForkedWatchError:
                os._exit(0)
            os._exit(5)
        _, status = os.waitpid(pid, 0)
        client.put("/parent-watch", "still mine")
        assert next(events).value == b"still mine"  # the parent's watch goes on
        print("CHILD", os.WEXITSTATUS(status) if os.WIFEXITED(status) else status)
        """, etcd_server.endpoint)
    assert "CHILD 0" in out, out


def test_multiprocessing_pool_inherits_a_client(etcd_server) -> None:
    """Pattern 1, create before fork (gunicorn --preload, Celery prefork, a fork
    Pool): the children use the parent's client object."""
    out = _run_script("""
        import multiprocessing
        client = etcd3.client(endpoints=[ENDPOINT], timeout=5)
        client.put("/pool/seed", "s")
        lease = client.lease(10, keep_alive=True)  # parent engines running at fork

        def work(i):
            client.put("/pool/%d" % i, str(i))
            with client.lock("pool-lock", ttl=5):
                return client.get("/pool/%d" % i)[0].decode()

        with multiprocessing.get_context("fork").Pool(4) as pool:
            print("RESULTS", sorted(pool.map(work, range(8)), key=int))
        """, etcd_server.endpoint)
    assert "RESULTS ['0', '1', '2', '3', '4', '5', '6', '7']" in out, out


def test_multiprocessing_pool_with_post_fork_client(etcd_server) -> None:
    """Pattern 2, a client per child made after the fork (gunicorn post_fork, uWSGI
    @postfork, Celery worker_process_init, a Pool initializer)."""
    out = _run_script("""
        import multiprocessing
        parent_client = etcd3.client(endpoints=[ENDPOINT], timeout=5)
        watched, cancel = parent_client.watch_prefix("/post/")  # busy parent
        client = None

        def init():
            global client
            client = etcd3.client(endpoints=[ENDPOINT], timeout=5)

        def work(i):
            client.put("/post/%d" % i, str(i))
            events, cancel_watch = client.watch("/post-w/%d" % i)
            client.put("/post-w/%d" % i, "w")
            value = next(events).value
            cancel_watch()
            return value.decode()

        with multiprocessing.get_context("fork").Pool(3, initializer=init) as pool:
            print("RESULTS", pool.map(work, range(6)))
        """, etcd_server.endpoint)
    assert "RESULTS ['w', 'w', 'w', 'w', 'w', 'w']" in out, out


def test_stopped_holder_in_a_forked_child_learns_it_lost_the_lock(etcd_server) -> None:
    """The holder (a child using a client made before the fork) is frozen past its
    TTL; another process takes the lock; once resumed, the holder is told."""
    script = textwrap.dedent(f"""
        import os, sys, signal, threading, time
        import etcd3
        client = etcd3.client(endpoints=[{etcd_server.endpoint!r}], timeout=5)
        client.put("/before-fork", "1")
        pid = os.fork()
        if pid == 0:
            signal.alarm(60)
            told = threading.Event()
            lock = client.lock("frozen-holder", ttl=2, on_lost=lambda lock: told.set())
            assert lock.acquire()
            print("HELD", os.getpid(), flush=True)
            sys.stdin.readline()  # the test freezes us, takes the lock, thaws us
            told.wait(10)
            print("TOLD", told.is_set(), lock.lost, lock.is_acquired(), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        words = proc.stdout.readline().split()
        assert words[:1] == ["HELD"], (words, proc.stderr.read() if proc.stderr else "")
        holder = int(words[1])
        os.kill(holder, signal.SIGSTOP)
        try:
            with etcd3.client(endpoints=[etcd_server.endpoint], timeout=5) as other:
                taker = other.lock("frozen-holder", ttl=30, timeout=20)
                assert taker.acquire(), "the frozen holder's lease never expired"
                os.kill(holder, signal.SIGCONT)
                proc.stdin.write("go\n")
                proc.stdin.flush()
                out, err = proc.communicate(timeout=30)
                assert taker.is_acquired()
                taker.release()
        finally:
            try:
                os.kill(holder, signal.SIGCONT)
            except ProcessLookupError:  # it already ended
                pass
        assert "TOLD True True False" in out, (out, err)
        assert "lost: its lease" in err, err  # the WARNING
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_revoked_lease_tells_the_holder(etcd_server) -> None:
    with etcd3.client(endpoints=[etcd_server.endpoint], timeout=5) as client:
        lost = []
        lock = client.lock("revoked-under-me", ttl=3, on_lost=lost.append)
        assert lock.acquire()
        election = client.election("revoked-election", ttl=3, on_lost=lost.append)
        assert election.campaign("me", timeout=5)
        with etcd3.client(endpoints=[etcd_server.endpoint], timeout=5) as admin:
            admin.revoke_lease(lock.lease.id)
            admin.revoke_lease(election.lease.id)
        deadline = time.monotonic() + 10
        while len(lost) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lost == [lock, election] or lost == [election, lock]
        assert lock.lost and not lock.is_acquired()
        assert "lost" in repr(lock)
        assert election.lost and not election.is_leader()
        assert not lock.release()  # nothing of ours to delete
        assert lock.acquire(timeout=5) and not lock.lost  # a new lease, held again
        lock.release()


def test_forked_child_watch_raises_forked_error_type() -> None:
    assert issubclass(exceptions.ForkedWatchError, exceptions.Etcd3Exception)


def test_ownership_checks_answer_within_a_ttl_without_a_client_timeout(etcd_server) -> None:
    """A frozen member, a client with no timeout: is_acquired() / is_leader() still
    answer (False, or a typed timeout), within about the TTL."""
    import threading

    with etcd3.client(endpoints=[etcd_server.endpoint]) as client:
        lock = client.lock("bounded-check", ttl=2)
        assert lock.acquire()
        election = client.election("bounded-election", ttl=2)
        assert election.campaign("me", timeout=5)
        etcd_server.pause()
        try:
            answers: list = []

            def check() -> None:
                for ask in (lock.is_acquired, election.is_leader):
                    try:
                        answers.append(ask())
                    except exceptions.ConnectionTimeoutError as error:
                        answers.append(error)

            checker = threading.Thread(target=check, daemon=True)
            checker.start()
            checker.join(30)
            assert len(answers) == 2, "an ownership check did not answer"
            for answer in answers:
                assert answer is False or isinstance(answer, exceptions.ConnectionTimeoutError)
        finally:
            etcd_server.resume()
