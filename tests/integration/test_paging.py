"""Paged reads (iter_prefix / iter_range / get_prefix(page_size=...)) on a real etcd."""

from __future__ import annotations

from typing import Any, List, Tuple

import pytest

import etcd3
from etcd3 import exceptions

pytestmark = pytest.mark.drivers("threaded", "aio")


def _pairs(results: Any) -> List[Tuple[bytes, bytes]]:
    return [(meta.key, value) for value, meta in results]


@pytest.fixture
def loaded(etcd_client: etcd3.Etcd3Client) -> etcd3.Etcd3Client:
    etcd_client.put_many((f"/pg/{i:05d}", f"v{i}") for i in range(3_000))
    etcd_client.put_many([("/pf", "before"), ("/pg", "exact"), ("/ph", "after")])
    return etcd_client


@pytest.mark.parametrize("page_size", [1, 7, 1000, 2999, 3000, 3001, 100_000])
def test_pages_equal_one_big_range(loaded: etcd3.Etcd3Client, page_size: int) -> None:
    prefix = "/pg/00" if page_size == 1 else "/pg/"  # page size 1: 1,000 requests
    whole = _pairs(loaded.get_prefix(prefix))
    assert len(whole) == (1_000 if page_size == 1 else 3_000)
    assert _pairs(loaded.iter_prefix(prefix, page_size=page_size)) == whole
    assert _pairs(loaded.get_prefix(prefix, page_size=page_size)) == whole


@pytest.mark.drivers("threaded")  # patches the threaded client's _range
def test_each_request_fetches_one_page(loaded: etcd3.Etcd3Client,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: List[int] = []
    real_range = loaded._range

    def counting_range(*args: Any, **kwargs: Any) -> Any:
        response = real_range(*args, **kwargs)
        sizes.append(len(response.kvs))
        return response

    monkeypatch.setattr(loaded, "_range", counting_range)
    pages = loaded.iter_prefix("/pg/", page_size=400)
    next(pages)
    assert sizes == [400]  # lazy: nothing beyond the first page yet
    assert sum(1 for _ in pages) == 2_999
    assert sizes == [400] * 7 + [200]


def test_all_pages_at_the_first_pages_revision(loaded: etcd3.Etcd3Client) -> None:
    snapshot = _pairs(loaded.get_prefix("/pg/"))
    pages = loaded.iter_prefix("/pg/", page_size=250)
    got = [next(pages) for _ in range(10)]
    # concurrent writes ahead of and behind the cursor
    loaded.put("/pg/00001", "changed")
    loaded.put("/pg/02999", "changed")
    loaded.put("/pg/01500x", "inserted")
    loaded.delete("/pg/02000")
    got.extend(pages)
    assert _pairs(got) == snapshot
    assert loaded.get("/pg/02999")[0] == b"changed"


def test_compaction_mid_iteration_raises(loaded: etcd3.Etcd3Client) -> None:
    pages = loaded.iter_prefix("/pg/", page_size=1000)
    next(pages)
    revision = loaded.put("/pg/new", "v").header.revision
    loaded.compact(revision)
    with pytest.raises(exceptions.RevisionCompactedError):
        list(pages)


def test_iter_range_and_options(loaded: etcd3.Etcd3Client) -> None:
    whole = _pairs(loaded.get_range("/pg/00100", "/pg/00900"))
    assert _pairs(loaded.iter_range("/pg/00100", "/pg/00900", page_size=64)) == whole
    keys_only = list(loaded.iter_prefix("/pg/", page_size=500, keys_only=True))
    assert {value for value, _ in keys_only} == {b""} and len(keys_only) == 3_000
    cut = loaded.get("/pg/01000")[1].mod_revision
    filtered = _pairs(loaded.get_prefix("/pg/", min_mod_revision=cut))
    assert 0 < len(filtered) < 3_000
    assert _pairs(loaded.iter_prefix("/pg/", page_size=100, min_mod_revision=cut)) == filtered
    assert _pairs(loaded.iter_prefix("", page_size=1000)) == _pairs(loaded.get_all())


def test_empty_prefix_and_bad_options(etcd_client: etcd3.Etcd3Client) -> None:
    assert list(etcd_client.iter_prefix("/nothing/", page_size=10)) == []
    for bad in ({"sort_order": "descend"}, {"sort_target": "mod"}, {"limit": 5},
                {"count_only": True}):
        with pytest.raises(ValueError):
            etcd_client.iter_prefix("/x", page_size=10, **bad)
    with pytest.raises(ValueError):
        etcd_client.iter_prefix("/x", page_size=0)
