"""Transactions: every compare target and operator, nested txns, failure branch."""

from __future__ import annotations

import pytest

import etcd3
from etcd3 import exceptions

pytestmark = pytest.mark.drivers("threaded", "aio")


@pytest.fixture
def txn_client(etcd_client: etcd3.Etcd3Client) -> etcd3.Etcd3Client:
    etcd_client.put("/t/key", "value")
    return etcd_client


def _holds(client: etcd3.Etcd3Client, compare) -> bool:
    succeeded, _ = client.transaction(compare=[compare], success=[], failure=[])
    return succeeded


def test_value_compares(txn_client: etcd3.Etcd3Client) -> None:
    t = txn_client.transactions
    assert _holds(txn_client, t.value("/t/key") == "value")
    assert not _holds(txn_client, t.value("/t/key") == "other")
    assert _holds(txn_client, t.value("/t/key") != "other")
    assert _holds(txn_client, t.value("/t/key") < "zzz")
    assert _holds(txn_client, t.value("/t/key") > "aaa")
    assert _holds(txn_client, t.value("/t/key") == b"value")


def test_version_create_mod_compares(txn_client: etcd3.Etcd3Client) -> None:
    t = txn_client.transactions
    _, meta = txn_client.get("/t/key")
    assert _holds(txn_client, t.version("/t/key") == 1)
    assert _holds(txn_client, t.version("/t/key") > 0)
    assert _holds(txn_client, t.version("/t/missing") == 0)
    assert _holds(txn_client, t.create("/t/key") == meta.create_revision)
    assert _holds(txn_client, t.create("/t/missing") == "0")
    assert _holds(txn_client, t.mod("/t/key") == meta.mod_revision)
    assert _holds(txn_client, t.mod("/t/key") < meta.mod_revision + 1)
    assert not _holds(txn_client, t.mod("/t/key") > meta.mod_revision)


def test_lease_compare(txn_client: etcd3.Etcd3Client) -> None:
    t = txn_client.transactions
    lease = txn_client.lease(30)
    txn_client.put("/t/leased", "v", lease=lease)
    assert _holds(txn_client, t.lease("/t/leased") == lease.id)
    assert _holds(txn_client, t.lease("/t/leased") == lease)
    assert _holds(txn_client, t.lease("/t/key") == 0)
    lease.revoke()


def test_range_compare(txn_client: etcd3.Etcd3Client) -> None:
    t = txn_client.transactions
    txn_client.put("/t/key2", "v2")
    assert _holds(txn_client, t.version("/t/", range_end="/t0") > 0)
    assert not _holds(txn_client, t.value("/t/", range_end="/t0") == "value")


def test_success_branch_results(txn_client: etcd3.Etcd3Client) -> None:
    t = txn_client.transactions
    succeeded, responses = txn_client.transaction(
        compare=[t.value("/t/key") == "value", t.version("/t/key") > 0],
        success=[t.put("/t/key", "success"), t.get("/t/key"), t.delete("/t/other")],
        failure=[t.put("/t/key", "failure")],
    )
    assert succeeded is True
    assert responses[0].response_put.header.revision > 0
    assert [(v, m.key) for v, m in responses[1]] == [(b"success", b"/t/key")]
    assert responses[2].response_delete_range.deleted == 0
    assert txn_client.get("/t/key")[0] == b"success"


def test_failure_branch(txn_client: etcd3.Etcd3Client) -> None:
    t = txn_client.transactions
    succeeded, responses = txn_client.transaction(
        compare=[t.value("/t/key") == "nope"],
        success=[t.put("/t/key", "success")],
        failure=[t.put("/t/key", "failure"), t.get("/t/key")],
    )
    assert succeeded is False
    assert responses[1][0][0] == b"failure"


def test_none_branches_mean_no_ops(txn_client: etcd3.Etcd3Client) -> None:
    t = txn_client.transactions
    assert txn_client.transaction(compare=[t.version("/t/key") > 0]) == (True, [])


def test_nested_txn_and_range_get(txn_client: etcd3.Etcd3Client) -> None:
    t = txn_client.transactions
    txn_client.put("/t/key2", "v2")
    succeeded, responses = txn_client.transaction(
        compare=[],
        success=[
            t.txn(compare=[t.value("/t/key") == "value"],
                  success=[t.put("/t/nested", "yes")], failure=[]),
            t.get("/t/", range_end="/t0"),
            t.delete("/t/key2", prev_kv=True),
        ],
    )
    assert succeeded
    assert responses[0].response_txn.succeeded
    # the nested put is visible to later ops of the same txn
    assert [v for v, _ in responses[1]] == [b"value", b"v2", b"yes"]
    assert responses[2].response_delete_range.prev_kvs[0].value == b"v2"
    assert txn_client.get("/t/nested")[0] == b"yes"


def test_too_many_ops(etcd_client: etcd3.Etcd3Client) -> None:
    t = etcd_client.transactions
    ops = [t.put(f"/many/{i}", "v") for i in range(129)]
    with pytest.raises(exceptions.TooManyOpsError):
        etcd_client.transaction(compare=[], success=ops)
    assert etcd_client.get_prefix_response("/many/", count_only=True).count == 0


def test_duplicate_key(etcd_client: etcd3.Etcd3Client) -> None:
    t = etcd_client.transactions
    with pytest.raises(exceptions.DuplicateKeyError):
        etcd_client.transaction(compare=[], success=[t.put("/dup", "1"), t.put("/dup", "2")])


def test_bad_compare_and_ops(etcd_client: etcd3.Etcd3Client) -> None:
    t = etcd_client.transactions
    with pytest.raises(ValueError, match="operator"):
        etcd_client.transaction(compare=[t.value("/k")], success=[])
    with pytest.raises(TypeError):
        etcd_client.transaction(compare=["not a compare"], success=[])
    with pytest.raises(TypeError):
        etcd_client.transaction(compare=[], success=[("put", "k", "v")])
    with pytest.raises(TypeError):
        t.version("/k") == "not a number"  # noqa: B015 - the comparison must raise
    with pytest.raises(TypeError):
        t.value("/k") == 12  # noqa: B015 - the comparison must raise
