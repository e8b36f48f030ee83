"""Status, alarms, hashes, defragmentation and snapshots on a single real etcd."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import etcd3
from etcd3 import exceptions
from etcd3.maintenance import Alarm, AlarmType
from etcd3.testing import EtcdServer, find_etcd_binary

pytestmark = pytest.mark.drivers("threaded", "aio")


def test_status_describes_the_member(etcd_client: etcd3.Etcd3Client,
                                     etcd_server: EtcdServer) -> None:
    status = etcd_client.status()
    assert status.version == etcd_server.version
    assert status.db_size > 0 and status.raft_index > 0 and status.raft_term > 0
    (member,) = list(etcd_client.members)
    assert status.leader == member and status.is_leader
    assert status.member_id == member.id
    pinned = etcd_client.status(endpoint=etcd_server.endpoint)
    assert pinned.endpoint == etcd_server.endpoint
    assert etcd_client.status(endpoint=etcd_server.client_url).member_id == member.id
    assert list(etcd_client.statuses()) == [etcd_server.endpoint]
    with pytest.raises(ValueError, match="not one of this client's endpoints"):
        etcd_client.status(endpoint="127.0.0.1:1")


def test_nospace_alarm_blocks_writes_until_disarmed(
        etcd_client: etcd3.Etcd3Client) -> None:
    try:
        assert etcd_client.create_alarm() == [Alarm(AlarmType.NOSPACE, 0)]
        assert etcd_client.list_alarms() == [Alarm(AlarmType.NOSPACE, 0)]
        assert etcd_client.list_alarms(alarm_type="corrupt") == []
        with pytest.raises(exceptions.NoSpaceError):
            etcd_client.put("/alarmed", "x")
    finally:
        disarmed = etcd_client.disarm_alarm()
    assert disarmed == [Alarm(AlarmType.NOSPACE, 0)]
    assert etcd_client.list_alarms() == []
    etcd_client.put("/alarmed", "x")
    (member,) = list(etcd_client.members)
    assert member.active_alarms == []


def test_hashes_and_defragment(etcd_client: etcd3.Etcd3Client,
                               etcd_server: EtcdServer) -> None:
    etcd_client.put("/h", "1")
    revision = etcd_client.status().header.revision
    first = etcd_client.hash_kv(revision)
    etcd_client.put("/h", "2")
    assert etcd_client.hash_kv(revision).hash == first.hash
    assert etcd_client.hash_kv().hash != first.hash
    assert isinstance(etcd_client.hash(), int)
    etcd_client.defragment()
    etcd_client.defragment(endpoint=etcd_server.endpoint)
    assert etcd_client.get("/h")[0] == b"2"


def test_snapshot_restores_with_etcdutl(etcd_client: etcd3.Etcd3Client,
                                        tmp_path: Path) -> None:
    for i in range(20):
        etcd_client.put(f"/snap/{i:02d}", f"value-{i}")
    snapshot = tmp_path / "db.snapshot"
    progress = []
    with snapshot.open("wb") as handle:
        written = etcd_client.snapshot(handle, progress=progress.append)
    assert written == snapshot.stat().st_size > 0
    assert progress and progress[-1] == written and progress == sorted(progress)

    restored = EtcdServer(name="etcd-restored", data_dir=str(tmp_path / "restored"))
    subprocess.run(
        [find_etcd_binary("etcdutl"), "snapshot", "restore", str(snapshot),
         "--data-dir", restored.data_dir, "--name", restored.name,
         "--initial-cluster", f"{restored.name}={restored.peer_url}",
         "--initial-advertise-peer-urls", restored.peer_url],
        check=True, capture_output=True, timeout=30)
    with restored, etcd3.client(host=restored.host, port=restored.port) as client:
        values = [value for value, _ in client.get_prefix("/snap/")]
    assert values == [f"value-{i}".encode() for i in range(20)]

