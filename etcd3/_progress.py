"""Progress of a bulk call, for every driver: a callable taking the count done, or a
one-line counter on a terminal."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional, TextIO, Tuple


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


def progress_reporter(progress: Any, what: str, items: Any, recorder: Any = None
                      ) -> Tuple[Callable[[int], None], Callable[[], None]]:
    """(report(count_done), finish()) for a ``progress`` argument: None/False, True
    (a terminal counter on stderr) or a callable taking the count done. A
    ``recorder`` (see :mod:`etcd3.observability`) is told of the items done too."""
    if recorder is not None:
        report, finish = progress_reporter(progress, what, items)
        return _Recorded(recorder, what, report), finish
    if progress is None or progress is False:
        return (lambda done: None), (lambda: None)
    if progress is True:
        total = len(items) if hasattr(items, "__len__") else None
        bar = TerminalProgress(what, total)
        return bar, bar.finish
    if callable(progress):
        return progress, (lambda: None)
    raise TypeError("progress must be a callable taking the count done, True or None")


class _Recorded:
    """A progress report that also tells a recorder how many more items are done."""

    def __init__(self, recorder: Any, what: str, report: Callable[[int], None]) -> None:
        self.recorder = recorder
        self.what = what
        self.report = report
        self.done = 0

    def __call__(self, done: int) -> None:
        if done > self.done:
            self.recorder.bulk_done(self.what, done - self.done)
            self.done = done
        self.report(done)
