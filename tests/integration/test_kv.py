"""Key-value calls against a real etcd: every method and every Range option."""

from __future__ import annotations

import pytest

import etcd3
from etcd3 import exceptions

pytestmark = pytest.mark.drivers("threaded", "aio")


def test_put_get_roundtrip(etcd_client: etcd3.Etcd3Client) -> None:
    response = etcd_client.put("/kv/a", "hello")
    assert response.header.revision > 0
    value, meta = etcd_client.get("/kv/a")
    assert value == b"hello"
    assert meta.key == b"/kv/a"
    assert meta.version == 1
    assert meta.create_revision == meta.mod_revision == response.header.revision
    assert meta.lease_id == 0
    assert meta.response_header.revision >= response.header.revision


def test_get_missing_key(etcd_client: etcd3.Etcd3Client) -> None:
    assert etcd_client.get("/kv/missing") == (None, None)


def test_bytes_and_str_keys_are_the_same(etcd_client: etcd3.Etcd3Client) -> None:
    etcd_client.put(b"/kv/\xc3\xa9", b"x")
    assert etcd_client.get("/kv/é")[0] == b"x"


def test_put_prev_kv(etcd_client: etcd3.Etcd3Client) -> None:
    etcd_client.put("/kv/p", "one")
    response = etcd_client.put("/kv/p", "two", prev_kv=True)
    assert response.prev_kv.value == b"one"
    assert etcd_client.get("/kv/p")[0] == b"two"


def test_put_if_not_exists_and_replace(etcd_client: etcd3.Etcd3Client) -> None:
    assert etcd_client.put_if_not_exists("/kv/once", "first") is True
    assert etcd_client.put_if_not_exists("/kv/once", "second") is False
    assert etcd_client.get("/kv/once")[0] == b"first"
    assert etcd_client.replace("/kv/once", "nope", "x") is False
    assert etcd_client.replace("/kv/once", "first", "third") is True
    assert etcd_client.get("/kv/once")[0] == b"third"


def test_delete(etcd_client: etcd3.Etcd3Client) -> None:
    etcd_client.put("/kv/d", "v")
    assert etcd_client.delete("/kv/d") is True
    assert etcd_client.delete("/kv/d") is False
    etcd_client.put("/kv/d", "v2")
    response = etcd_client.delete("/kv/d", prev_kv=True, return_response=True)
    assert response.deleted == 1
    assert [kv.value for kv in response.prev_kvs] == [b"v2"]


def test_prefix_and_range_and_all(etcd_client: etcd3.Etcd3Client) -> None:
    for name in ("a", "b", "c"):
        etcd_client.put(f"/pfx/{name}", name.upper())
    etcd_client.put("/pfy", "outside")
    assert [(v, m.key) for v, m in etcd_client.get_prefix("/pfx/")] == [
        (b"A", b"/pfx/a"), (b"B", b"/pfx/b"), (b"C", b"/pfx/c")]
    assert [m.key for _, m in etcd_client.get_range("/pfx/a", "/pfx/c")] == [
        b"/pfx/a", b"/pfx/b"]
    assert {m.key for _, m in etcd_client.get_all()} == {
        b"/pfx/a", b"/pfx/b", b"/pfx/c", b"/pfy"}
    response = etcd_client.get_prefix_response("/pfx/")
    assert response.count == 3
    assert etcd_client.delete_prefix("/pfx/").deleted == 3
    assert list(etcd_client.get_prefix("/pfx/")) == []
    assert etcd_client.delete_range("/pfa", "/pfz").deleted == 1


def test_prefix_rejects_key_and_range_end(etcd_client: etcd3.Etcd3Client) -> None:
    with pytest.raises(TypeError):
        etcd_client.get_prefix("/x", range_end="/y")


@pytest.fixture
def sorted_keys(etcd_client: etcd3.Etcd3Client) -> etcd3.Etcd3Client:
    # create order c, a, b; values reverse of key order; b updated twice
    etcd_client.put("/s/c", "1")
    etcd_client.put("/s/a", "3")
    etcd_client.put("/s/b", "2")
    etcd_client.put("/s/b", "2")
    return etcd_client


