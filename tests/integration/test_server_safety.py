"""The client never crashes a server, types every deadline, and does not let a member
without a leader answer for the cluster."""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from typing import Counter, List

import grpc
import pytest
from grpc_errors import RpcError

import etcd3
from etcd3 import exceptions
from etcd3._core.deadline import Deadline
from etcd3._core.ops import encode_txn
from etcd3._core.txn_safety import is_read_only_txn, txn_unsafe_version
from etcd3._grpc import rpc as _rpc
from etcd3._grpc.call_rules import Attempts
from etcd3._grpc.errors import status_of, translate
from etcd3.etcdrpc import rpc_pb2 as pb
from etcd3.testing import EtcdCluster
from etcd3.transactions import Delete, Get, Put, Txn, Value

log = logging.getLogger(__name__)


@pytest.mark.parametrize("text", ["context deadline exceeded", "context canceled"])
def test_server_side_context_end_is_a_deadline(etcd_client: etcd3.Etcd3Client,
                                               text: str) -> None:
    error = RpcError(grpc.StatusCode.UNKNOWN, text)
    assert status_of(error)[0] is grpc.StatusCode.DEADLINE_EXCEEDED
    assert isinstance(translate(error), exceptions.ConnectionTimeoutError)
    transport = etcd_client._transport
    for method, may_be_applied in ((_rpc.PUT, True), (_rpc.RANGE, False)):
        ctx = Attempts(method, b"", Deadline.after(5), "key b'k'")
        ctx.state = transport.pool.states[0]
        ctx.history = ctx.history.started(ctx.state.name)
        final = transport._final_error(error, ctx)
        assert isinstance(final, exceptions.ConnectionTimeoutError), final
        assert ("may or may not have been applied" in str(final)) is may_be_applied
    # Other UNKNOWN errors stay untyped.
    assert type(translate(RpcError(grpc.StatusCode.UNKNOWN, "boom"))) is \
        exceptions.Etcd3Exception


def test_read_only_txn_detection() -> None:
    """As etcd's isTxnReadonly: every op in success and failure is a range."""
    assert is_read_only_txn(encode_txn([], [Get("a")], [Get("b", "c")]))
    assert is_read_only_txn(encode_txn([Value("a") == "x"], [Get("a")], []))
    assert is_read_only_txn(encode_txn([Value("a") == "x"], [], []))
    assert not is_read_only_txn(encode_txn([], [Get("a")], [Put("b", "v")]))
    assert not is_read_only_txn(encode_txn([], [Delete("a")], []))
    assert not is_read_only_txn(encode_txn([], [Txn([], [Get("a")])], []))
    message = pb.TxnRequest()
    message.success.add().request_range.key = b"a"
    assert is_read_only_txn(message)
    message.failure.add().request_put.key = b"a"
    assert not is_read_only_txn(message)


def test_version_check() -> None:
    assert txn_unsafe_version((3, 5, 1)) and txn_unsafe_version((3, 5, 4))
    assert not txn_unsafe_version((3, 5, 5)) and not txn_unsafe_version((3, 4, 23))
    assert not txn_unsafe_version((3, 6, 0))


def test_short_deadlines_crash_no_member_and_every_failure_is_typed() -> None:
    """etcd 3.5.0-3.5.4 panic when a read-only Txn's context ends while it is applied
    (etcd #14110): 8 threads of 2-8 ms gets (which the batcher would have sent as
    read-only Txns), get_many and read-only transactions (read-only Txns themselves)
    and puts for 30 s crashed 2 of 3 etcd 3.5.1 members before. Every member must be
    alive at the end, and every failure a ConnectionTimeoutError (etcd sends a
    server-side expiry as UNKNOWN "context deadline exceeded"), worded as
    maybe-applied for puts. Any server version."""
    with EtcdCluster(3) as cluster:
        with etcd3.client(endpoints=cluster.endpoints, timeout=5) as client:
            txns = client.transactions
            for n in range(4):
                client.put(f"/short/{n}", "v")
            stop = time.monotonic() + 30
            served: Counter[str] = collections.Counter()
            failed: Counter[str] = collections.Counter()
            wrong: List[BaseException] = []

            def worker(n: int) -> None:
                rng = random.Random(n)
                kind = ("get", "get", "get", "get", "get_many", "txn", "txn", "put")[n]
                while time.monotonic() < stop:
                    timeout = rng.uniform(0.002, 0.008)
                    try:
                        if kind == "get":
                            client.get(f"/short/{n % 4}", timeout=timeout)
                        elif kind == "get_many":
                            client.get_many([f"/short/{k}" for k in range(4)],
                                            timeout=timeout)
                        elif kind == "txn":
                            client.transaction(compare=[], success=[txns.get(f"/short/{n % 4}")],
                                               failure=[], timeout=timeout)
                        else:
                            client.put(f"/short/w{n}", "v", timeout=timeout)
                        served[kind] += 1
                    except exceptions.ConnectionTimeoutError as error:
                        cause = error.__cause__
                        code = cause.code() if isinstance(cause, grpc.Call) else None
                        failed[f"{kind} {getattr(code, 'name', code)}"] += 1
                        if (kind == "put" and code is grpc.StatusCode.UNKNOWN
                                and "may or may not have been applied" not in str(error)):
                            wrong.append(error)
                    except exceptions.ConnectionFailedError as error:  # typed, not a deadline
                        failed[f"{kind} {type(error).__name__}"] += 1
                    except BaseException as error:  # reported below
                        wrong.append(error)

            threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            time.sleep(0.5)  # read-only txns left running finish on the server
        log.warning("etcd %s, short deadlines: served %s, failed %s", cluster.version,
                    dict(served), dict(failed))
        assert wrong == [], wrong[:5]
        assert served["get"] > 0 and served["put"] + failed["put DEADLINE_EXCEEDED"] \
            + failed["put UNKNOWN"] > 0
        time.sleep(1.0)  # a panicking member needs a moment to exit
        dead = [m.name for m in cluster.members if not m.running]
        assert dead == [], f"etcd {cluster.version} members crashed: {dead}"
        # And the cluster still serves.
        with etcd3.client(endpoints=cluster.endpoints, timeout=10) as client:
            assert client.get("/short/0")[0] == b"v"


def test_member_without_leader_refuses_instead_of_answering() -> None:
    """Calls carry require-leader (hasleader) metadata: a member that lost its leader
    answers "etcdserver: no leader" (a typed NoLeaderError) rather than a linearizable
    read hanging until the deadline or a serializable one answering stale data."""
    with EtcdCluster(3) as cluster:
        lone = cluster.members[0]
        with etcd3.client(endpoints=[lone.endpoint], timeout=3) as client:
            client.put("/lone/k", "v")
            for member in cluster.members[1:]:
                member.kill()
            deadline = time.monotonic() + 15
            while str(lone.status().get("leader", "0")) != "0":
                assert time.monotonic() < deadline, "the lone member kept its leader"
                time.sleep(0.1)
            started = time.monotonic()
            with pytest.raises(exceptions.NoLeaderError):
                client.get("/lone/k")
            with pytest.raises(exceptions.NoLeaderError):
                client.get("/lone/k", serializable=True)
            log.warning("no leader: two gets refused in %.2f s (timeout 3 s, retried "
                        "until the deadline: no other endpoint)", time.monotonic() - started)
