"""Bulk-load keys with ``put_many``: a progress bar, then resuming after a failure.

``put_many`` streams any iterable (here a generator, so memory stays flat) as
transactions of up to 128 puts, several in flight at once. When it stops part-way it
raises :class:`etcd3.exceptions.BulkWriteError`, whose ``committed`` says how many
items (in input order) were written: the load resumes from there, nothing written
twice, nothing skipped.

The first run injects a failure (the data source "breaks" at 60 %); the second run
resumes from ``error.committed``. Run:  python examples/bulk_loader.py [--keys N]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from typing import Iterator, List, Optional, Tuple

from _support import etcd_endpoints

import etcd3
from etcd3.exceptions import BulkWriteError

PREFIX = "/bulk/users/"


def records(count: int, fail_at: Optional[int] = None) -> Iterator[Tuple[str, str]]:
    """``count`` (key, value) pairs, generated lazily; raises at item ``fail_at``."""
    for index in range(count):
        if index == fail_at:
            raise OSError(f"data source connection dropped at record {index}")
        yield f"{PREFIX}{index:08d}", f'{{"id": {index}, "name": "user {index}"}}'


class ProgressBar:
    """A ``progress=`` callable for put_many: redrawn in place on a terminal, one line
    per 10 % otherwise (logs, CI)."""

    def __init__(self, total: int, start: int = 0, width: int = 40) -> None:
        self.total, self.start, self.width = total, start, width
        self.tty = sys.stdout.isatty()
        self.next_line = 100 * start // total // 10 * 10 + 10
        self.began = time.monotonic()

    def __call__(self, done: int) -> None:
        written = self.start + done
        percent = 100 * written // self.total
        if not self.tty and percent < self.next_line:
            return
        filled = self.width * written // self.total
        rate = done / max(time.monotonic() - self.began, 1e-9)
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {percent:3d}% "
                f"{written}/{self.total} keys, {rate:,.0f} keys/s")
        if self.tty:
            print("\r" + line, end="", flush=True)
        else:
            print(line, flush=True)
            self.next_line = percent // 10 * 10 + 10

    def finish(self) -> None:
        if self.tty:
            print()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000, help="keys to load")
    args = parser.parse_args(argv)
    total = args.keys
    fail_at = total * 6 // 10

    with etcd_endpoints() as endpoints, etcd3.client(endpoints=endpoints,
                                                     timeout=30) as etcd:
        etcd.delete_prefix(PREFIX)
        began = time.monotonic()

        print(f"loading {total} keys (the source fails at record {fail_at})...")
        bar = ProgressBar(total)
        try:
            etcd.put_many(records(total, fail_at=fail_at), progress=bar)
        except BulkWriteError as error:
            bar.finish()
            print(f"put_many stopped: {error.__cause__!r}")
            print(f"committed: {error.committed} items; uncertain: {error.uncertain}")
            resume_from = error.committed
        else:
            raise AssertionError("the injected failure did not happen")

        print(f"resuming from item {resume_from}...")
        bar = ProgressBar(total, start=resume_from)
        rest = itertools.islice(records(total), resume_from, None)
        written = etcd.put_many(rest, progress=bar)
        bar.finish()

        loaded = etcd.get_prefix_response(PREFIX, count_only=True).count
        elapsed = time.monotonic() - began
        print(f"resumed run wrote {written} keys; {loaded} of {total} keys in etcd "
              f"({elapsed:.1f} s in all)")
        first, last = etcd.get(f"{PREFIX}{0:08d}")[0], etcd.get(f"{PREFIX}{total - 1:08d}")[0]
        print("first:", first.decode(), " last:", last.decode())
        etcd.delete_prefix(PREFIX)
        if loaded != total:
            print("MISSING KEYS")
            return 1
        print(f"bulk load complete: {loaded} keys")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
