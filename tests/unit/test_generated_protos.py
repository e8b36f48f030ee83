"""The generated etcd3/etcdrpc/ code is fresh and matches etcd's v3 API.

Freshness: etcd3/etcdrpc/SOURCES.sha256 (written by protos/generate.py) holds
the sha256 of every .proto source and every generated file; recomputing them
needs no particular grpcio-tools. A full regeneration (`generate.py --check`)
also runs when an interpreter with the pinned grpcio-tools can be found (this
one, $ETCD3_GEN_PYTHON, or the venv made by `generate.py --bootstrap`).
"""

import hashlib
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKG = os.path.join(ROOT, "etcd3", "etcdrpc")
HASH_FILE = os.path.join(PKG, "SOURCES.sha256")
GENERATE = os.path.join(ROOT, "protos", "generate.py")
HINT = "generated code is stale: run python protos/generate.py"

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _load_generate():
    spec = importlib.util.spec_from_file_location("_etcd3_protos_generate", GENERATE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read().replace(b"\r\n", b"\n")).hexdigest()


def _recorded_hashes():
    assert os.path.exists(HASH_FILE), f"missing {HASH_FILE}; {HINT}"
    recorded = {}
    with open(HASH_FILE) as f:
        for line in f:
            digest, rel = line.rstrip("\n").split("  ", 1)
            recorded[rel] = digest
    return recorded


def test_proto_sources_match_recorded_hashes():
    recorded = _recorded_hashes()
    on_disk = set()
    for dirpath, _, files in os.walk(os.path.join(ROOT, "protos")):
        for name in files:
            if name.endswith(".proto"):
                on_disk.add(os.path.relpath(os.path.join(dirpath, name), ROOT).replace(os.sep, "/"))
    listed = {rel for rel in recorded if rel.endswith(".proto")}
    assert on_disk == listed, f"proto files changed ({sorted(on_disk)} vs {sorted(listed)}); {HINT}"
    for rel in sorted(listed):
        assert _sha256(os.path.join(ROOT, rel)) == recorded[rel], f"{rel} changed; {HINT}"


def test_generated_files_match_recorded_hashes():
    recorded = _recorded_hashes()
    generated = {rel: d for rel, d in recorded.items() if not rel.endswith(".proto")}
    expected = {"etcd3/etcdrpc/" + n for n in _load_generate().generated_names()
                if n != "SOURCES.sha256"}
    assert set(generated) == expected, HINT
    for rel, digest in sorted(generated.items()):
        path = os.path.join(ROOT, rel)
        assert os.path.exists(path), f"{rel} missing; {HINT}"
        assert _sha256(path) == digest, (
            f"{rel} was edited by hand or generated differently; {HINT}")


