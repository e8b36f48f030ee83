"""STM of the asyncio client: the threaded client's scenarios, awaited, and both
drivers contending on the same keys."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, List

import pytest
from _aio_concurrency_support import aio_client, run

from etcd3 import stm as threaded_stm
from etcd3.aio import stm as stm_module
from etcd3.aio.stm import ISOLATIONS, STM
from etcd3.testing import EtcdServer


async def _increment(client: Any, isolation: str, rounds: int, attempts: List[int]) -> None:
    async def apply(tx: STM) -> None:
        attempts.append(1)
        tx.put("/n", str(int(await tx.get("/n") or b"0") + 1))

    for _ in range(rounds):
        await client.stm(apply, isolation=isolation)


@pytest.mark.parametrize("isolation", ["serializable_snapshot", "serializable",
                                       "repeatable_reads"])
def test_concurrent_increments_are_exact(etcd_client: Any, etcd_server: EtcdServer,
                                         isolation: str) -> None:
    etcd_client.put("/n", "0")
    attempts: List[int] = []

    async def body() -> None:
        async with aio_client(etcd_server) as client:
            await asyncio.gather(*(_increment(client, isolation, 25, attempts)
                                   for _ in range(4)))

    run(body())
    assert etcd_client.get("/n")[0] == b"100"
    assert len(attempts) >= 100


def test_threaded_and_asyncio_increments_are_exact(etcd_client: Any,
                                                   etcd_server: EtcdServer) -> None:
    etcd_client.put("/n", "0")

    def threaded() -> None:
        for _ in range(25):
            threaded_stm.run(etcd_client, lambda tx: tx.put(
                "/n", str(int(tx.get("/n") or b"0") + 1)))

    async def body() -> None:
        async with aio_client(etcd_server) as client:
            await asyncio.gather(_increment(client, "serializable_snapshot", 25, []),
                                 _increment(client, "serializable_snapshot", 25, []))

    thread = threading.Thread(target=threaded)
    thread.start()
    try:
        run(body())
    finally:
        thread.join(60)
    assert etcd_client.get("/n")[0] == b"75"


def test_reads_writes_deletes_and_result(etcd_client: Any, etcd_server: EtcdServer) -> None:
    etcd_client.put("/a", "10")
    etcd_client.put("/b", "5")
    etcd_client.put("/gone", "x")

    async def transfer(tx: STM) -> int:
        a, b = int(await tx.get("/a") or 0), int(await tx.get("/b") or 0)
        assert await tx.get("/missing") is None and await tx.rev("/missing") == 0
        assert await tx.rev("/a") > 0
        tx.put("/a", str(a - 3))
        tx.put("/b", str(b + 3))
        assert await tx.get("/a") == str(a - 3).encode()  # sees its own writes
        tx.delete("/gone")
        assert await tx.get("/gone") is None
        return a + b

    async def body() -> int:
        async with aio_client(etcd_server) as client:
            return await client.stm(transfer, prefetch=["/a", "/b"])

    assert run(body()) == 15
    assert etcd_client.get("/a")[0] == b"7" and etcd_client.get("/b")[0] == b"8"
    assert etcd_client.get("/gone") == (None, None)


def test_conflict_retries_on_fresh_data(etcd_client: Any, etcd_server: EtcdServer) -> None:
    etcd_client.put("/c", "1")
    seen: List[bytes] = []

    async def body() -> None:
        async with aio_client(etcd_server) as client:
            async def apply(tx: STM) -> None:
                value = await tx.get("/c") or b""
                seen.append(value)
                if len(seen) == 1:
                    await client.put("/c", "2")  # another writer gets in between
                tx.put("/c", value + b"!")

            await client.stm(apply)

    run(body())
    assert seen == [b"1", b"2"]
    assert etcd_client.get("/c")[0] == b"2!"


def test_snapshot_isolation_checks_blind_writes(etcd_client: Any,
                                                etcd_server: EtcdServer) -> None:
    etcd_client.put("/read", "r")
    runs: List[int] = []

    async def body() -> None:
        async with aio_client(etcd_server) as client:
            async def apply(tx: STM) -> None:
                await tx.get("/read")
                runs.append(1)
                if len(runs) == 1:
                    await client.put("/written", "other")  # a key we only write
                tx.put("/written", "mine")

            await client.stm(apply)

    run(body())
    assert len(runs) == 2
    assert etcd_client.get("/written")[0] == b"mine"


def test_read_committed_does_not_retry(etcd_client: Any, etcd_server: EtcdServer) -> None:
    etcd_client.put("/rc", "1")
    runs: List[int] = []

    async def body() -> None:
        async with aio_client(etcd_server) as client:
            async def apply(tx: STM) -> None:
                await tx.get("/rc")
                runs.append(1)
                await client.put("/rc", "2")
                tx.put("/rc", "3")

            await client.stm(apply, isolation="read_committed")

    run(body())
    assert runs == [1] and etcd_client.get("/rc")[0] == b"3"


def test_apply_error_aborts_without_writing(etcd_client: Any,
                                            etcd_server: EtcdServer) -> None:
    async def apply(tx: STM) -> None:
        tx.put("/never", "x")
        raise RuntimeError("abort")

    async def body() -> None:
        async with aio_client(etcd_server) as client:
            with pytest.raises(RuntimeError, match="abort"):
                await client.stm(apply)

    run(body())
    assert etcd_client.get("/never") == (None, None)


def test_plain_apply_and_unknown_isolation(etcd_client: Any,
                                           etcd_server: EtcdServer) -> None:
    async def body() -> Any:
        async with aio_client(etcd_server) as client:
            assert "serializable_snapshot" in ISOLATIONS
            with pytest.raises(ValueError, match="isolation"):
                await client.stm(lambda tx: None, isolation="chaos")
            # a plain function that only writes needs no await
            return await stm_module.run(client, lambda tx: tx.put("/plain", "p") or 7)

    assert run(body()) == 7
    assert etcd_client.get("/plain")[0] == b"p"


def test_cancelled_stm_commits_nothing(etcd_client: Any, etcd_server: EtcdServer) -> None:
    started = asyncio.Event

    async def body() -> None:
        async with aio_client(etcd_server) as client:
            entered = started()

            async def apply(tx: STM) -> None:
                await tx.get("/x")
                tx.put("/cancelled", "x")
                entered.set()
                await asyncio.sleep(30)

            task = asyncio.ensure_future(client.stm(apply))
            await entered.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run(body())
    assert etcd_client.get("/cancelled") == (None, None)
