"""asyncio read batching: concurrent gets share read-only Txns without changing any
result (the rules of tests/integration/test_read_batch.py, for the asyncio client)."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, List

import pytest

import etcd3.aio
from etcd3 import exceptions
from etcd3.aio._read_batch import AioReadBatcher


def _run(body: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(body(), timeout=120))


def _batcher(client: etcd3.aio.Etcd3Client) -> AioReadBatcher:
    return client._engine("read_batch", client._new_read_batcher)


def _allow_batching(client: etcd3.aio.Etcd3Client) -> None:
    """Let the batcher send read-only Txns even to etcd 3.5.0-3.5.4 (it never does by
    itself: they panic when such a Txn's context ends while it is applied). Safe in
    the tests that use it: their reads have no deadline that could expire, and the
    client is closed only once every read has returned."""
    for state in client._transport.pool.states:
        state.version = (3, 5, 5)
        state.version_pending = float("inf")


async def _settled(client: etcd3.aio.Etcd3Client) -> None:
    """Wait until the last batch's slot has stopped gathering for readers that
    are done (bounded)."""
    batcher = _batcher(client)
    for _ in range(200):
        if not batcher._tasks:
            return
        await asyncio.sleep(0.005)


def _count_batches(batcher: AioReadBatcher) -> List[int]:
    """The size of every batch ``batcher`` sends from now on."""
    batches: List[int] = []
    answer = batcher._answer

    async def counting_answer(batch: Any) -> bool:
        batches.append(len(batch))
        return await answer(batch)

    batcher._answer = counting_answer  # type: ignore[method-assign]
    return batches


def test_200_concurrent_gets_each_get_their_own_value(etcd_server) -> None:
    async def body() -> None:
        async with etcd3.aio.client(endpoints=[etcd_server.endpoint],
                                    read_batch_in_flight=1) as client:
            for n in range(0, 200, 2):  # odd keys stay absent
                await client.put(f"/abatch/{n}", f"value-{n}")
            _allow_batching(client)
            batches = _count_batches(_batcher(client))

            async def reader(n: int) -> None:
                for _ in range(3):
                    value, meta = await client.get(f"/abatch/{n}")
                    if n % 2:
                        assert (value, meta) == (None, None)
                    else:
                        assert value == f"value-{n}".encode()
                        assert meta.key == f"/abatch/{n}".encode()
                        assert meta.response_header.revision >= meta.mod_revision

            await asyncio.gather(*(reader(n) for n in range(200)))
            assert batches and max(batches) > 1, batches
            policy = _batcher(client).policy
            await _settled(client)
            assert policy.pending == [] and policy.in_flight == 0

    _run(body)


def test_options_such_as_revision_ride_along_in_a_batch(etcd_server) -> None:
    async def body() -> None:
        async with etcd3.aio.client(endpoints=[etcd_server.endpoint],
                                    read_batch_in_flight=1) as client:
            first = (await client.put("/aopts/k", "old")).header.revision
            await client.put("/aopts/k", "new")
            _allow_batching(client)
            batches = _count_batches(_batcher(client))

            async def read(n: int) -> Any:
                if n % 3 == 0:
                    return await client.get("/aopts/k", revision=first)
                if n % 3 == 1:
                    return await client.get("/aopts/k", keys_only=True)
                return await client.get("/aopts/k", serializable=True)

            # A slow first answer on a loaded machine sends queued reads alone (a
            # read waits only so long for a slot): a few bursts, bounded.
            for _ in range(5):
                results = await asyncio.gather(*(read(n) for n in range(60)))
                for n, (value, meta) in enumerate(results):
                    if n % 3 == 0:
                        assert value == b"old" and meta.mod_revision == first
                    elif n % 3 == 1:
                        assert value == b"" and meta.key == b"/aopts/k"
                    else:
                        assert value == b"new"
                if batches and max(batches) > 1:
                    break
            assert batches and max(batches) > 1, batches

    _run(body)


def test_a_failing_batch_re_runs_its_reads_alone(etcd_server) -> None:
    async def body() -> None:
        async with etcd3.aio.client(endpoints=[etcd_server.endpoint],
                                    read_batch_in_flight=1) as client:
            first = (await client.put("/afail/k", "1")).header.revision
            latest = (await client.put("/afail/k", "2")).header.revision
            await client.compact(latest)
            _allow_batching(client)
            batches = _count_batches(_batcher(client))

            async def read(n: int) -> str:
                if n % 4 == 0:
                    with pytest.raises(exceptions.RevisionCompactedError):
                        await client.get("/afail/k", revision=first)
                    return "compacted"
                value, _ = await client.get("/afail/k")
                assert value == b"2"
                return "ok"

            for _ in range(5):
                results = await asyncio.gather(*(read(n) for n in range(40)))
                assert results.count("compacted") == 10 and results.count("ok") == 30
            assert batches and max(batches) > 1, batches

    _run(body)


def test_a_lone_reader_goes_out_at_once_as_a_plain_range(etcd_server) -> None:
    async def body() -> None:
        async with etcd3.aio.client(endpoints=[etcd_server.endpoint]) as client:
            await client.put("/alone", "v")
            _allow_batching(client)
            batches = _count_batches(_batcher(client))
            for _ in range(5):
                assert (await client.get("/alone"))[0] == b"v"
            policy = _batcher(client).policy
            assert batches == [] and policy.pending == [] and policy.in_flight == 0

    _run(body)


def test_a_queued_read_goes_alone_when_the_slots_stay_taken(etcd_server) -> None:
    async def body() -> None:
        async with etcd3.aio.client(endpoints=[etcd_server.endpoint],
                                    read_batch_in_flight=1) as client:
            await client.put("/aslow", "v")
            _allow_batching(client)
            policy = _batcher(client).policy
            assert policy.try_send()  # a slow call holds the only slot
            try:
                assert (await client.get("/aslow"))[0] == b"v"
                assert policy.pending == []
            finally:
                _batcher(client)._release()
            assert policy.in_flight == 0

    _run(body)


def test_a_cancelled_queued_reader_leaves_the_queue(etcd_server) -> None:
    async def body() -> None:
        async with etcd3.aio.client(endpoints=[etcd_server.endpoint],
                                    read_batch_in_flight=1) as client:
            await client.put("/acancel", "v")
            _allow_batching(client)
            policy = _batcher(client).policy
            assert policy.try_send()
            try:
                queued = asyncio.ensure_future(client.get("/acancel"))
                other = asyncio.ensure_future(client.get("/acancel"))
                for _ in range(10):
                    await asyncio.sleep(0)
                assert len(policy.pending) == 2
                queued.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await queued
                assert len(policy.pending) == 1
            finally:
                _batcher(client)._release()
            assert (await other)[0] == b"v"
            await _settled(client)
            assert policy.pending == [] and policy.in_flight == 0

    _run(body)


def test_batching_only_where_the_server_version_is_safe(etcd_server) -> None:
    """etcd 3.5.0-3.5.4 crash when a read-only Txn's context ends while it is applied
    (etcd #14110): the asyncio batcher, too, sends them only plain Ranges."""
    affected = (3, 5, 0) <= etcd_server.version_info < (3, 5, 5)

    async def body() -> List[int]:
        async with etcd3.aio.client(endpoints=[etcd_server.endpoint],
                                    read_batch_in_flight=1) as client:
            await client.put("/asafe/k", "v")
            state = client._transport.pool.states[0]
            for _ in range(500):
                if state.version is not None:
                    break
                await client.get("/asafe/k")  # starts the Status call that learns it
                await asyncio.sleep(0.02)
            assert state.version == etcd_server.version_info
            batches = _count_batches(_batcher(client))
            # A queued read waits only so long for a slot before it goes alone (a
            # slow first answer on a loaded machine sends them all alone): a few
            # rounds, bounded, so a safe server shows a batch.
            for _ in range(5):
                results = await asyncio.gather(*(client.get("/asafe/k")
                                                 for _ in range(64)))
                assert all(value == b"v" for value, _ in results)
                if batches and not affected:
                    break
            return batches

    batches = _run(body)
    if affected:
        assert batches == [], f"etcd {etcd_server.version} was sent read-only Txns"
    else:
        assert batches and max(batches) > 1, batches


def test_reads_queued_when_the_client_closes_meet_the_closed_client(etcd_server) -> None:
    async def body() -> None:
        client = etcd3.aio.client(endpoints=[etcd_server.endpoint], read_batch_in_flight=1)
        await client.put("/aclose", "v")
        _allow_batching(client)
        policy = _batcher(client).policy
        assert policy.try_send()
        queued = [asyncio.ensure_future(client.get("/aclose")) for _ in range(5)]
        for _ in range(10):
            await asyncio.sleep(0)
        assert len(policy.pending) == 5
        await client.close()
        results = await asyncio.gather(*queued, return_exceptions=True)
        assert all(isinstance(r, exceptions.ClientClosedError) for r in results), results

    _run(body)


def test_bad_limits_are_refused(etcd_server) -> None:
    async def body() -> None:
        async with etcd3.aio.client(endpoints=[etcd_server.endpoint]) as client:
            with pytest.raises(ValueError):
                AioReadBatcher(client._transport, None, None,  # type: ignore[arg-type]
                               max_in_flight=0)

    _run(body)


def test_a_reader_cancelled_after_leaving_the_queue_just_ends(etcd_server) -> None:
    """A queued read sent off alone (its wait ran out, or the batcher stopped) and
    then cancelled before it ran raises CancelledError, and nothing else."""
    async def body() -> None:
        async with etcd3.aio.client(endpoints=[etcd_server.endpoint],
                                    read_batch_in_flight=1) as client:
            await client.put("/aleft", "v")
            _allow_batching(client)
            batcher = _batcher(client)
            assert batcher.policy.try_send()
            queued = [asyncio.ensure_future(client.get("/aleft")) for _ in range(3)]
            for _ in range(10):
                await asyncio.sleep(0)
            assert len(batcher.policy.pending) == 3
            batcher._stop()  # what closing does: every queued read goes alone
            for task in queued:
                task.cancel()
            results = await asyncio.gather(*queued, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results), results

    _run(body)
