"""asyncio write coalescing (``write_batch_in_flight``) against a real etcd: concurrent
puts and deletes share Txns without changing any caller's result, order, or error."""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import Any, Awaitable, Callable, Dict, List, Tuple

import pytest

import etcd3
import etcd3.aio
from etcd3 import exceptions
from etcd3.aio._write_batch import AioWriteBatcher
from etcd3.retry import Retry
from etcd3.testing import EtcdCluster, EtcdServer

UNCERTAIN = "may or may not have been applied"


def _run(body: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(body(), timeout=120))


def _client(server: EtcdServer, in_flight: int = 1, **kwargs: Any) -> etcd3.aio.Etcd3Client:
    return etcd3.aio.client(endpoints=[server.endpoint], write_batch_in_flight=in_flight,
                            **kwargs)


def _batcher(client: etcd3.aio.Etcd3Client) -> AioWriteBatcher:
    return client._engine("write_batch", client._new_write_batcher)


def _prefix() -> str:
    return f"/wb-{uuid.uuid4().hex[:8]}/"


def _record_batches(batcher: AioWriteBatcher) -> List[List[bytes]]:
    """The keys of every batch (Txn) ``batcher`` sends from now on."""
    batches: List[List[bytes]] = []
    answer = batcher._answer

    async def recording(batch: Any) -> bool:
        batches.append([w.key for w in batch])
        return await answer(batch)

    batcher._answer = recording  # type: ignore[method-assign]
    return batches


async def _queue_up(client: etcd3.aio.Etcd3Client, writes: List[Callable[[], Awaitable[Any]]]
                    ) -> List[asyncio.Task[Any]]:
    """Start ``writes`` as tasks, in order, and let each reach the batcher."""
    tasks = [asyncio.ensure_future(w()) for w in writes]
    await asyncio.sleep(0)
    return tasks


def test_coalescing_is_off_by_default_and_checks_its_option(etcd_server: EtcdServer) -> None:
    with pytest.raises(ValueError):
        etcd3.aio.client(endpoints=[etcd_server.endpoint], write_batch_in_flight=0)
    with pytest.raises(ValueError):
        etcd3.aio.client(endpoints=[etcd_server.endpoint], write_batch_in_flight=True)

    async def body() -> None:
        async with etcd3.aio.client(endpoints=[etcd_server.endpoint]) as client:
            await asyncio.gather(*(client.put(f"{_prefix()}{i}", "v") for i in range(20)))
            assert client._existing_engine("write_batch") is None

    _run(body)


def test_500_concurrent_puts_each_get_their_own_value_and_revision(etcd_server: EtcdServer) -> None:
    prefix = _prefix()

    async def body() -> None:
        async with _client(etcd_server, 4) as client:
            start = (await client.get_response("any")).header.revision
            responses = await asyncio.gather(
                *(client.put(f"{prefix}{i}", f"value-{i}") for i in range(500)))
            end = (await client.get_response("any")).header.revision
            found = {meta.key: (value, meta.mod_revision)
                     async for value, meta in client.get_prefix(prefix)}
            policy = _batcher(client).policy
            assert len(found) == 500
            for i, response in enumerate(responses):
                value, mod_revision = found[f"{prefix}{i}".encode()]
                assert value == f"value-{i}".encode()
                assert response.header.revision == mod_revision
                assert start < response.header.revision <= end
            txns = policy.sent_alone + policy.batches
            assert policy.batched_writes + policy.sent_alone == 500
            assert txns < 50, (policy.sent_alone, policy.batches)
            # Coalesced writes share revisions: fewer revisions than writes.
            assert end - start == txns
            assert policy.in_flight == 0 and not policy.busy and not policy.pending

    _run(body)


