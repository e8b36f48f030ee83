"""STM: Go's ``concurrency.STM`` isolation levels, against a real etcd."""

from __future__ import annotations

import threading
from typing import Any, List

import pytest

from etcd3 import stm as stm_module
from etcd3.stm import ISOLATIONS, STM

pytestmark = pytest.mark.drivers("threaded", "aio")


def _increment(client: Any, isolation: str, rounds: int, attempts: List[int]) -> None:
    def apply(tx: STM) -> None:
        attempts.append(1)
        tx.put("/n", str(int(tx.get("/n") or b"0") + 1))

    for _ in range(rounds):
        stm_module.run(client, apply, isolation=isolation)


@pytest.mark.parametrize("isolation", ["serializable_snapshot", "serializable",
                                       "repeatable_reads"])
def test_concurrent_increments_are_exact(etcd_client: Any, isolation: str) -> None:
    etcd_client.put("/n", "0")
    attempts: List[int] = []
    threads = [threading.Thread(target=_increment,
                                args=(etcd_client, isolation, 25, attempts))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert etcd_client.get("/n")[0] == b"100"
    assert len(attempts) >= 100


def test_reads_writes_deletes_and_result(etcd_client: Any) -> None:
    etcd_client.put("/a", "10")
    etcd_client.put("/b", "5")
    etcd_client.put("/gone", "x")

    def transfer(tx: STM) -> int:
        a, b = int(tx.get("/a") or 0), int(tx.get("/b") or 0)
        assert tx.get("/missing") is None and tx.rev("/missing") == 0
        assert tx.rev("/a") > 0
        tx.put("/a", str(a - 3))
        tx.put("/b", str(b + 3))
        assert tx.get("/a") == str(a - 3).encode()  # sees its own writes
        tx.delete("/gone")
        assert tx.get("/gone") is None
        return a + b

    assert stm_module.run(etcd_client, transfer, prefetch=["/a", "/b"]) == 15
    assert etcd_client.get("/a")[0] == b"7" and etcd_client.get("/b")[0] == b"8"
    assert etcd_client.get("/gone") == (None, None)


def test_conflict_retries_on_fresh_data(etcd_client: Any) -> None:
    etcd_client.put("/c", "1")
    seen: List[bytes] = []

    def apply(tx: STM) -> None:
        value = tx.get("/c") or b""
        seen.append(value)
        if len(seen) == 1:
            etcd_client.put("/c", "2")  # another writer gets in between
        tx.put("/c", value + b"!")

    stm_module.run(etcd_client, apply)
    assert seen == [b"1", b"2"]
    assert etcd_client.get("/c")[0] == b"2!"


def test_snapshot_isolation_checks_blind_writes(etcd_client: Any) -> None:
    etcd_client.put("/read", "r")
    runs: List[int] = []

    def apply(tx: STM) -> None:
        tx.get("/read")
        runs.append(1)
        if len(runs) == 1:
            etcd_client.put("/written", "other")  # changes a key we only write
        tx.put("/written", "mine")

    stm_module.run(etcd_client, apply)
    assert len(runs) == 2
    assert etcd_client.get("/written")[0] == b"mine"


def test_read_committed_does_not_retry(etcd_client: Any) -> None:
    etcd_client.put("/rc", "1")
    runs: List[int] = []

    def apply(tx: STM) -> None:
        tx.get("/rc")
        runs.append(1)
        etcd_client.put("/rc", "2")
        tx.put("/rc", "3")

    stm_module.run(etcd_client, apply, isolation="read_committed")
    assert runs == [1] and etcd_client.get("/rc")[0] == b"3"


def test_apply_error_aborts_without_writing(etcd_client: Any) -> None:
    def apply(tx: STM) -> None:
        tx.put("/never", "x")
        raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        stm_module.run(etcd_client, apply)
    assert etcd_client.get("/never") == (None, None)


def test_unknown_isolation(etcd_client: Any) -> None:
    assert "serializable_snapshot" in ISOLATIONS
    with pytest.raises(ValueError, match="isolation"):
        stm_module.run(etcd_client, lambda tx: None, isolation="chaos")


def test_mixin_method_delegates(etcd_client: Any) -> None:
    etcd_client.put("/m", "1")
    result = stm_module.STMMixin.stm(etcd_client, lambda tx: tx.get("/m"))
    assert result == b"1"
