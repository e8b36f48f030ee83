"""Arbitrary byte keys/values round-trip, and etcdctl sees exactly what we wrote."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import etcd3
from etcd3 import codec

keys = st.binary(min_size=1, max_size=64)
values = st.binary(max_size=512)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=keys, value=values)
def test_arbitrary_bytes_roundtrip(etcd_client: etcd3.Etcd3Client, key: bytes,
                                   value: bytes) -> None:
    etcd_client.put(key, value)
    got, meta = etcd_client.get(key)
    assert got == value and meta.key == key
    assert etcd_client.delete(key)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.binary(min_size=1, max_size=8), suffixes=st.sets(st.binary(max_size=4),
                                                                   max_size=5))
def test_prefix_selects_exactly_the_prefixed_keys(etcd_client: etcd3.Etcd3Client,
                                                  prefix: bytes, suffixes: set) -> None:
    etcd_client.delete_range(b"\0", b"\0")
    inside = {prefix + s for s in suffixes}
    outside = {k for k in (prefix[:-1] + b"\xff\xff", prefix + b"", bytes([prefix[0] ^ 1]))
               if not k.startswith(prefix) and k}
    for key in inside | outside:
        etcd_client.put(key, b"v")
    assert {m.key for _, m in etcd_client.get_prefix(prefix)} == inside


@pytest.mark.parametrize("prefix, end", [
    (b"a", b"b"),
    (b"abc", b"abd"),
    (b"a\xff", b"b"),
    (b"a\xff\xff", b"b"),
    (b"\x00", b"\x01"),
    (b"\xfe", b"\xff"),
    (b"\xff", b"\x00"),
    (b"\xff\xff\xff", b"\x00"),
    (b"", b"\x00"),
])
def test_prefix_range_end_edges(prefix: bytes, end: bytes) -> None:
    assert codec.prefix_range_end(prefix) == end


@given(st.binary(max_size=16))
def test_prefix_range_end_is_the_least_upper_bound(prefix: bytes) -> None:
    end = codec.prefix_range_end(prefix)
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        assert end == b"\x00"
    else:
        assert end > prefix and not end.startswith(prefix)
        assert len(end) == len(stripped)


def test_prefix_range_end_never_mutates_shared_bytes() -> None:
    # CPython shares 1-byte bytes objects; a codec that edits its output in place
    # would change the constant b"\x01" for the whole process.
    for value in range(255):
        single = bytes([value])
        assert codec.prefix_range_end(single) == bytes([value + 1])
        assert single == bytes([value]) and b"\x01"[0] == 1


def test_to_bytes_types() -> None:
    assert codec.to_bytes("é") == "é".encode()
    assert codec.to_bytes(b"\xff") == b"\xff"
    assert codec.to_bytes(bytearray(b"ab")) == b"ab"
    with pytest.raises(TypeError, match="key must be str or bytes, not int"):
        codec.to_bytes(3)


def _etcdctl_get_json(server, key: bytes) -> dict:
    result = server.etcdctl("get", "--prefix", key.decode("latin-1"), "-w", "json")
    return json.loads(result.stdout)


def test_etcdctl_reads_what_we_write(etcd_client: etcd3.Etcd3Client, etcd_server) -> None:
    written = {b"/interop/plain": b"value", b"/interop/utf8-\xc3\xa9": "é".encode(),
               b"/interop/binary": bytes(range(256))}
    for key, value in written.items():
        etcd_client.put(key, value)
    data = json.loads(etcd_server.etcdctl("get", "--prefix", "/interop/", "-w", "json").stdout)
    seen = {base64.b64decode(kv["key"]): base64.b64decode(kv.get("value", ""))
            for kv in data["kvs"]}
    assert seen == written
    revisions = {base64.b64decode(kv["key"]): kv["mod_revision"] for kv in data["kvs"]}
    for key in written:
        assert etcd_client.get(key)[1].mod_revision == revisions[key]


def test_we_read_what_etcdctl_writes(etcd_client: etcd3.Etcd3Client, etcd_server) -> None:
    etcd_server.etcdctl("put", "/interop/from-ctl", "hello from etcdctl")
    etcd_server.etcdctl("put", "/interop/empty", "--", "")
    assert etcd_client.get("/interop/from-ctl")[0] == b"hello from etcdctl"
    assert etcd_client.get("/interop/empty")[0] == b""
    lease_out = etcd_server.etcdctl("lease", "grant", "60").stdout
    lease_id = int(lease_out.split()[1], 16)
    etcd_server.etcdctl("put", "/interop/leased", "x", f"--lease={lease_id:x}")
    assert etcd_client.get("/interop/leased")[1].lease_id == lease_id
    assert b"/interop/leased" in etcd_client.get_lease_info(lease_id).keys
    etcd_client.revoke_lease(lease_id)
    assert "/interop/leased" not in etcd_server.etcdctl("get", "--prefix", "/interop/").stdout
