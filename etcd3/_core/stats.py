"""The client's own counters, kept in plain Python (no OpenTelemetry needed).

:class:`Stats` receives one call per event from both drivers (a unary call ended, a
retry, an endpoint ejected or re-admitted, a token refreshed, a watch resumed, a
keepalive stream failed, a lease lost, a batch sent, bulk progress) and aggregates
it; :meth:`Stats.snapshot` returns everything as a plain dict (what
``client.stats()`` returns). Watch lag and queue depth are read from the watch cores
when a snapshot is taken, so a consumer that stopped reading still shows.

Nothing here reads a clock or does I/O: durations are handed in. The lock is the
driver's (this module may not import threading): every update holds it briefly.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left
from typing import Any, ContextManager, Dict, Iterable, List, Optional, Protocol, Tuple

#: Upper bounds (seconds) of the call duration buckets in a snapshot; the last
#: bucket (``+Inf``) takes the rest. They match OpenTelemetry's advice for
#: ``rpc.client.duration`` scaled to an etcd call (most take well under 10 ms).
DURATION_BUCKETS: Tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WatchSource(Protocol):
    """What a watch core tells a snapshot: (lag, queue depth, max_queue) per
    subscriber (see :meth:`etcd3._core.watch_core.WatchCore.backlogs`)."""

    def backlogs(self) -> Iterable[Tuple[int, int, Optional[int]]]: ...


class _Calls:
    """Count, failures, total and max seconds, and duration buckets of one method."""

    __slots__ = ("count", "errors", "seconds", "max", "buckets")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.seconds = 0.0
        self.max = 0.0
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)

    def add(self, seconds: float, failed: bool) -> None:
        self.count += 1
        if failed:
            self.errors += 1
        self.seconds += seconds
        if seconds > self.max:
            self.max = seconds
        self.buckets[bisect_left(DURATION_BUCKETS, seconds)] += 1

    def as_dict(self) -> Dict[str, Any]:
        return {"count": self.count, "errors": self.errors,
                "seconds_sum": self.seconds, "seconds_max": self.max,
                "buckets": dict(zip([*map(str, DURATION_BUCKETS), "+Inf"], self.buckets))}


class _Sizes:
    """How many batches went out and how many items they carried."""

    __slots__ = ("batches", "items", "max")

    def __init__(self) -> None:
        self.batches = 0
        self.items = 0
        self.max = 0

    def add(self, size: int) -> None:
        self.batches += 1
        self.items += size
        if size > self.max:
            self.max = size

    def as_dict(self) -> Dict[str, int]:
        return {"batches": self.batches, "items": self.items, "max": self.max}


class Stats:
    """Counters of one client (see the module docstring); ``lock`` guards them."""

    def __init__(self, lock: ContextManager[Any]) -> None:
        self._lock = lock
        self.calls: Dict[Tuple[str, str], _Calls] = {}
        self.errors: Dict[str, int] = {}
        self.retries: Dict[str, int] = {}
        self.ejections: Dict[str, int] = {}
        self.readmissions: Dict[str, int] = {}
        self.token_refreshes: Dict[str, int] = {}
        self.watch_resumes = 0
        self.keepalive_failures = 0
        self.leases_lost = 0
        self.batches: Dict[str, _Sizes] = {"read": _Sizes(), "write": _Sizes()}
        self.bulk: Dict[str, int] = {}
        self._watch_sources: List[weakref.ref[Any]] = []

    # -- events ----------------------------------------------------------------------

    def call(self, service: str, method: str, code: str, seconds: float) -> None:
        """A unary call ended (``code``: the gRPC status name, ``"OK"`` on success)
        after ``seconds``, retries included."""
        with self._lock:
            calls = self.calls.get((service, method))
            if calls is None:
                calls = self.calls[(service, method)] = _Calls()
            failed = code != "OK"
            calls.add(seconds, failed)
            if failed:
                self.errors[code] = self.errors.get(code, 0) + 1

    def read_batch_answered(self, size: int, seconds: float) -> None:
        """The read batcher's call carrying ``size`` reads (one Range, or a Txn of
        several) succeeded in ``seconds``."""
        self.call("etcdserverpb.KV", "Range" if size == 1 else "Txn", "OK", seconds)

    def retry(self, reason: str) -> None:
        """A call is tried again after a failed attempt (``reason``: the gRPC status
        name of the failure, or ``"AUTH_TOKEN"`` / ``"TOKEN_FETCH"``)."""
        with self._lock:
            self.retries[reason] = self.retries.get(reason, 0) + 1

    def ejected(self, endpoint: str) -> None:
        """``endpoint`` was left aside after a failure."""
        with self._lock:
            self.ejections[endpoint] = self.ejections.get(endpoint, 0) + 1

    def readmitted(self, endpoint: str) -> None:
        """``endpoint`` answered again and takes calls again."""
        with self._lock:
            self.readmissions[endpoint] = self.readmissions.get(endpoint, 0) + 1

    def token_refreshed(self, endpoint: str) -> None:
        """A new auth token replaced one ``endpoint`` refused."""
        with self._lock:
            self.token_refreshes[endpoint] = self.token_refreshes.get(endpoint, 0) + 1

    def watches_resumed(self, count: int) -> None:
        """A new watch stream re-created ``count`` server watches where they left off."""
        with self._lock:
            self.watch_resumes += count

    def keepalive_failed(self) -> None:
        """The keepalive stream broke or could not be opened."""
        with self._lock:
            self.keepalive_failures += 1

    def leases_lost_now(self, count: int) -> None:
        """``count`` kept-alive leases are gone (expired or revoked on the server)."""
        with self._lock:
            self.leases_lost += count

    def batch(self, kind: str, size: int) -> None:
        """The ``kind`` (``"read"``/``"write"``) batcher sent ``size`` requests in
        one call."""
        with self._lock:
            self.batches[kind].add(size)

    def bulk_done(self, what: str, count: int) -> None:
        """A bulk call (``"put_many"``, ``"delete_many"``) wrote ``count`` more items."""
        with self._lock:
            self.bulk[what] = self.bulk.get(what, 0) + count

    def watch_source(self, source: WatchSource) -> None:
        """Read ``source``'s subscribers at each snapshot (held weakly)."""
        with self._lock:
            self._watch_sources = [ref for ref in self._watch_sources
                                   if ref() is not None]
            self._watch_sources.append(weakref.ref(source))

    # -- reading ---------------------------------------------------------------------

    def watch_backlogs(self) -> List[Tuple[int, int, Optional[int]]]:
        """(lag, queue depth, max_queue) of every live watch subscriber now."""
        found: List[Tuple[int, int, Optional[int]]] = []
        for ref in list(self._watch_sources):
            source = ref()
            if source is not None:
                found.extend(source.backlogs())
        return found

    def snapshot(self) -> Dict[str, Any]:
        """Every counter as a plain dict (see :meth:`etcd3.Etcd3Client.stats`)."""
        backlogs = self.watch_backlogs()
        with self._lock:
            return {
                "calls": {f"{service}/{method}": calls.as_dict()
                          for (service, method), calls in sorted(self.calls.items())},
                "errors": dict(self.errors),
                "retries": dict(self.retries),
                "endpoints": {"ejections": dict(self.ejections),
                              "readmissions": dict(self.readmissions)},
                "token_refreshes": dict(self.token_refreshes),
                "watch": {
                    "watchers": len(backlogs),
                    "resumes": self.watch_resumes,
                    "lag_max": max((lag for lag, _, _ in backlogs), default=0),
                    "queue_depth_max": max((depth for _, depth, _ in backlogs), default=0),
                    "queue_fill_max": max((depth / limit for _, depth, limit in backlogs
                                           if limit), default=0.0),
                },
                "keepalive": {"failures": self.keepalive_failures,
                              "leases_lost": self.leases_lost},
                "batches": {kind: sizes.as_dict() for kind, sizes in self.batches.items()},
                "bulk": dict(self.bulk),
            }
