"""The client's KV and transaction calls end to end through whichever codec is loaded."""

from __future__ import annotations

from typing import Any

from etcd3 import results


def test_kv_calls_through_the_codec(etcd_client: Any) -> None:
    client = etcd_client
    first = client.put("/codec/a", b"\x00\xff", prev_kv=True)
    assert first.header.revision > 0 and not first.HasField("prev_kv")
    second = client.put("/codec/a", "é", prev_kv=True)
    assert second.prev_kv.value == b"\x00\xff"
    client.put("/codec/b", b"2")
    value, meta = client.get("/codec/a")
    assert value == "é".encode() and isinstance(meta, results.KVMetadata)
    assert (meta.key, meta.version, meta.lease_id) == (b"/codec/a", 2, 0)
    assert meta.mod_revision == second.header.revision
    assert meta.response_header.revision >= second.header.revision
    assert client.get("/codec/missing") == (None, None)
    assert [(v, m.key) for v, m in client.get_prefix("/codec/")] == \
        [("é".encode(), b"/codec/a"), (b"2", b"/codec/b")]
    response = client.get_response("/codec/a")
    assert (response.count, response.more, len(response.kvs)) == (1, False, 1)
    assert response.header.revision == meta.response_header.revision
    limited = client.get_prefix_response("/codec/", limit=1, sort_order="descend")
    assert [kv.key for kv in limited.kvs] == [b"/codec/b"] and limited.more
    assert limited.count == 2
    deleted = client.delete("/codec/b", prev_kv=True, return_response=True)
    assert deleted.deleted == 1 and deleted.prev_kvs[0].value == b"2"
    assert deleted.header.revision > second.header.revision
    assert client.delete("/codec/b") is False


def test_transactions_through_the_codec(etcd_client: Any) -> None:
    client = etcd_client
    t = client.transactions
    client.put("/txn/a", "1")
    succeeded, responses = client.transaction(
        compare=[t.value("/txn/a") == "1", t.version("/txn/a") > 0,
                 t.create("/txn/none") == 0, t.mod("/txn/a") > 0, t.lease("/txn/a") == 0],
        success=[t.put("/txn/b", "2", prev_kv=True), t.get("/txn/a"),
                 t.delete("/txn/a", prev_kv=True),
                 t.txn([t.version("/txn/a") > 0], [t.get("/txn/", range_end="/txn0")], [])],
        failure=[])
    assert succeeded is True
    put, got, delete, nested = responses
    assert put.response_put.header.revision > 0
    assert [(v, m.key) for v, m in got] == [(b"1", b"/txn/a")]
    assert delete.response_delete_range.deleted == 1
    assert delete.response_delete_range.prev_kvs[0].value == b"1"
    inner = nested.response_txn
    assert inner.succeeded
    assert [kv.key for kv in inner.responses[0].response_range.kvs] == [b"/txn/b"]
    failed, responses = client.transaction(
        compare=[t.value("/txn/b") == "nope"], success=[], failure=[t.get("/txn/b")])
    assert failed is False and responses[0][0][0] == b"2"
    assert client.put_if_not_exists("/txn/b", "x") is False
    assert client.replace("/txn/b", "2", "3") is True
