"""The bulk calls' pure accounting (etcd3._core.bulk_plan), shared by both drivers:
chunking, when a transaction waits, and what a BulkWriteError says."""

from __future__ import annotations

from typing import Any, Iterator, List, Tuple

import pytest

from etcd3 import exceptions
from etcd3._core.bulk_plan import Chunk, Chunker, InputError, Ledger, chunks


def entries(*keys: str, size: int = 10) -> Iterator[Tuple[bytes, bytes]]:
    for key in keys:
        yield key.encode(), b"x" * size


def spans(found: List[Chunk]) -> List[Tuple[int, int]]:
    return [(chunk.start, chunk.stop) for chunk in found]


def test_chunks_by_op_count_bytes_and_repeated_keys() -> None:
    by_ops = list(chunks(entries(*"abcdefg"), ops_per_txn=3, max_txn_bytes=1000,
                         unique_keys=True))
    assert spans(by_ops) == [(0, 3), (3, 6), (6, 7)]
    assert by_ops[0].keyset == {b"a", b"b", b"c"}
    by_bytes = list(chunks(entries(*"abcde", size=40), ops_per_txn=100, max_txn_bytes=100,
                           unique_keys=False))
    assert spans(by_bytes) == [(0, 2), (2, 4), (4, 5)] and by_bytes[0].keyset is None
    repeated = list(chunks(entries("a", "b", "a", "c", "a"), ops_per_txn=100,
                           max_txn_bytes=1000, unique_keys=True))
    assert spans(repeated) == [(0, 2), (2, 4), (4, 5)]
    # Reads may repeat a key in one transaction.
    assert spans(list(chunks(entries("a", "a"), ops_per_txn=100, max_txn_bytes=1000,
                             unique_keys=False))) == [(0, 2)]


def test_a_bad_item_ends_the_chunks_after_the_ones_before_it() -> None:
    def broken() -> Iterator[Tuple[bytes, bytes]]:
        yield from entries("a", "b", "c")
        raise TypeError("item 3 is not a pair")

    found: List[Chunk] = []
    with pytest.raises(InputError) as caught:
        for chunk in chunks(broken(), ops_per_txn=2, max_txn_bytes=1000, unique_keys=True):
            found.append(chunk)
    assert spans(found) == [(0, 2), (2, 3)]
    assert caught.value.index == 3 and isinstance(caught.value.error, TypeError)

    chunker = Chunker(ops_per_txn=10, max_txn_bytes=50, unique_keys=True)
    assert chunker.add(b"a", b"x" * 10) is None
    with pytest.raises(InputError) as too_big:
        chunker.add(b"huge", b"x" * 51)
    assert too_big.value.key == b"huge" and too_big.value.index == 1
    assert isinstance(too_big.value.error, exceptions.RequestTooLargeError)
    rest = chunker.rest()
    assert rest is not None and spans([rest]) == [(0, 1)]
    assert chunker.rest() is None


def chunk(start: int, *keys: str) -> Chunk:
    encoded = [k.encode() for k in keys]
    return Chunk(start, encoded, [b""] * len(keys), set(encoded))


def never_applied(error: BaseException) -> bool:
    return False


def maybe_applied(error: BaseException) -> bool:
    return True


def test_a_chunk_waits_for_a_full_window_a_failure_or_a_shared_key() -> None:
    ledger = Ledger(lambda c, r: None)
    first, second = chunk(0, "a", "b"), chunk(2, "c")
    assert not ledger.must_wait(second, [], 0, window=2)
    assert not ledger.must_wait(second, [first], 1, window=2)
    assert ledger.must_wait(second, [first, first], 2, window=2)
    assert ledger.must_wait(chunk(2, "b"), [first], 1, window=4)
    ledger.failed(first, exceptions.Etcd3Exception("boom"))
    assert ledger.must_wait(second, [first], 1, window=4)


def test_outcome_names_what_was_written_what_may_have_been_and_what_was_not_sent() -> None:
    done: List[Any] = []
    ledger = Ledger(lambda c, r: done.append((c.start, r)))
    chunks_sent = [chunk(0, "a", "b"), chunk(2, "c", "d"), chunk(4, "e"), chunk(5, "f")]
    for sent in chunks_sent:
        ledger.sent(sent)
    ledger.succeeded(chunks_sent[0], "r0")
    ledger.failed(chunks_sent[1], exceptions.ConnectionTimeoutError("timed out"))
    ledger.succeeded(chunks_sent[2], "r2")
    ledger.failed(chunks_sent[3], exceptions.NoSpaceError("full"))
    outcome = ledger.outcome
    assert done == [(0, "r0")] and not outcome.ok
    assert (outcome.committed, outcome.later_committed, outcome.sent_until) == (2, [(4, 5)], 6)

    error = outcome.write_error("put_many",
                                lambda e: not isinstance(e, exceptions.NoSpaceError))
    assert isinstance(error, exceptions.BulkWriteError)
    assert (error.committed, error.later_committed, error.uncertain) == (2, [(4, 5)], True)
    assert error.failed_keys == [b"c", b"d", b"f"]
    assert isinstance(error.__cause__, exceptions.ConnectionTimeoutError)
    text = str(error)
    assert "items [0, 2) were written" in text and "so were items [4, 5)" in text
    assert "items [2, 4) may or may not have been applied" in text
    assert "items [5, 6) were not applied" in text
    assert "items from 6 on were not sent; resume from items[2:]" in text
    assert not outcome.write_error("put_many", never_applied).uncertain
    assert outcome.read_error() is outcome.failures[0][1]


def test_an_oversize_item_alone_is_a_bulk_request_too_large_error() -> None:
    ledger = Ledger(lambda c, r: None)
    ledger.sent(chunk(0, "a"))
    ledger.succeeded(chunk(0, "a"), None)
    ledger.stopped(InputError(1, b"huge", exceptions.RequestTooLargeError("too big")))
    error = ledger.outcome.write_error("put_many", maybe_applied)
    assert isinstance(error, exceptions.BulkRequestTooLargeError)
    assert (error.committed, error.failed_keys) == (1, [b"huge"])


def test_a_failing_callback_stops_the_run_and_is_the_cause() -> None:
    def on_done(c: Chunk, response: Any) -> None:
        raise ValueError("callback broke")

    ledger = Ledger(on_done)
    ledger.sent(chunk(0, "a"))
    ledger.succeeded(chunk(0, "a"), None)
    assert ledger.outcome.committed == 1 and not ledger.outcome.ok
    error = ledger.outcome.write_error("put_many", maybe_applied)
    assert isinstance(error.__cause__, ValueError) and not error.uncertain