def test_writes_to_one_key_keep_their_order_and_prev_kv_chains(etcd_server: EtcdServer) -> None:
    prefix = _prefix()
    key = f"{prefix}counter"

    async def body() -> None:
        async with _client(etcd_server, 2) as client:
            batches = _record_batches(_batcher(client))
            writes: List[Callable[[], Awaitable[Any]]] = []
            for i in range(100):
                writes.append(functools.partial(client.put, key, str(i), prev_kv=True))
                writes.append(functools.partial(client.put, f"{prefix}other{i}", "x"))
            tasks = await _queue_up(client, writes)
            results = await asyncio.gather(*tasks)
            ours = results[0::2]
            assert (await client.get(key))[0] == b"99"
            assert not ours[0].HasField("prev_kv")
            for i in range(1, 100):
                assert ours[i].prev_kv.value == str(i - 1).encode()
                assert ours[i].header.revision > ours[i - 1].header.revision
            assert batches and all(len(set(b)) == len(b) for b in batches)

    _run(body)


def test_each_caller_gets_its_own_prev_kv_and_delete_result(etcd_server: EtcdServer) -> None:
    prefix = _prefix()

    async def body() -> None:
        async with _client(etcd_server, 1) as client:
            await asyncio.gather(*(client.put(f"{prefix}{i}", f"old-{i}") for i in range(100)))
            batches = _record_batches(_batcher(client))
            puts = await asyncio.gather(
                *(client.put(f"{prefix}{i}", f"new-{i}", prev_kv=True) for i in range(120)))
            for i, response in enumerate(puts):
                if i < 100:
                    assert response.prev_kv.key == f"{prefix}{i}".encode()
                    assert response.prev_kv.value == f"old-{i}".encode()
                else:
                    assert not response.HasField("prev_kv")
            deletes = await asyncio.gather(
                *(client.delete(f"{prefix}{i}", prev_kv=True, return_response=True)
                  for i in range(60)))
            for i, response in enumerate(deletes):
                assert response.deleted == 1
                assert [kv.value for kv in response.prev_kvs] == [f"new-{i}".encode()]
            # delete() without return_response: True for a key that existed.
            existed = await asyncio.gather(
                *(client.delete(f"{prefix}{i}") for i in range(50, 150)))
            assert existed == [60 <= i < 120 for i in range(50, 150)]
            assert len(batches) >= 3
            assert [v async for v, _ in client.get_prefix(prefix)] == []

    _run(body)


def test_lease_attached_puts_and_one_bad_lease_fails_only_its_caller(
        etcd_server: EtcdServer) -> None:
    prefix = _prefix()

    async def body() -> None:
        async with _client(etcd_server, 1) as client:
            lease = await client.lease(60)
            with pytest.raises(exceptions.LeaseNotFoundError) as lone:
                await client.put(f"{prefix}lone", "v", lease=987654321)
            batches = _record_batches(_batcher(client))
            results = await asyncio.gather(
                *(client.put(f"{prefix}{i}", "v", lease=987654321 if i == 50 else lease)
                  for i in range(100)), return_exceptions=True)
            bad = results[50]
            assert isinstance(bad, exceptions.LeaseNotFoundError), bad
            assert str(bad) == str(lone.value).replace("lone", "50")
            assert all(not isinstance(r, BaseException) for i, r in enumerate(results)
                       if i != 50)
            assert any(f"{prefix}50".encode() in b for b in batches)
            keys = sorted((await client.get_lease_info(lease.id)).keys)
            assert len(keys) == 99 and f"{prefix}50".encode() not in keys
            await lease.revoke()
            assert [v async for v, _ in client.get_prefix(prefix)] == []

    _run(body)


def test_a_burst_above_128_ops_is_split(etcd_server: EtcdServer) -> None:
    prefix = _prefix()

    async def body() -> None:
        async with _client(etcd_server, 1) as client:
            batches = _record_batches(_batcher(client))
            await asyncio.gather(*(client.put(f"{prefix}{i}", "v") for i in range(400)))
            assert max(len(b) for b in batches) == 128
            assert sum(len(b) for b in batches) == 399  # the first went alone
            assert len([v async for v, _ in client.get_prefix(prefix)]) == 400

    _run(body)