def test_full_regeneration_check():
    gen = _load_generate()
    python = gen.find_pinned_python()
    if python is None:
        # First run on this machine: make the venv with the pinned generator.
        boot = subprocess.run([sys.executable, GENERATE, "--bootstrap"], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert boot.returncode == 0, (
            f"could not install grpcio-tools=={gen.PINNED_GRPCIO_TOOLS} for the regeneration "
            f"check:\n{boot.stdout}{boot.stderr}")
        python = gen.find_pinned_python()
        assert python is not None, "protos/generate.py --bootstrap made no usable venv"
    res = subprocess.run([python, GENERATE, "--check"], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


# --------------------------------------------------------------- API shape

@pytest.fixture(scope="module")
def rpc():
    from etcd3.etcdrpc import rpc_pb2
    return rpc_pb2


EXPECTED_METHODS = {
    "KV": {"Range", "Put", "DeleteRange", "Txn", "Compact"},
    "Watch": {"Watch"},
    "Lease": {"LeaseGrant", "LeaseRevoke", "LeaseKeepAlive", "LeaseTimeToLive", "LeaseLeases"},
    "Cluster": {"MemberAdd", "MemberRemove", "MemberUpdate", "MemberList", "MemberPromote"},
    "Maintenance": {"Alarm", "Status", "Defragment", "Hash", "HashKV", "Snapshot",
                    "MoveLeader", "Downgrade"},
    "Auth": {"AuthEnable", "AuthDisable", "AuthStatus", "Authenticate",
             "UserAdd", "UserGet", "UserList", "UserDelete", "UserChangePassword",
             "UserGrantRole", "UserRevokeRole",
             "RoleAdd", "RoleGet", "RoleList", "RoleDelete",
             "RoleGrantPermission", "RoleRevokePermission"},
}


def test_services_and_methods(rpc):
    services = rpc.DESCRIPTOR.services_by_name
    assert set(services) == set(EXPECTED_METHODS)
    for name, methods in EXPECTED_METHODS.items():
        assert services[name].full_name == "etcdserverpb." + name
        assert {m.name for m in services[name].methods} == methods, name


class _RecordingChannel:
    """Stands in for grpc.Channel: records which call shape each stub method uses."""

    def __init__(self):
        self.kinds = {}

    def __getattr__(self, kind):
        if kind not in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            raise AttributeError(kind)

        def make(path, *args, **kwargs):
            self.kinds[path] = kind
            return object()
        return make


def test_streaming_shapes():
    from etcd3.etcdrpc import rpc_pb2_grpc

    ch = _RecordingChannel()
    for name in EXPECTED_METHODS:
        getattr(rpc_pb2_grpc, name + "Stub")(ch)
    expected_paths = {f"/etcdserverpb.{s}/{m}"
                      for s, ms in EXPECTED_METHODS.items() for m in ms}
    assert set(ch.kinds) == expected_paths
    streaming = {p: k for p, k in ch.kinds.items() if k != "unary_unary"}
    assert streaming == {
        "/etcdserverpb.Watch/Watch": "stream_stream",
        "/etcdserverpb.Lease/LeaseKeepAlive": "stream_stream",
        "/etcdserverpb.Maintenance/Snapshot": "unary_stream",
    }


def test_grpc_stubs_import():
    from etcd3.etcdrpc import rpc_pb2_grpc
    for name in EXPECTED_METHODS:
        assert hasattr(rpc_pb2_grpc, name + "Stub")
        assert hasattr(rpc_pb2_grpc, name + "Servicer")


def _numbers(msg):
    return {f.name: f.number for f in msg.DESCRIPTOR.fields}


def test_field_numbers_match_etcd(rpc):
    from etcd3.etcdrpc import auth_pb2, kv_pb2

    assert _numbers(kv_pb2.KeyValue) == {
        "key": 1, "create_revision": 2, "mod_revision": 3, "version": 4,
        "value": 5, "lease": 6}
    assert _numbers(kv_pb2.Event) == {"type": 1, "kv": 2, "prev_kv": 3}
    assert kv_pb2.Event.DELETE == 1

    assert _numbers(rpc.RangeRequest) == {
        "key": 1, "range_end": 2, "limit": 3, "revision": 4, "sort_order": 5,
        "sort_target": 6, "serializable": 7, "keys_only": 8, "count_only": 9,
        "min_mod_revision": 10, "max_mod_revision": 11,
        "min_create_revision": 12, "max_create_revision": 13}
    assert _numbers(rpc.PutRequest) == {
        "key": 1, "value": 2, "lease": 3, "prev_kv": 4, "ignore_value": 5, "ignore_lease": 6}
    assert _numbers(rpc.WatchCreateRequest) == {
        "key": 1, "range_end": 2, "start_revision": 3, "progress_notify": 4,
        "filters": 5, "prev_kv": 6, "watch_id": 7, "fragment": 8}
    assert _numbers(rpc.WatchResponse) == {
        "header": 1, "watch_id": 2, "created": 3, "canceled": 4,
        "compact_revision": 5, "cancel_reason": 6, "fragment": 7, "events": 11}
    assert _numbers(rpc.WatchRequest) == {
        "create_request": 1, "cancel_request": 2, "progress_request": 3}
    assert _numbers(rpc.Compare)["range_end"] == 64
    assert _numbers(rpc.Compare)["lease"] == 8
    assert rpc.Compare.NOT_EQUAL == 3 and rpc.Compare.LEASE == 4
    assert _numbers(rpc.RequestOp)["request_txn"] == 4
    assert _numbers(rpc.ResponseHeader) == {
        "cluster_id": 1, "member_id": 2, "revision": 3, "raft_term": 4}
    assert _numbers(rpc.LeaseTimeToLiveResponse) == {
        "header": 1, "ID": 2, "TTL": 3, "grantedTTL": 4, "keys": 5}
    assert _numbers(rpc.Member) == {
        "ID": 1, "name": 2, "peerURLs": 3, "clientURLs": 4, "isLearner": 5}
    assert _numbers(rpc.StatusResponse)["isLearner"] == 10
    assert _numbers(rpc.StatusResponse)["dbSizeInUse"] == 9
    assert _numbers(rpc.AuthUserAddRequest) == {
        "name": 1, "password": 2, "options": 3, "hashedPassword": 4}
    assert _numbers(rpc.AuthStatusResponse) == {"header": 1, "enabled": 2, "authRevision": 3}
    assert _numbers(rpc.HashKVResponse)["compact_revision"] == 3
    assert _numbers(rpc.MemberListRequest) == {"linearizable": 1}
    assert rpc.AlarmType.Value("NOSPACE") == 1 and rpc.AlarmType.Value("CORRUPT") == 2
    assert _numbers(auth_pb2.Permission) == {"permType": 1, "key": 2, "range_end": 3}
    assert auth_pb2.Permission.READWRITE == 2
    assert _numbers(auth_pb2.User)["options"] == 4


def test_package_names(rpc):
    from etcd3.etcdrpc import auth_pb2, kv_pb2

    assert kv_pb2.DESCRIPTOR.package == "mvccpb"
    assert auth_pb2.DESCRIPTOR.package == "authpb"
    assert rpc.DESCRIPTOR.package == "etcdserverpb"
    assert rpc.RangeResponse.DESCRIPTOR.fields_by_name["kvs"].message_type.full_name == \
        "mvccpb.KeyValue"


def test_round_trip(rpc):
    from etcd3.etcdrpc import kv_pb2

    req = rpc.TxnRequest(
        compare=[rpc.Compare(key=b"k", target=rpc.Compare.CREATE, create_revision=0)],
        success=[rpc.RequestOp(request_put=rpc.PutRequest(key=b"k", value=b"v", lease=9))],
        failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=b"k", keys_only=True))])
    back = rpc.TxnRequest.FromString(req.SerializeToString())
    assert back == req
    assert back.success[0].WhichOneof("request") == "request_put"
    resp = rpc.WatchResponse(watch_id=3, events=[kv_pb2.Event(
        type=kv_pb2.Event.DELETE, kv=kv_pb2.KeyValue(key=b"k", mod_revision=5))])
    parsed = rpc.WatchResponse()
    parsed.ParseFromString(resp.SerializeToString())
    assert parsed.events[0].kv.mod_revision == 5
