"""The accounting under the bulk calls, for every driver: cutting a stream of ops into
transactions (:class:`Chunker`), when the next transaction must wait, and settling
finished ones in input order into an :class:`Outcome` (:class:`Ledger`), which says
which items are known written, which may or may not have been, and which were not
sent. The drivers only send transactions and wait for them: with futures and a
thread (:mod:`etcd3._sync.pipeline`) or with tasks (:mod:`etcd3.aio._bulk_pipeline`).

Transactions complete out of order but are settled in input order, which makes "the
longest committed prefix" well defined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, List, Optional, Set, Tuple

from .. import exceptions as exc

#: Whether a failed request may have been applied (the driver's rule: it reads the
#: gRPC cause; see :func:`etcd3._grpc.error_causes.may_have_applied`).
MayHaveApplied = Callable[[BaseException], bool]


@dataclass
class Chunk:
    """One transaction's worth of consecutive input items."""

    start: int
    keys: List[bytes]
    parts: List[bytes]
    #: The set of keys, for writes: a chunk waits for in-flight ones sharing a key.
    keyset: Optional[Set[bytes]] = None

    @property
    def stop(self) -> int:
        return self.start + len(self.keys)


class InputError(Exception):
    """Reading or encoding input item ``index`` failed with ``error``."""

    def __init__(self, index: int, key: Optional[bytes], error: BaseException) -> None:
        super().__init__(str(error))
        self.index = index
        self.key = key
        self.error = error


def short_key(key: Optional[bytes], limit: int = 80) -> str:
    """A key for an error message, cut to ``limit`` bytes."""
    if key is None:
        return "?"
    return repr(key) if len(key) <= limit else repr(key[:limit]) + f"... ({len(key)} bytes)"


class Chunker:
    """Groups ``(key, encoded op)`` items into chunks of at most ``ops_per_txn`` ops and
    ``max_txn_bytes`` encoded bytes, fed one item at a time.

    With ``unique_keys`` a key already in the current chunk starts a new one (etcd
    rejects two writes to one key in a transaction) and each chunk carries its
    ``keyset``. ``index`` is the number of items taken so far.
    """

    def __init__(self, *, ops_per_txn: int, max_txn_bytes: int, unique_keys: bool) -> None:
        self.ops_per_txn = ops_per_txn
        self.max_txn_bytes = max_txn_bytes
        self.unique_keys = unique_keys
        self.index = 0
        self._start = 0
        self._size = 0
        self._keys: List[bytes] = []
        self._parts: List[bytes] = []
        self._keyset: Optional[Set[bytes]] = set() if unique_keys else None

    def add(self, key: bytes, entry: bytes) -> Optional[Chunk]:
        """Take the next item; returns the chunk it completed (to send now), if any.

        :raises InputError: the item can never fit in a transaction (the items before
            it are still in :meth:`rest`).
        """
        length = len(entry)
        if length > self.max_txn_bytes:
            raise InputError(self.index, key, exc.RequestTooLargeError(
                f"item {self.index} (key {short_key(key)}) is {length} bytes encoded, "
                f"over max_txn_bytes={self.max_txn_bytes}; nothing from this item on "
                "was sent"))
        full = None
        keys = self._keys
        if keys and (len(keys) >= self.ops_per_txn or self._size + length > self.max_txn_bytes
                     or (self._keyset is not None and key in self._keyset)):
            full = self.rest()
            keys = self._keys
        keys.append(key)
        self._parts.append(entry)
        self._size += length
        self.index += 1
        if self._keyset is not None:
            self._keyset.add(key)
        return full

    def rest(self) -> Optional[Chunk]:
        """The chunk being filled (None if empty); the next item starts a new one."""
        if not self._keys:
            return None
        chunk = Chunk(self._start, self._keys, self._parts, self._keyset)
        self._start, self._keys, self._parts, self._size = self.index, [], [], 0
        self._keyset = set() if self.unique_keys else None
        return chunk


def chunks(entries: Iterator[Tuple[bytes, bytes]], *, ops_per_txn: int, max_txn_bytes: int,
           unique_keys: bool) -> Iterator[Chunk]:
    """The chunks of ``entries`` (see :class:`Chunker`). A failure reading an entry, or
    an entry that can never fit, first yields the chunk holding the items before it,
    then raises :class:`InputError`."""
    chunker = Chunker(ops_per_txn=ops_per_txn, max_txn_bytes=max_txn_bytes,
                      unique_keys=unique_keys)
    while True:
        try:
            key, entry = next(entries)
        except StopIteration:
            break
        except Exception as error:
            rest = chunker.rest()
            if rest is not None:
                yield rest
            raise InputError(chunker.index, None, error) from error
        try:
            full = chunker.add(key, entry)
        except InputError:
            rest = chunker.rest()
            if rest is not None:
                yield rest
            raise
        if full is not None:
            yield full
    rest = chunker.rest()
    if rest is not None:
        yield rest


