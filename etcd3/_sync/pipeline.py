"""The engine under the bulk calls: cut a stream of ops into transactions and keep a
bounded window of them in flight.

Items are pulled lazily, so memory holds at most ``window`` transactions on the wire
plus the one being filled. Transactions complete out of order but are settled in
input order, which makes "the longest committed prefix" well defined.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Deque, Iterable, Iterator, List, Optional, Set, TextIO, Tuple

from .. import exceptions as exc
from .._grpc import errors as _errors
from .._grpc import rpc as _rpc

# Txn with the reply left as wire bytes, for callers that need nothing from it.
TXN_UNDECODED = replace(_rpc.TXN, deserializer=bytes)

# Errors after which etcd certainly did not apply the request.
_REJECTED = (exc.InvalidRequestError, exc.PreconditionFailedError, exc.AuthError,
             exc.NoSpaceError, exc.TooManyRequestsError, exc.LeaseNotFoundError,
             exc.NoLeaderError, exc.RevisionCompactedError)


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


def chunks(entries: Iterator[Tuple[bytes, bytes]], *, ops_per_txn: int, max_txn_bytes: int,
           unique_keys: bool) -> Iterator[Chunk]:
    """Group ``(key, encoded op)`` pairs into chunks of at most ``ops_per_txn`` ops and
    ``max_txn_bytes`` encoded bytes.

    With ``unique_keys`` a key already in the current chunk starts a new one (etcd
    rejects two writes to one key in a transaction) and each chunk carries its
    ``keyset``. A failure reading an entry, or an entry that can never fit, first
    yields the chunk holding the items before it, then raises :class:`InputError`.
    """
    start = index = size = 0
    keys: List[bytes] = []
    parts: List[bytes] = []
    keyset: Optional[Set[bytes]] = set() if unique_keys else None
    while True:
        try:
            key, entry = next(entries)
        except StopIteration:
            break
        except Exception as error:
            if keys:
                yield Chunk(start, keys, parts, keyset)
            raise InputError(index, None, error) from error
        length = len(entry)
        if length > max_txn_bytes:
            if keys:
                yield Chunk(start, keys, parts, keyset)
            raise InputError(index, key, exc.RequestTooLargeError(
                f"item {index} (key {short_key(key)}) is {length} bytes encoded, over "
                f"max_txn_bytes={max_txn_bytes}; nothing from this item on was sent"))
        if keys and (len(keys) >= ops_per_txn or size + length > max_txn_bytes
                     or (keyset is not None and key in keyset)):
            yield Chunk(start, keys, parts, keyset)
            start, keys, parts, size = index, [], [], 0
            keyset = set() if unique_keys else None
        keys.append(key)
        parts.append(entry)
        size += length
        index += 1
        if keyset is not None:
            keyset.add(key)
    if keys:
        yield Chunk(start, keys, parts, keyset)


def may_have_applied(error: BaseException) -> bool:
    """False when etcd certainly did not apply the failed request."""
    if isinstance(error, _REJECTED):
        return False
    cause = error.__cause__
    return not (cause is not None and _errors.is_not_sent(cause))


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

    def write_error(self, what: str) -> exc.BulkWriteError:
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
        for first, stop, applied in _merge_failed(self.failures):
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


def _merge_failed(failures: List[Tuple[Chunk, BaseException]]
                  ) -> List[Tuple[int, int, bool]]:
    """(start, stop, may have been applied) of failed chunks, adjacent ones merged."""
    merged: List[Tuple[int, int, bool]] = []
    for chunk, error in failures:
        applied = may_have_applied(error)
        if merged and merged[-1][1] == chunk.start and merged[-1][2] == applied:
            merged[-1] = (merged[-1][0], chunk.stop, applied)
        else:
            merged.append((chunk.start, chunk.stop, applied))
    return merged


def run(transport: Any, chunk_iter: Iterator[Chunk], encode: Callable[[Chunk], bytes],
        on_done: Callable[[Chunk, Any], None], *, window: int, timeout: Any,
        what: str, first_alone: bool = False, decode: bool = True) -> Outcome:
    """Send every chunk as one Txn, at most ``window`` in flight; settle in input order.

    Transactions in flight together may be applied in any order, so a chunk that
    writes a key an in-flight chunk also writes waits for it: writes to one key are
    applied in input order.
    ``on_done(chunk, response)`` runs (on this thread, in input order) for each chunk
    of the committed prefix. The first failure stops sending; chunks already in flight
    are still waited for, so the outcome accounts for every item sent. With
    ``first_alone`` the first chunk completes before the next is sent. Without
    ``decode``, ``on_done`` gets the reply's wire bytes (nothing in it is needed).
    """
    method = _rpc.TXN if decode else TXN_UNDECODED
    outcome = Outcome()
    pending: Deque[Tuple[Chunk, Any]] = deque()

    def settle() -> None:
        chunk, future = pending.popleft()
        try:
            response = future.result()
        except Exception as error:
            outcome.failures.append((chunk, error))
            return
        if outcome.failures or outcome.committed != chunk.start:
            outcome.later_committed.append((chunk.start, chunk.stop))
            return
        outcome.committed = chunk.stop
        if outcome.callback_error is None:
            try:
                on_done(chunk, response)
            except Exception as error:
                outcome.callback_error = error

    try:
        for chunk in chunk_iter:
            while pending and (len(pending) >= window or not outcome.ok
                               or _overlaps(chunk, pending)):
                settle()
            if not outcome.ok:
                break
            try:
                future = transport.call_future(
                    method, encode(chunk), timeout=timeout,
                    context=f"{what}, items [{chunk.start}, {chunk.stop})")
            except exc.ClientClosedError as error:
                outcome.failures.append((chunk, error))
                break
            pending.append((chunk, future))
            outcome.sent_until = chunk.stop
            if first_alone and chunk.start == 0:
                settle()
    except InputError as error:
        outcome.stop_error = error
    while pending:
        settle()
    return outcome


def _overlaps(chunk: Chunk, pending: Deque[Tuple[Chunk, Any]]) -> bool:
    keys = chunk.keyset
    return keys is not None and any(
        not keys.isdisjoint(other.keyset) for other, _ in pending  # type: ignore[arg-type]
    )


class TerminalProgress:
    """A one-line progress counter on a terminal (nothing when it is not one)."""

    def __init__(self, what: str, total: Optional[int], stream: TextIO = sys.stderr
                 ) -> None:
        self.what = what
        self.total = total
        self.stream = stream
        self.enabled = bool(getattr(stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self.shown = 0.0
        self.done = 0

    def __call__(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if self.enabled and now - self.shown >= 0.1:
            self.shown = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.done / max(now - self.started, 1e-9)
        text = f"{self.done:,}"
        if self.total:
            text += f"/{self.total:,} ({100 * self.done / self.total:.0f}%)"
        self.stream.write(f"\r{self.what}: {text} items, {rate:,.0f}/s ")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()


def progress_reporter(progress: Any, what: str, items: Iterable[Any]
                      ) -> Tuple[Callable[[int], None], Callable[[], None]]:
    """(report(count_done), finish()) for a ``progress`` argument: None/False, True
    (a terminal counter on stderr) or a callable taking the count done."""
    if progress is None or progress is False:
        return (lambda done: None), (lambda: None)
    if progress is True:
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        bar = TerminalProgress(what, total)
        return bar, bar.finish
    if callable(progress):
        return progress, (lambda: None)
    raise TypeError("progress must be a callable taking the count done, True or None")
