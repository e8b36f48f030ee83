"""Process exit and dropped clients: a script that never calls close() exits
promptly whatever state its client is in, and a client dropped without close() is
collected, its threads ended and its channels closed."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Dict, Optional

import pytest
from _concurrency_support import settle

import etcd3
from etcd3.testing import EtcdServer

#: A script's last line has run; the process must be gone this soon after.
EXIT_WITHIN = 2.0

_PRELUDE = """
import os, sys, threading, time
import etcd3

endpoint = os.environ["TEST_ENDPOINT"]
"""


def _exit_delay(body: str, env: Optional[Dict[str, str]] = None,
                before_exit: Optional[str] = None) -> float:
    """Run ``body`` in a fresh interpreter; return the seconds between its last line
    (which prints LAST) and the end of the process. The process is killed after
    30 s in all (the test then fails)."""
    script = _PRELUDE + textwrap.dedent(body) + "\nprint('LAST', flush=True)\n"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        last = time.monotonic()
        assert line.strip() == "LAST", (line, proc.stderr.read() if proc.stderr else "")
        proc.wait(timeout=30)
        return time.monotonic() - last
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("the script hung at exit (killed after 30 s)")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server():
    with EtcdServer() as running:
        yield running


def test_exit_never_connected() -> None:
    delay = _exit_delay("""
        client = etcd3.client(endpoints=[endpoint], timeout=1)
        try:
            client.get("k")
        except etcd3.exceptions.ConnectionFailedError:
            pass
        """, env={"TEST_ENDPOINT": "127.0.0.1:1"})
    assert delay < EXIT_WITHIN


def test_exit_tls_to_plain_text_port(server, tmp_path) -> None:
    from etcd3.testing import TLSConfig
    with TLSConfig(directory=str(tmp_path)) as tls:
        delay = _exit_delay(f"""
            client = etcd3.client(endpoints=[endpoint], ca_cert={tls.ca_cert!r},
                                  timeout=2)
            try:
                client.get("k")
            except etcd3.exceptions.Etcd3Exception:
                pass
            """, env={"TEST_ENDPOINT": server.endpoint})
    assert delay < EXIT_WITHIN


def test_exit_with_watches_keepalive_and_lock_running(server) -> None:
    delay = _exit_delay("""
        client = etcd3.client(endpoints=[endpoint], timeout=5)
        events, cancel = client.watch_prefix("/exit/")
        client.add_watch_callback("/exit/cb", lambda response: None)
        lease = client.lease(10, keep_alive=True)
        lock = client.lock("exit-lock", ttl=10)
        assert lock.acquire()
        client.put("/exit/a", "1", lease=lease)
        assert next(events).value == b"1"
        """, env={"TEST_ENDPOINT": server.endpoint})
    assert delay < EXIT_WITHIN


def test_exit_with_calls_in_flight_on_other_threads() -> None:
    with EtcdServer() as paused:
        paused.pause()
        try:
            delay = _exit_delay("""
                client = etcd3.client(endpoints=[endpoint])  # no deadline at all
                started = threading.Event()
                def reader():
                    started.set()
                    try:
                        client.get("k")
                    except etcd3.exceptions.Etcd3Exception:
                        pass
                for _ in range(3):
                    threading.Thread(target=reader, daemon=True).start()
                started.wait()
                time.sleep(0.3)
                """, env={"TEST_ENDPOINT": paused.endpoint})
        finally:
            paused.resume()
    assert delay < EXIT_WITHIN


def test_exit_after_every_endpoint_died() -> None:
    with EtcdServer() as doomed:
        delay = _exit_delay("""
            client = etcd3.client(endpoints=[endpoint], timeout=2)
            events, cancel = client.watch("/gone")
            lease = client.lease(10, keep_alive=True)
            os.kill(int(os.environ["TEST_PID"]), 9)
            time.sleep(0.5)
            try:
                client.get("k")
            except etcd3.exceptions.Etcd3Exception:
                pass
            """, env={"TEST_ENDPOINT": doomed.endpoint, "TEST_PID": str(doomed.pid)})
    assert delay < EXIT_WITHIN


def test_ctrl_c_interrupts_a_blocked_call() -> None:
    with EtcdServer() as paused:
        paused.pause()
        try:
            script = _PRELUDE + textwrap.dedent("""
                client = etcd3.client(endpoints=[endpoint])
                print("READY", flush=True)
                try:
                    client.get("k")
                except KeyboardInterrupt:
                    print("INTERRUPTED", flush=True)
                """)
            proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True,
                                    env={**os.environ, "TEST_ENDPOINT": paused.endpoint})
            try:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "READY"
                time.sleep(0.5)
                proc.send_signal(signal.SIGINT)
                out, _ = proc.communicate(timeout=10)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        finally:
            paused.resume()
    assert "INTERRUPTED" in out
    assert proc.returncode == 0


def _etcd3_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("etcd3-")
               and t.name != "etcd3-reaper")


def test_dropped_clients_are_collected_and_their_threads_end(server) -> None:
    baseline = _etcd3_threads()
    channels_closed = []

    def use_and_drop(i: int) -> None:
        client = etcd3.client(endpoints=[server.endpoint], timeout=5,
                              endpoint_sync_interval=30)
        lock = client.lock(f"dropped-{i}", ttl=5)
        assert lock.acquire()
        lease = client.lease(5, keep_alive=True)
        client.put(f"/dropped/{i}", "v", lease=lease)
        events, cancel = client.watch_prefix("/dropped/")
        client.add_watch_callback("/dropped/cb", lambda response: None)
        channel = client._transport.pool.states[0].channels[0]
        channels_closed.append(channel)

    for i in range(20):
        use_and_drop(i)
    assert _etcd3_threads() > baseline
    assert settle(lambda: _etcd3_threads() <= baseline), [
        t.name for t in threading.enumerate()]
    # Their channels were closed too: a closed gRPC channel refuses new calls.
    def all_closed() -> bool:
        for channel in channels_closed:
            try:
                channel.unary_unary("/x").future(b"")
            except ValueError:
                continue
            return False
        return True
    assert settle(all_closed)


def test_a_dropped_lock_holder_lets_the_lock_go_within_its_ttl(server) -> None:
    with etcd3.client(endpoints=[server.endpoint], timeout=5) as other:
        def hold_and_drop() -> None:
            client = etcd3.client(endpoints=[server.endpoint], timeout=5)
            assert client.lock("dropped-holder", ttl=2).acquire()

        hold_and_drop()
        gc.collect()
        # The keepalive of the dropped holder stopped, so its lease expires.
        assert other.lock("dropped-holder", ttl=5, timeout=15).acquire()


def test_exit_mid_failover() -> None:
    from etcd3.testing import EtcdCluster

    with EtcdCluster(size=3) as cluster:
        members = list(cluster)
        victim = members[0]
        delay = _exit_delay("""
            client = etcd3.client(endpoints=endpoint.split(","), timeout=5)
            events, cancel = client.watch_prefix("/failover/")
            lease = client.lease(10, keep_alive=True)

            def load():
                while True:
                    try:
                        client.get("/failover/k")
                    except etcd3.exceptions.Etcd3Exception:
                        pass

            for _ in range(4):
                threading.Thread(target=load, daemon=True).start()
            time.sleep(0.3)
            os.kill(int(os.environ["TEST_PID"]), 9)  # a member dies under load
            time.sleep(0.2)
            """, env={"TEST_ENDPOINT": ",".join(m.endpoint for m in members),
                      "TEST_PID": str(victim.pid)})
    assert delay < EXIT_WITHIN
