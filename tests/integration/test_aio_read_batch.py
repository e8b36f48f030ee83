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


def _count_left_running(client: etcd3.aio.Etcd3Client) -> List[int]:
    """One entry per call the transport sends without a gRPC deadline from now on."""
    transport = client._transport
    unbounded = transport._unbounded
    counted: List[int] = []

    async def counting(coroutine: Any, wait: Any) -> Any:
        counted.append(1)
        return await unbounded(coroutine, wait)

    transport._unbounded = counting  # type: ignore[method-assign]
    return counted


def test_batches_to_affected_servers_carry_no_deadline(etcd_server) -> None:
    """etcd 3.5.0-3.5.4 crash when a read-only Txn's context ends while it is applied
    (etcd #14110): batches sent there go without a gRPC deadline and are never
    cancelled; other versions get the attempt's deadline on the wire."""
    affected = (3, 5, 0) <= etcd_server.version_info < (3, 5, 5)

    async def body() -> None:
        async with etcd3.aio.client(endpoints=[etcd_server.endpoint],
                                    read_batch_in_flight=1) as client:
            await client.put("/asafe/k", "v")
            state = client._transport.pool.states[0]
            for _ in range(500):
                if state.version is not None:
                    break
                client._transport.read_txn_safe(state)  # learns it, as a batch does
                await asyncio.sleep(0.02)
            assert state.version == etcd_server.version_info
            batches = _count_batches(_batcher(client))
            left_running = _count_left_running(client)
            # A queued read waits only so long for a slot before it goes alone (a
            # slow first answer on a loaded machine sends them all alone): a few
            # rounds, bounded, until one batch held several reads.
            for _ in range(5):
                results = await asyncio.gather(*(client.get("/asafe/k")
                                                 for _ in range(64)))
                assert all(value == b"v" for value, _ in results)
                if batches and max(batches) > 1:
                    break
            assert batches and max(batches) > 1, batches
            several = sum(1 for size in batches if size > 1)
            assert len(left_running) == (several if affected else 0)

    _run(body)


def test_a_batch_on_a_frozen_affected_member_is_left_running(etcd_server) -> None:
    """A batch sent without a deadline (etcd 3.5.0-3.5.4) whose member stops
    answering: its readers give up at their deadline, the call is left running (not
    cancelled), and the member, once resumed, answers it and goes on serving."""
    async def body() -> None:
        async with etcd3.aio.client(
                endpoints=[etcd_server.endpoint], read_batch_in_flight=1,
                grpc_options=[("grpc.keepalive_time_ms", 600_000),
                              ("grpc.http2.ping_timeout_ms", 600_000)]) as client:
            await client.put("/afrozen/k", "v")
            for _ in range(8):  # every channel connected (calls take them in turn)
                await client.get("/afrozen/k")
            for state in client._transport.pool.states:  # batch as against 3.5.1
                state.version = (3, 5, 1)
                state.version_pending = float("inf")
            batcher = _batcher(client)
            batcher.policy.max_wait = 10.0  # the queued reads wait for the slot below
            etcd_server.pause()
            try:
                assert batcher.policy.try_send()  # a slow call holds the only slot...
                queued = [asyncio.ensure_future(client.get("/afrozen/k", timeout=1.5))
                          for _ in range(6)]
                for _ in range(10):
                    await asyncio.sleep(0)
                assert len(batcher.policy.pending) == 6
                batcher._release()  # ... and hands it to the six reads as one batch
                results = await asyncio.gather(*queued, return_exceptions=True)
                assert all(isinstance(r, exceptions.ConnectionTimeoutError)
                           for r in results), results
                left = list(client._transport._left_running)
                assert len(left) == 1 and not left[0].done()
            finally:
                etcd_server.resume()
            await asyncio.wait_for(asyncio.shield(left[0]), 20)  # answered after all
            assert (await client.get("/afrozen/k"))[0] == b"v"
            assert not client._transport._left_running

    _run(body)


def test_reads_queued_when_the_client_closes_meet_the_closed_client(etcd_server) -> None:
    async def body() -> None:
        client = etcd3.aio.client(endpoints=[etcd_server.endpoint], read_batch_in_flight=1)
        await client.put("/aclose", "v")
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
