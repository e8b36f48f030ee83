"""etcd3.aio: status, alarms, hashes, defragmentation and snapshots (as a file and as
an async byte stream, restored with etcdutl) on a single real etcd."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Awaitable, Callable, List

import pytest

import etcd3.aio
from etcd3 import exceptions
from etcd3.maintenance import Alarm, AlarmType, HashKV, Status
from etcd3.testing import EtcdServer, find_etcd_binary

Body = Callable[[etcd3.aio.Etcd3Client], Awaitable[None]]


def run(server: EtcdServer, body: Body) -> None:
    async def main() -> None:
        async with etcd3.aio.client(host=server.host, port=server.port,
                                    timeout=10) as client:
            await body(client)

    asyncio.run(main())


def test_status_describes_the_member(etcd_server: EtcdServer) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        status = await client.status()
        assert isinstance(status, Status)
        assert status.version == etcd_server.version
        assert status.db_size > 0 and status.raft_index > 0 and status.raft_term > 0
        (member,) = [m async for m in client.members]
        assert status.leader == member and status.is_leader
        assert status.member_id == member.id and status.endpoint is None
        pinned = await client.status(endpoint=etcd_server.endpoint)
        assert pinned.endpoint == etcd_server.endpoint
        by_url = await client.status(endpoint=etcd_server.client_url)
        assert by_url.member_id == member.id
        assert list(await client.statuses()) == [etcd_server.endpoint]
        with pytest.raises(ValueError, match="not one of this client's endpoints"):
            await client.status(endpoint="127.0.0.1:1")

    run(etcd_server, body)


def test_nospace_alarm_blocks_writes_until_disarmed(etcd_server: EtcdServer) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        try:
            assert await client.create_alarm() == [Alarm(AlarmType.NOSPACE, 0)]
            assert await client.list_alarms() == [Alarm(AlarmType.NOSPACE, 0)]
            assert await client.list_alarms(alarm_type="corrupt") == []
            assert await client.list_alarms(alarm_type="no space") == [
                Alarm(AlarmType.NOSPACE, 0)]
            with pytest.raises(exceptions.NoSpaceError):
                await client.put("/alarmed", "x")
        finally:
            disarmed = await client.disarm_alarm()
        assert disarmed == [Alarm(AlarmType.NOSPACE, 0)]
        assert await client.list_alarms() == []
        await client.put("/alarmed", "x")
        (member,) = [m async for m in client.members]
        assert await member.active_alarms == []
        with pytest.raises(ValueError, match="unknown alarm type"):
            await client.list_alarms(alarm_type="fire")

    run(etcd_server, body)


def test_hashes_and_defragment(etcd_server: EtcdServer) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        await client.put("/h", "1")
        revision = (await client.status()).header.revision
        first = await client.hash_kv(revision)
        assert isinstance(first, HashKV) and first.member_id == (await client.status()).member_id
        await client.put("/h", "2")
        assert (await client.hash_kv(revision)).hash == first.hash
        assert (await client.hash_kv()).hash != first.hash
        assert isinstance(await client.hash(), int)
        await client.defragment()
        await client.defragment(endpoint=etcd_server.endpoint)
        assert (await client.get("/h"))[0] == b"2"

    run(etcd_server, body)


def restore_and_read(snapshot: Path, tmp_path: Path, name: str) -> List[bytes]:
    """Restore ``snapshot`` with etcdutl into a new etcd; the values under /snap/."""
    restored = EtcdServer(name=name, data_dir=str(tmp_path / name))
    subprocess.run(
        [find_etcd_binary("etcdutl"), "snapshot", "restore", str(snapshot),
         "--data-dir", restored.data_dir, "--name", restored.name,
         "--initial-cluster", f"{restored.name}={restored.peer_url}",
         "--initial-advertise-peer-urls", restored.peer_url],
        check=True, capture_output=True, timeout=30)

    async def read() -> List[bytes]:
        async with etcd3.aio.client(host=restored.host, port=restored.port) as client:
            return [value async for value, _ in client.get_prefix("/snap/")]

    with restored:
        return asyncio.run(read())


def test_snapshot_into_a_file_and_as_a_stream_both_restore(etcd_server: EtcdServer,
                                                           tmp_path: Path) -> None:
    into_file = tmp_path / "file.snapshot"
    streamed = tmp_path / "stream.snapshot"
    file_progress: List[int] = []
    stream_progress: List[int] = []

    async def body(client: etcd3.aio.Etcd3Client) -> None:
        await client.delete_prefix("/snap/")
        for i in range(200):
            await client.put(f"/snap/{i:03d}", f"value-{i}" * 50)
        with into_file.open("wb") as handle:
            written = await client.snapshot(handle, progress=file_progress.append)
        assert written == into_file.stat().st_size
        # The database holds the 200 values (~100 kB); a snapshot is the whole file.
        status = await client.status()
        assert 100_000 < written and written >= status.db_size_in_use
        chunks = []
        async for chunk in client.snapshot_stream(progress=stream_progress.append,
                                                  endpoint=etcd_server.endpoint):
            assert isinstance(chunk, bytes) and chunk
            chunks.append(chunk)
        streamed.write_bytes(b"".join(chunks))
        assert len(chunks) > 1 and stream_progress[-1] == streamed.stat().st_size

    run(etcd_server, body)
    assert file_progress and file_progress[-1] == into_file.stat().st_size
    assert file_progress == sorted(file_progress)
    assert stream_progress == sorted(stream_progress)
    expected = [f"value-{i}".encode() * 50 for i in range(200)]
    assert restore_and_read(into_file, tmp_path, "etcd-aio-restored-file") == expected
    assert restore_and_read(streamed, tmp_path, "etcd-aio-restored-stream") == expected


def test_a_snapshot_stream_left_early_or_cancelled_is_closed(etcd_server: EtcdServer) -> None:
    async def body(client: etcd3.aio.Etcd3Client) -> None:
        stream = client.snapshot_stream()
        first = await stream.__anext__()
        assert first
        await stream.aclose()  # type: ignore[attr-defined]

        async def read_all() -> int:
            size = 0
            async for chunk in client.snapshot_stream():
                size += len(chunk)
                await asyncio.sleep(0.05)
            return size

        task = asyncio.ensure_future(read_all())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The client still works, and a whole snapshot still arrives.
        sizes = [len(c) async for c in client.snapshot_stream()]
        assert sum(sizes) > 0
        await client.put("/after-snapshots", "ok")

    run(etcd_server, body)
