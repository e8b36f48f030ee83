"""A member that keeps its connection but answers no RPC is left aside within one
call's deadline, and taken back only when it answers a real etcd call again."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, List

import pytest
from _concurrency_support import settle

import etcd3
from etcd3 import exceptions
from etcd3.testing import EtcdCluster, EtcdServer, FaultProxy

log = logging.getLogger(__name__)


@pytest.mark.drivers("threaded", "aio")
def test_hung_member_is_ejected_within_a_call_deadline_and_no_read_fails(
        etcd_cluster: EtcdCluster, connect: Any) -> None:
    with FaultProxy(etcd_cluster.members[0].endpoint) as proxy:
        endpoints = [proxy.endpoint] + etcd_cluster.endpoints[1:]
        with connect(endpoints=endpoints, timeout=5) as client:
            client.put("/hung/k", "v")
            hung = client._transport.pool.states[0]
            # Every member is used before the fault (round-robin).
            for _ in range(6):
                assert client.get("/hung/k")[0] == b"v"
            failures: List[BaseException] = []
            gets = [0, 0]  # before / while hung
            phase = [0]
            stop = threading.Event()

            def reader() -> None:
                while not stop.is_set():
                    try:
                        assert client.get("/hung/k")[0] == b"v"
                        gets[phase[0]] += 1
                    except BaseException as error:  # reported below
                        failures.append(error)

            threads = [threading.Thread(target=reader) for _ in range(4)]
            for thread in threads:
                thread.start()
            try:
                stop.wait(2.0)
                phase[0] = 1
                stalled_at = time.monotonic()
                proxy.mode = "stall"
                assert settle(lambda: hung.ejected, 10), "the hung member was never ejected"
                ejected_after = time.monotonic() - stalled_at
                stop.wait(max(0.0, 8.0 - (time.monotonic() - stalled_at)))
                # The probe (a linearizable Range) cannot pass through a stalled proxy.
                assert hung.ejected
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=30)
            log.warning("hung member: ejected %.2f s after it hung; %d gets in 2 s before, "
                        "%d gets in 8 s while hung", ejected_after, gets[0], gets[1])
            assert failures == []
            assert gets[1] > 0
            # The member answers again: a probe (started by the next calls) takes it back.
            proxy.mode = "pass"
            assert settle(lambda: client.get("/hung/k")[0] == b"v" and not hung.ejected,
                               20), "never re-admitted"


def test_fault_proxy_modes(etcd_server: EtcdServer) -> None:
    with FaultProxy(etcd_server.endpoint) as proxy:
        assert proxy.endpoint != etcd_server.endpoint
        with etcd3.client(endpoints=[proxy.endpoint], timeout=1) as client:
            client.put("/proxy/k", "v")
            assert client.get("/proxy/k")[0] == b"v"
            assert proxy.accepted >= 1 and proxy.open_connections >= 1
            proxy.mode = "stall"
            with pytest.raises(exceptions.ConnectionTimeoutError):
                client.get("/proxy/k")
            assert proxy.open_connections >= 1  # the connection itself stays up
            proxy.mode = "pass"  # the stalled connection is closed; gRPC reconnects
            assert client.get("/proxy/k", timeout=10)[0] == b"v"
            proxy.mode = "drop"  # nothing comes back, not even pings
            with pytest.raises(exceptions.ConnectionTimeoutError):
                client.get("/proxy/k")
            proxy.mode = "pass"
            assert client.get("/proxy/k", timeout=10)[0] == b"v"
            proxy.mode = "reset"
            with pytest.raises(exceptions.ConnectionFailedError):
                client.get("/proxy/k")
            assert proxy.open_connections == 0
            proxy.mode = "blackhole"
            with pytest.raises((exceptions.ConnectionTimeoutError,
                                exceptions.ConnectionFailedError)):
                client.get("/proxy/k")
            proxy.mode = "pass"
            assert client.get("/proxy/k", timeout=15)[0] == b"v"
        with pytest.raises(ValueError):
            proxy.mode = "sometimes"
    with pytest.raises(ValueError):
        FaultProxy(etcd_server.endpoint, tls=True).mode = "stall"


def test_hung_member_never_authenticated_to_is_left_aside() -> None:
    """With auth on, the first call to an endpoint fetches a token there: on a hung
    member that fetch gets only the attempt's budget, and the call (even a write: it
    was never sent) goes on to another member."""
    with EtcdCluster(3) as cluster:
        with etcd3.client(endpoints=cluster.endpoints) as plain:
            plain.add_user("root", "root-pw-1")
            plain.add_role("root")
            plain.grant_role("root", "root")
            plain.enable_auth()
        with FaultProxy(cluster.members[0].endpoint) as proxy:
            proxy.mode = "stall"  # hung before this client ever talked to it
            endpoints = [proxy.endpoint] + cluster.endpoints[1:]
            with etcd3.client(endpoints=endpoints, timeout=5, user="root",
                              password="root-pw-1") as client:
                hung = client._transport.pool.states[0]
                started = time.monotonic()
                client.put("/auth-hung/k", "v")  # round-robin starts with the hung one
                first_call = time.monotonic() - started
                assert hung.ejected
                failures: List[BaseException] = []

                def reader() -> None:
                    for _ in range(50):
                        try:
                            assert client.get("/auth-hung/k")[0] == b"v"
                        except BaseException as error:  # reported below
                            failures.append(error)

                threads = [threading.Thread(target=reader) for _ in range(4)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=60)
                assert failures == []
                log.warning("auth + hung member: the first call (a put) took %.2f s",
                            first_call)
                # The probe carries no token; "user name is empty" comes after the read
                # index, from a working member: it is taken back.
                proxy.mode = "pass"
                assert settle(lambda: client.get("/auth-hung/k")[0] == b"v"
                                   and not hung.ejected, 20), "never re-admitted"
