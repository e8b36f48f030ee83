"""Metrics and traces of a client: ``client.stats()``, and OpenTelemetry when asked.

A client made with ``metrics=True`` (or ``meter_provider=`` / ``tracer_provider=``, or
after :func:`enable`) gets a :class:`Recorder`: the drivers call it once per event
(see :class:`etcd3._core.stats.Stats`) and ``client.stats()`` returns its counters
as a plain dict. A client without it has no recorder at all: each hook is one
``is None`` test.

With a meter provider (``meter_provider=``, or ``metrics=True`` once the
``opentelemetry-api`` package is installed: its global provider) the same counters
are OpenTelemetry instruments (see :data:`INSTRUMENTS` and the observability guide);
with a tracer provider each unary call is a span. ``opentelemetry`` is imported
only then, never by ``import etcd3``.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ._core import retry_rules as _rules
from ._core.stats import DURATION_BUCKETS, Stats
from ._sync import forksafe as _forksafe

#: The OpenTelemetry instruments a recorder with a meter provider creates: name,
#: kind, unit and what it counts (also in docs/guides/observability.rst).
INSTRUMENTS: Tuple[Tuple[str, str, str, str], ...] = (
    ("rpc.client.duration", "histogram", "s",
     "unary calls, retries included; rpc.system, rpc.service, rpc.method, "
     "rpc.grpc.status_code"),
    ("etcd3.client.retries", "counter", "{retry}",
     "attempts repeated after a failure; etcd3.retry.reason"),
    ("etcd3.endpoint.ejections", "counter", "{ejection}",
     "endpoints left aside after a failure; server.address"),
    ("etcd3.endpoint.readmissions", "counter", "{readmission}",
     "ejected endpoints taking calls again; server.address"),
    ("etcd3.auth.token_refreshes", "counter", "{refresh}",
     "auth tokens replaced after a server refused them; server.address"),
    ("etcd3.watch.resumes", "counter", "{watch}",
     "server watches re-created on a new stream where they left off"),
    ("etcd3.watch.watchers", "gauge", "{watcher}", "live watch subscribers"),
    ("etcd3.watch.lag", "gauge", "{revision}",
     "revisions the slowest subscriber is behind what its watch received"),
    ("etcd3.watch.queue_depth", "gauge", "{response}",
     "responses waiting for the slowest subscriber"),
    ("etcd3.watch.queue_fill", "gauge", "1",
     "the fullest subscriber's queue depth over its max_queue"),
    ("etcd3.keepalive.failures", "counter", "{failure}",
     "keepalive streams that broke or could not be opened"),
    ("etcd3.lease.lost", "counter", "{lease}", "kept-alive leases that expired"),
    ("etcd3.batch.calls", "counter", "{call}",
     "calls sent by the read/write batchers; etcd3.batch.kind"),
    ("etcd3.batch.requests", "counter", "{request}",
     "requests those calls carried; etcd3.batch.kind"),
    ("etcd3.bulk.items", "counter", "{item}",
     "items written by put_many / delete_many; etcd3.bulk.operation"),
)

_SCOPE = "etcd3"
#: The calls of the read batcher: a Txn of several reads, or one Range.
_BATCH_PATHS = ("/etcdserverpb.KV/Txn", "/etcdserverpb.KV/Range")
#: Call durations handed to the SDK together (see :meth:`Recorder.flush`).
_FLUSH_EVERY = 64
_GLOBAL: Dict[str, Any] = {}


def enable(*, metrics: bool = True, meter_provider: Any = None,
           tracer_provider: Any = None, trace_propagation: bool = False) -> None:
    """Turn metrics (and traces) on for every client made from now on that does not
    say otherwise (see :class:`etcd3.Etcd3Client`'s ``metrics`` parameters).

    :raises ImportError: a provider is given but ``opentelemetry-api`` is missing.
    """
    if meter_provider is not None or tracer_provider is not None:
        _otel()
    _GLOBAL.clear()
    _GLOBAL.update(metrics=metrics, meter_provider=meter_provider,
                   tracer_provider=tracer_provider, trace_propagation=trace_propagation)


def disable() -> None:
    """Undo :func:`enable` for clients made from now on."""
    _GLOBAL.clear()


def recorder_for(metrics: Optional[bool], meter_provider: Any, tracer_provider: Any,
                 trace_propagation: bool) -> Optional[Recorder]:
    """The recorder of a new client given its arguments (None: nothing recorded).

    ``metrics=None`` (the default) follows :func:`enable`.
    :raises ImportError: a provider is given but ``opentelemetry-api`` is missing.
    """
    if metrics is None and meter_provider is None and tracer_provider is None:
        if not _GLOBAL.get("metrics") and _GLOBAL.get("tracer_provider") is None:
            return None
        metrics = _GLOBAL.get("metrics", False)
        meter_provider = _GLOBAL.get("meter_provider")
        tracer_provider = _GLOBAL.get("tracer_provider")
        trace_propagation = trace_propagation or bool(_GLOBAL.get("trace_propagation"))
    if metrics is False and meter_provider is None and tracer_provider is None:
        return None
    if meter_provider is None and metrics:
        otel = _otel(required=False)
        if otel is not None:
            meter_provider = otel.metrics.get_meter_provider()
    return Recorder(meter_provider=meter_provider, tracer_provider=tracer_provider,
                    trace_propagation=trace_propagation)


def _otel(required: bool = True) -> Any:
    """The ``opentelemetry`` package (imported now), or None when not installed and
    not ``required``."""
    try:
        import opentelemetry.context
        import opentelemetry.metrics
        import opentelemetry.propagate
        import opentelemetry.trace
    except ImportError:
        if required:
            raise ImportError("OpenTelemetry metrics and traces need the "
                              "opentelemetry-api package: pip install 'etcd3[otel]'"
                              ) from None
        return None
    return opentelemetry


def _status_number(code: str) -> int:
    import grpc

    try:
        return int(grpc.StatusCode[code].value[0])
    except KeyError:
        return int(grpc.StatusCode.UNKNOWN.value[0])


class Recorder(Stats):
    """A client's :class:`~etcd3._core.stats.Stats`, plus the hooks of the unary call
    path (:class:`etcd3._grpc.call_rules.CallRules`) and, when given providers,
    OpenTelemetry instruments and spans."""

    def __init__(self, *, meter_provider: Any = None, tracer_provider: Any = None,
                 trace_propagation: bool = False) -> None:
        super().__init__(threading.Lock())
        _forksafe.register(self)
        self._names: Dict[str, Tuple[str, str]] = {}
        self._attributes: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self._meters: Optional[_Meters] = None
        self._pending: List[Tuple[float, Dict[str, Any]]] = []
        self._tracer: Any = None
        self._propagate = trace_propagation
        self.meter_provider = meter_provider
        if meter_provider is not None:
            self._meters = _meters_of(meter_provider)
            self._meters.recorders.append(self)
        if tracer_provider is not None:
            from . import __version__

            otel = _otel()
            self._tracer = tracer_provider.get_tracer(_SCOPE, __version__)
            self._span_kind = otel.trace.SpanKind.CLIENT
            self._status = otel.trace.Status
            self._error = otel.trace.StatusCode.ERROR
            self._in_context = otel.trace.set_span_in_context
            self._inject = otel.propagate.inject
            self._attach = otel.context.attach
            self._detach = otel.context.detach

    def _after_fork_in_child(self) -> None:
        # A parent thread may have held the lock at the fork: the child's is new.
        self._lock = threading.Lock()

    # -- the unary call path -----------------------------------------------------------

    def _name(self, path: str) -> Tuple[str, str]:
        """(rpc.service, rpc.method) of a gRPC path."""
        names = self._names.get(path)
        if names is None:
            service, _, method = path.lstrip("/").partition("/")
            names = self._names[path] = (service, method)
        return names

    def call_started(self, ctx: Any, current: bool = True) -> None:
        """A unary call (an :class:`~etcd3._grpc.call_rules.Attempts`) starts; with
        ``current`` (a call the caller waits for, ended in the same thread or task)
        its span is the current one until it ends, so spans made meanwhile (say, by
        ``opentelemetry-instrumentation-grpc`` for each attempt) are its children."""
        ctx.started = time.perf_counter()
        if self._tracer is not None:
            service, method = self._name(ctx.method.path)
            span = ctx.span = self._tracer.start_span(
                f"{service}/{method}", kind=self._span_kind,
                attributes={"rpc.system": "grpc", "rpc.service": service,
                            "rpc.method": method})
            context = self._in_context(span)
            if current:
                ctx.scope = self._attach(context)
            if self._propagate:
                carrier: Dict[str, str] = {}
                self._inject(carrier, context=context)
                ctx.carried = tuple(carrier.items())

    def call_ended(self, ctx: Any, code: str, error: Optional[BaseException] = None
                   ) -> None:
        """The call ``ctx`` ended: ``code`` is ``"OK"`` or the gRPC status name.
        A call already ended (its final error is on its way out) is left alone."""
        started = ctx.started
        if not started:
            return
        ctx.started = 0.0
        seconds = time.perf_counter() - started
        self._ended(ctx.method.path, code, seconds)
        span = ctx.span
        if span is not None:
            ctx.span = None
            if ctx.scope is not None:
                self._detach(ctx.scope)
                ctx.scope = None
            state = ctx.state
            span.set_attribute("etcd3.attempts", ctx.history.attempts + (code == "OK"))
            if state is not None:
                span.set_attribute("server.address", state.name)
            span.set_attribute("rpc.grpc.status_code", _status_number(code))
            if code != "OK":
                span.set_status(self._status(self._error, str(error or code)))
            span.end()

    def future_done(self, ctx: Any, future: Any) -> None:
        """The future of the call ``ctx`` is settled: end the call, unless the
        transport ended it already (a success, or its final error)."""
        if not ctx.started:
            return
        error = None if future.cancelled() else future.exception()
        code = "CANCELLED" if future.cancelled() else ("UNKNOWN" if error else "OK")
        self.call_ended(ctx, code, error)

    def _ended(self, path: str, code: str, seconds: float) -> None:
        """A call of ``path`` ended with ``code`` after ``seconds``: count it, and
        queue its ``rpc.client.duration`` point."""
        service, method = self._name(path)
        self.call(service, method, code, seconds)
        if self._meters is not None:
            attributes = self._attributes.get((path, code))
            if attributes is None:
                attributes = self._attributes[(path, code)] = {
                    "rpc.system": "grpc", "rpc.service": service, "rpc.method": method,
                    "rpc.grpc.status_code": _status_number(code)}
            with self._lock:
                pending = self._pending
                pending.append((seconds, attributes))
                full = len(pending) >= _FLUSH_EVERY
                if full:
                    self._pending = []
            if full:
                self._record(pending)

    def read_batch_answered(self, size: int, seconds: float) -> None:
        """The read batcher's call carrying ``size`` reads succeeded."""
        self._ended(_BATCH_PATHS[size == 1], "OK", seconds)

    def attempt_failed(self, ctx: Any, failure: _rules.Failure,
                       decision: _rules.Decision) -> None:
        """An attempt of ``ctx`` failed with ``failure``; ``decision`` follows."""
        if isinstance(decision, _rules.Give):
            self.call_ended(ctx, failure.code or "UNKNOWN")
            return
        if failure.token_fetch:
            reason = "TOKEN_FETCH"
        elif isinstance(decision, _rules.Refresh):
            reason = "AUTH_TOKEN"
        else:
            reason = failure.code or "UNKNOWN"
        self.retry(reason)
        span = ctx.span
        if span is not None:
            state = ctx.state
            span.add_event("etcd3.retry", {
                "etcd3.retry.reason": reason,
                "etcd3.attempt": decision.history.attempts,
                "server.address": state.name if state is not None else ""})

    # -- OpenTelemetry metrics -------------------------------------------------------

    def flush(self) -> None:
        """Hand the call durations not recorded yet to ``rpc.client.duration``.

        Durations go to the SDK in groups of :data:`_FLUSH_EVERY`, and all of them
        whenever the meter provider collects: the SDK's ``record()`` costs several
        times more interleaved with calls than run back to back."""
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            self._record(pending)

    def _record(self, pending: List[Tuple[float, Dict[str, Any]]]) -> None:
        assert self._meters is not None
        record = self._meters.duration.record
        for seconds, attributes in pending:
            record(seconds, attributes)

    def watch_values(self) -> Dict[str, Any]:
        """The watch figures of :meth:`snapshot` (read now)."""
        backlogs = self.watch_backlogs()
        return {
            "watchers": len(backlogs),
            "lag_max": max((lag for lag, _, _ in backlogs), default=0),
            "queue_depth_max": max((depth for _, depth, _ in backlogs), default=0),
            "queue_fill_max": max((depth / limit for _, depth, limit in backlogs
                                   if limit), default=0.0),
        }


class _Meters:
    """The instruments of one meter provider, shared by every client reporting to
    it (an instrument name is registered once per meter): the ``etcd3.*`` ones
    are observable and add up the clients' counters when the provider collects."""

    def __init__(self, provider: Any) -> None:
        from . import __version__

        otel = _otel()
        meter = provider.get_meter(_SCOPE, __version__)
        self.recorders: List[Recorder] = []
        self.duration = meter.create_histogram(
            "rpc.client.duration", unit="s",
            description="Duration of unary etcd calls, retries included",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS))
        self._observation = otel.metrics.Observation
        self._watch: Tuple[float, Dict[str, Any]] = (0.0, {})
        create = {"counter": meter.create_observable_counter,
                  "gauge": meter.create_observable_gauge}
        readers = self._readers()
        for name, kind, unit, description in INSTRUMENTS:
            if name in readers:
                create[kind](name, callbacks=[self._callback(readers[name])], unit=unit,
                             description=description)

    def _callback(self, read: Any) -> Any:
        def callback(_options: Any) -> Iterable[Any]:
            recorders = list(self.recorders)
            for recorder in recorders:
                recorder.flush()
            return [self._observation(value, attributes)
                    for value, attributes in read(recorders)]
        return callback

    def _readers(self) -> Dict[str, Any]:
        def labelled(field: str, attribute: str) -> Any:
            def read(recorders: List[Recorder]) -> Any:
                merged: Dict[str, int] = {}
                for recorder in recorders:
                    with recorder._lock:
                        counts = dict(getattr(recorder, field))
                    for key, value in counts.items():
                        merged[key] = merged.get(key, 0) + value
                return [(value, {attribute: key}) for key, value in merged.items()]
            return read

        def total(field: str) -> Any:
            return lambda recorders: [(sum(getattr(r, field) for r in recorders), {})]

        def batches(field: str) -> Any:
            return lambda recorders: [
                (sum(getattr(r.batches[kind], field) for r in recorders),
                 {"etcd3.batch.kind": kind}) for kind in ("read", "write")]

        def watch(key: str, combine: Any) -> Any:
            return lambda recorders: [(combine(self._watch_values(recorders, key)), {})]

        return {
            "etcd3.client.retries": labelled("retries", "etcd3.retry.reason"),
            "etcd3.endpoint.ejections": labelled("ejections", "server.address"),
            "etcd3.endpoint.readmissions": labelled("readmissions", "server.address"),
            "etcd3.auth.token_refreshes": labelled("token_refreshes", "server.address"),
            "etcd3.watch.resumes": total("watch_resumes"),
            "etcd3.watch.watchers": watch("watchers", sum),
            "etcd3.watch.lag": watch("lag_max", max),
            "etcd3.watch.queue_depth": watch("queue_depth_max", max),
            "etcd3.watch.queue_fill": watch("queue_fill_max", max),
            "etcd3.keepalive.failures": total("keepalive_failures"),
            "etcd3.lease.lost": total("leases_lost"),
            "etcd3.batch.calls": batches("batches"),
            "etcd3.batch.requests": batches("items"),
            "etcd3.bulk.items": labelled("bulk", "etcd3.bulk.operation"),
        }

    def _watch_values(self, recorders: List[Recorder], key: str) -> List[Any]:
        # Every watch gauge of one collection reads the subscribers once.
        now = time.monotonic()
        at, values = self._watch
        if now - at > 0.5:
            values = {"all": [recorder.watch_values() for recorder in recorders]}
            self._watch = (now, values)
        return [found[key] for found in values["all"]] or [0]


_METERS: weakref.WeakKeyDictionary[Any, _Meters] = weakref.WeakKeyDictionary()
_METERS_LOCK = threading.Lock()


def _meters_of(provider: Any) -> _Meters:
    """The shared instruments of ``provider`` (made on first use)."""
    with _METERS_LOCK:
        meters = _METERS.get(provider)
        if meters is None:
            meters = _METERS[provider] = _Meters(provider)
        return meters


__all__ = ["INSTRUMENTS", "Recorder", "disable", "enable", "recorder_for"]