@dataclass
class Outcome:
    """How a pipelined run ended."""

    committed: int = 0
    later_committed: List[Tuple[int, int]] = field(default_factory=list)
    failures: List[Tuple[Chunk, BaseException]] = field(default_factory=list)
    stop_error: Optional[InputError] = None
    callback_error: Optional[BaseException] = None
    sent_until: int = 0

    @property
    def ok(self) -> bool:
        return not (self.failures or self.stop_error or self.callback_error)

    def write_error(self, what: str, may_have_applied: MayHaveApplied) -> exc.BulkWriteError:
        """The :class:`~etcd3.exceptions.BulkWriteError` describing this outcome."""
        failed_keys = [key for chunk, _ in self.failures for key in chunk.keys]
        uncertain = any(may_have_applied(error) for _, error in self.failures)
        cause: BaseException
        if self.failures:
            cause = self.failures[0][1]
        elif self.callback_error is not None:
            cause = self.callback_error
        else:
            assert self.stop_error is not None
            cause = self.stop_error.error
        if (not self.failures and self.callback_error is None
                and isinstance(cause, exc.RequestTooLargeError)):
            key = self.stop_error.key if self.stop_error else None
            error: exc.BulkWriteError = exc.BulkRequestTooLargeError(
                f"{what}: {cause}; items [0, {self.committed}) were written",
                self.committed, [key] if key is not None else [])
            error.__cause__ = cause
            return error
        text = [f"{what} stopped: {type(cause).__name__}: {cause}",
                f"items [0, {self.committed}) were written"]
        if self.later_committed:
            ranges = ", ".join(f"[{a}, {b})" for a, b in self.later_committed)
            text.append(f"so were items {ranges}")
        for first, stop, applied in merge_failed(self.failures, may_have_applied):
            state = "may or may not have been applied" if applied else "were not applied"
            text.append(f"items [{first}, {stop}) {state}")
        if self.stop_error is not None:
            text.append(f"reading item {self.stop_error.index} failed: "
                        f"{type(self.stop_error.error).__name__}: {self.stop_error.error}")
        text.append(f"items from {self.sent_until} on were not sent; resume from "
                    f"items[{self.committed}:]")
        error = exc.BulkWriteError("; ".join(text), self.committed, failed_keys, uncertain,
                                   self.later_committed)
        error.__cause__ = cause
        return error

    def read_error(self) -> Optional[BaseException]:
        """The error a bulk read raises (the first failure's), or None."""
        if self.failures:
            return self.failures[0][1]
        if self.stop_error is not None:
            return self.stop_error.error
        return self.callback_error


def merge_failed(failures: List[Tuple[Chunk, BaseException]],
                 may_have_applied: MayHaveApplied) -> List[Tuple[int, int, bool]]:
    """(start, stop, may have been applied) of failed chunks, adjacent ones merged."""
    merged: List[Tuple[int, int, bool]] = []
    for chunk, error in failures:
        applied = may_have_applied(error)
        if merged and merged[-1][1] == chunk.start and merged[-1][2] == applied:
            merged[-1] = (merged[-1][0], chunk.stop, applied)
        else:
            merged.append((chunk.start, chunk.stop, applied))
    return merged


class Ledger:
    """The bookkeeping of one pipelined run: whether the next chunk must wait, and the
    :class:`Outcome` of the chunks settled (in input order) so far.

    ``on_done(chunk, response)`` runs for each chunk of the committed prefix; its
    first exception stops the run (it becomes ``callback_error``).
    """

    def __init__(self, on_done: Callable[[Chunk, Any], None]) -> None:
        self.outcome = Outcome()
        self._on_done = on_done

    def must_wait(self, chunk: Chunk, in_flight: Iterable[Chunk], count: int,
                  window: int) -> bool:
        """True when the oldest of the ``count`` chunks ``in_flight`` must be settled
        before ``chunk`` is sent: the window is full, the run has failed (nothing more
        is sent, but what is in flight is accounted for), or ``chunk`` writes a key
        an in-flight chunk also writes (writes to a key apply in input order)."""
        if not count:
            return False
        if count >= window or not self.outcome.ok:
            return True
        keys = chunk.keyset
        return keys is not None and any(
            not keys.isdisjoint(other.keyset) for other in in_flight  # type: ignore[arg-type]
        )

    def sent(self, chunk: Chunk) -> None:
        """``chunk`` is on the wire."""
        self.outcome.sent_until = chunk.stop

    def failed(self, chunk: Chunk, error: BaseException) -> None:
        """The oldest chunk in flight failed with ``error``."""
        self.outcome.failures.append((chunk, error))

    def stopped(self, error: InputError) -> None:
        """Reading the input failed: nothing after it is sent."""
        self.outcome.stop_error = error

    def succeeded(self, chunk: Chunk, response: Any) -> None:
        """The oldest chunk in flight was committed and answered ``response``."""
        outcome = self.outcome
        if outcome.failures or outcome.committed != chunk.start:
            outcome.later_committed.append((chunk.start, chunk.stop))
            return
        outcome.committed = chunk.stop
        if outcome.callback_error is None:
            try:
                self._on_done(chunk, response)
            except Exception as error:
                outcome.callback_error = error