def test_large_values_are_split_below_the_request_limit(etcd_server: EtcdServer) -> None:
    prefix = _prefix()
    value = b"x" * 200_000

    async def body() -> None:
        async with _client(etcd_server, 1) as client:
            batcher = _batcher(client)
            batches = _record_batches(batcher)
            await asyncio.gather(*(client.put(f"{prefix}{i}", value) for i in range(30)))
            assert len(batches) >= 5 and max(len(b) for b in batches) <= 5
            found = [v async for v, _ in client.get_prefix(prefix)]
            assert found == [value] * 30

            # A server that refuses a batch as too large: its writes re-run alone
            # and the limit is lowered for what follows.
            batcher.policy.max_bytes = 50_000_000
            await asyncio.gather(*(client.put(f"{prefix}again{i}", value)
                                   for i in range(30)))
            assert batcher.policy.max_bytes < 50_000_000
            found = [v async for v, _ in client.get_prefix(f"{prefix}again")]
            assert found == [value] * 30

    _run(body)


def test_cancelled_while_queued_sends_nothing(etcd_server: EtcdServer) -> None:
    prefix = _prefix()

    async def body() -> None:
        async with _client(etcd_server, 1) as client:
            batcher = _batcher(client)
            tasks = await _queue_up(client, [
                functools.partial(client.put, f"{prefix}{i}", "v") for i in range(10)])
            assert len(batcher.policy.pending) == 9
            tasks[5].cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert isinstance(results[5], asyncio.CancelledError)
            assert all(not isinstance(r, BaseException) for i, r in enumerate(results)
                       if i != 5)
            keys = [m.key async for _, m in client.get_prefix(prefix)]
            assert f"{prefix}5".encode() not in keys and len(keys) == 9
            policy = batcher.policy
            assert not policy.pending and not policy.busy and policy.in_flight == 0

    _run(body)


def test_cancelled_after_its_batch_was_sent_says_it_may_have_applied(
        etcd_server: EtcdServer) -> None:
    prefix = _prefix()

    async def body() -> None:
        async with _client(etcd_server, 1) as client:
            batcher = _batcher(client)
            tasks = await _queue_up(client, [
                functools.partial(client.put, f"{prefix}{i}", "v") for i in range(10)])
            for _ in range(10_000):  # until the queued writes are on the wire
                if batcher._tasks:
                    break
                await asyncio.sleep(0)
            assert batcher._tasks
            tasks[5].cancel()
            with pytest.raises(asyncio.CancelledError) as cancelled:
                await tasks[5]
            await asyncio.gather(*tasks, return_exceptions=True)
            notes = getattr(cancelled.value, "__notes__", [])
            assert any(f"Put [key b'{prefix}5'] was cancelled after it was sent" in n
                       and UNCERTAIN in n for n in notes), notes
            # The batch completed for everyone (the cancelled one included).
            keys = [m.key async for _, m in client.get_prefix(prefix)]
            assert len(keys) == 10

    _run(body)


def test_close_fails_queued_writes(etcd_server: EtcdServer) -> None:
    prefix = _prefix()

    async def body() -> None:
        client = _client(etcd_server, 1)
        batcher = _batcher(client)
        tasks = await _queue_up(client, [
            functools.partial(client.put, f"{prefix}{i}", "v") for i in range(20)])
        queued = len(batcher.policy.pending)
        assert queued == 19
        await client.close()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        not_sent = [i for i, r in enumerate(results)
                    if isinstance(r, exceptions.ClientClosedError) and "not applied" in str(r)]
        assert len(not_sent) == queued
        assert all(isinstance(r, exceptions.ClientClosedError)
                   or not isinstance(r, BaseException) for r in results), results
        with etcd3.client(endpoints=[etcd_server.endpoint]) as checker:
            keys = {m.key for _, m in checker.get_prefix(prefix)}
        assert not any(f"{prefix}{i}".encode() in keys for i in not_sent)

    _run(body)


