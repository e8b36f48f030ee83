"""Helpers shared by the watch tests."""

from __future__ import annotations

import threading
from typing import Any, Callable, List

from etcd3.events import Event, WatchResponse


class Collector:
    """A watch callback that records what it receives."""

    def __init__(self) -> None:
        self.items: List[Any] = []
        self.cond = threading.Condition()

    def __call__(self, item: Any) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    @property
    def events(self) -> List[Event]:
        return [e for item in self.items if isinstance(item, WatchResponse)
                for e in item.events]

    def wait_for(self, predicate: Callable[[Collector], bool], timeout: float = 10.0
                 ) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self), timeout), self.items