@pytest.mark.parametrize("target, order, expected", [
    ("key", "ascend", ["a", "b", "c"]),
    ("key", "descend", ["c", "b", "a"]),
    ("create", "ascend", ["c", "a", "b"]),
    ("create", "descend", ["b", "a", "c"]),
    ("mod", "descend", ["b", "a", "c"]),
    ("value", "ascend", ["c", "b", "a"]),
    ("version", "descend", ["b", "a", "c"]),
])
def test_sort_options(sorted_keys: etcd3.Etcd3Client, target: str, order: str,
                      expected: list) -> None:
    keys = [m.key.decode()[-1] for _, m in
            sorted_keys.get_prefix("/s/", sort_target=target, sort_order=order)]
    if target == "version":
        assert keys[0] == "b"
    else:
        assert keys == expected


def test_limit_count_keys_only(sorted_keys: etcd3.Etcd3Client) -> None:
    response = sorted_keys.get_prefix_response("/s/", limit=2)
    assert len(response.kvs) == 2 and response.more and response.count == 3
    response = sorted_keys.get_prefix_response("/s/", count_only=True)
    assert response.count == 3 and len(response.kvs) == 0
    pairs = list(sorted_keys.get_prefix("/s/", keys_only=True))
    assert [v for v, _ in pairs] == [b"", b"", b""]
    assert [m.key for _, m in pairs] == [b"/s/a", b"/s/b", b"/s/c"]


def test_revision_filters(sorted_keys: etcd3.Etcd3Client) -> None:
    metas = {m.key: m for _, m in sorted_keys.get_prefix("/s/")}
    a = metas[b"/s/a"]
    got = [m.key for _, m in sorted_keys.get_prefix("/s/", min_create_revision=a.create_revision)]
    assert got == [b"/s/a", b"/s/b"]
    got = [m.key for _, m in sorted_keys.get_prefix("/s/", max_create_revision=a.create_revision)]
    assert got == [b"/s/a", b"/s/c"]
    b_mod = metas[b"/s/b"].mod_revision
    got = [m.key for _, m in sorted_keys.get_prefix("/s/", min_mod_revision=b_mod)]
    assert got == [b"/s/b"]
    got = [m.key for _, m in sorted_keys.get_prefix("/s/", max_mod_revision=b_mod - 1)]
    assert got == [b"/s/a", b"/s/c"]


def test_serializable_read(sorted_keys: etcd3.Etcd3Client) -> None:
    value, meta = sorted_keys.get("/s/a", serializable=True)
    assert value == b"3" and meta.key == b"/s/a"


def test_read_at_revision_and_compaction(etcd_client: etcd3.Etcd3Client) -> None:
    first = etcd_client.put("/rev/k", "v1").header.revision
    etcd_client.put("/rev/k", "v2")
    assert etcd_client.get("/rev/k", revision=first)[0] == b"v1"
    assert etcd_client.get("/rev/k")[0] == b"v2"
    latest = etcd_client.put("/rev/k", "v3").header.revision
    etcd_client.compact(latest, physical=True)
    with pytest.raises(exceptions.RevisionCompactedError) as info:
        etcd_client.get("/rev/k", revision=first)
    assert "compacted" in str(info.value)
    with pytest.raises(exceptions.FutureRevisionError):
        etcd_client.get("/rev/k", revision=latest + 1000)
    with pytest.raises(exceptions.RevisionCompactedError):
        etcd_client.compact(first)


def test_bad_sort_options_fail_fast(etcd_client: etcd3.Etcd3Client) -> None:
    with pytest.raises(ValueError, match="sort_order"):
        etcd_client.get_prefix("/x", sort_order="sideways")
    with pytest.raises(ValueError, match="sort_target"):
        etcd_client.get_prefix("/x", sort_target="colour")
    with pytest.raises(TypeError):
        etcd_client.get("/x", limit="ten")


def test_lease_attached_to_put(etcd_client: etcd3.Etcd3Client) -> None:
    lease = etcd_client.lease(30)
    etcd_client.put("/lease/k", "v", lease=lease)
    assert etcd_client.get("/lease/k")[1].lease_id == lease.id
    etcd_client.put("/lease/k2", "v", lease=lease.id)
    assert sorted(lease.keys) == [b"/lease/k", b"/lease/k2"]
    lease.revoke()
    assert etcd_client.get("/lease/k") == (None, None)


def test_context_manager_closes(etcd_server, connect) -> None:
    with connect(host=etcd_server.host, port=etcd_server.port) as client:
        client.put("/ctx", "v")
    assert client.closed
    with pytest.raises(exceptions.ClientClosedError):
        client.get("/ctx")