def test_a_batch_with_unknown_outcome_gives_each_caller_a_lone_writes_error() -> None:
    with EtcdServer(name="wb-frozen") as server:
        async def body() -> None:
            async with _client(server, 1, timeout=10) as client:
                await client.put("warm", "up")
                await asyncio.to_thread(server.pause)
                try:
                    with pytest.raises(exceptions.ConnectionTimeoutError) as lone:
                        await client.put("lone", "v", timeout=1.0)
                    first = asyncio.ensure_future(client.put("first", "v", timeout=0.5))
                    await asyncio.sleep(0)
                    rest = [asyncio.ensure_future(client.put(f"k{i}", "v", timeout=3.0))
                            for i in range(5)]
                    results = await asyncio.gather(first, *rest, return_exceptions=True)
                finally:
                    await asyncio.to_thread(server.resume)
                assert UNCERTAIN in str(lone.value)
                expected = str(lone.value).split(" on ")[0].replace("lone", "{}")
                for i, error in enumerate(results[1:]):
                    text = str(error)
                    if isinstance(error, exceptions.ConnectionFailedError):
                        # gRPC's ping timeout ended the stream before the deadline
                        # (as it would have ended a lone write's).
                        assert text.startswith(f"Put [key b'k{i}'] failed on "), text
                    else:
                        assert type(error) is type(lone.value), error
                        assert text.startswith(expected.format(f"k{i}")), text
                    assert UNCERTAIN in text and "Txn" not in text
                    assert error.attempts >= 1 and error.endpoints_tried
                # Never applied twice: each key written at most once.
                for i in range(5):
                    _, meta = await client.get(f"k{i}")
                    assert meta is None or meta.version == 1

        _run(body)


# -- a member killed mid-burst ----------------------------------------------------------


def _burst_writer(client: etcd3.aio.Etcd3Client, prefix: str, n: int, stop: List[bool],
                  written: List[bytes], uncertain: List[Tuple[bytes, BaseException]],
                  other: List[BaseException]) -> Awaitable[None]:
    async def run() -> None:
        i = 0
        while not stop[0]:
            i += 1
            key = f"{prefix}{n}/{i}".encode()
            try:
                await client.put(key, b"x")
            except (exceptions.ConnectionFailedError,
                    exceptions.ConnectionTimeoutError) as error:
                uncertain.append((key, error))
                continue
            except Exception as error:
                other.append(error)
                continue
            written.append(key)
    return run()


def test_member_killed_mid_burst_loses_and_doubles_nothing() -> None:
    prefix = _prefix()
    with EtcdCluster(size=3) as cluster:
        async def body() -> Tuple[List[bytes], List[Tuple[bytes, BaseException]]]:
            written: List[bytes] = []
            uncertain: List[Tuple[bytes, BaseException]] = []
            other: List[BaseException] = []
            stop = [False]
            async with etcd3.aio.client(endpoints=cluster.endpoints, timeout=12,
                                        retry=Retry(attempt_timeout=1.0),
                                        write_batch_in_flight=2) as client:
                tasks = [asyncio.ensure_future(
                    _burst_writer(client, prefix, n, stop, written, uncertain, other))
                    for n in range(64)]
                await asyncio.sleep(1.0)
                leader = await asyncio.to_thread(cluster.leader)
                leader.kill()
                await asyncio.sleep(2.5)
                await asyncio.to_thread(leader.start)
                await asyncio.to_thread(cluster.wait_healthy)
                await asyncio.sleep(1.0)
                stop[0] = True
                await asyncio.wait_for(asyncio.gather(*tasks), 60)
                policy = _batcher(client).policy
                assert policy.batches > 0
            assert not other, other[:3]
            return written, uncertain

        written, uncertain = asyncio.run(body())
        assert len(written) > 500
        for _key, error in uncertain:
            assert UNCERTAIN in str(error) or "not sent" in str(error), error
            assert "Txn" not in str(error), error
        with etcd3.client(endpoints=cluster.endpoints, timeout=10) as checker:
            found: Dict[bytes, int] = {
                meta.key: meta.version for _, meta in checker.get_prefix(prefix)}
        missing = [key for key in written if found.get(key) != 1]
        assert not missing, missing[:5]
        assert all(found.get(key, 0) <= 1 for key, _ in uncertain)
        assert len(found) <= len(written) + len(uncertain)


def test_lone_writer_latency_is_not_queued(etcd_server: EtcdServer) -> None:
    """A lone writer goes out at once: nothing is ever queued for it."""
    prefix = _prefix()

    async def body() -> None:
        async with _client(etcd_server, 1) as client:
            policy = _batcher(client).policy
            for i in range(50):
                await client.put(f"{prefix}{i}", "v")
                assert not policy.pending
            assert policy.sent_alone == 50 and policy.batches == 0

    _run(body)
