"""The recorder's bookkeeping, without a server: duration buckets, the snapshot's
shape, bulk progress deltas, and which client arguments turn recording on."""

from __future__ import annotations

import threading

import pytest

import etcd3.observability as observability
from etcd3 import _progress
from etcd3._core.stats import DURATION_BUCKETS, Stats


def test_a_call_lands_in_the_first_bucket_that_holds_it() -> None:
    stats = Stats(threading.Lock())
    stats.call("etcdserverpb.KV", "Range", "OK", 0.0004)
    stats.call("etcdserverpb.KV", "Range", "OK", 0.001)  # on a bound: that bucket
    stats.call("etcdserverpb.KV", "Range", "UNAVAILABLE", 30.0)
    calls = stats.snapshot()["calls"]["etcdserverpb.KV/Range"]
    assert calls["count"] == 3 and calls["errors"] == 1
    assert calls["seconds_max"] == 30.0
    assert calls["seconds_sum"] == pytest.approx(30.0014)
    assert calls["buckets"]["0.0005"] == 1 and calls["buckets"]["0.001"] == 1
    assert calls["buckets"]["+Inf"] == 1
    assert len(calls["buckets"]) == len(DURATION_BUCKETS) + 1
    assert stats.snapshot()["errors"] == {"UNAVAILABLE": 1}


def test_a_snapshot_is_plain_data_and_a_copy() -> None:
    stats = Stats(threading.Lock())
    stats.retry("UNAVAILABLE")
    stats.ejected("a:2379")
    stats.batch("write", 5)
    stats.batch("write", 1)
    snapshot = stats.snapshot()
    stats.retry("UNAVAILABLE")
    assert snapshot["retries"] == {"UNAVAILABLE": 1}
    assert snapshot["endpoints"] == {"ejections": {"a:2379": 1}, "readmissions": {}}
    assert snapshot["batches"]["write"] == {"batches": 2, "items": 6, "max": 5}
    assert snapshot["watch"]["watchers"] == 0


def test_bulk_progress_is_counted_by_difference_and_still_reported() -> None:
    stats = Stats(threading.Lock())
    seen = []
    report, finish = _progress.progress_reporter(seen.append, "put_many", [], stats)
    for done in (128, 256, 256, 300):
        report(done)
    finish()
    assert seen == [128, 256, 256, 300]
    assert stats.snapshot()["bulk"] == {"put_many": 300}


def test_which_arguments_make_a_recorder() -> None:
    assert observability.recorder_for(None, None, None, False) is None
    assert observability.recorder_for(False, None, None, False) is None
    assert isinstance(observability.recorder_for(True, None, None, False),
                      observability.Recorder)
    observability.enable(metrics=True)
    try:
        assert observability.recorder_for(None, None, None, False) is not None
        assert observability.recorder_for(False, None, None, False) is None
    finally:
        observability.disable()
    assert observability.recorder_for(None, None, None, False) is None


def test_every_instrument_is_named_and_documented() -> None:
    names = [name for name, *_ in observability.INSTRUMENTS]
    assert len(names) == len(set(names))
    assert names[0] == "rpc.client.duration"
    assert all(name.startswith("etcd3.") for name in names[1:])
    for _, kind, unit, description in observability.INSTRUMENTS:
        assert kind in ("histogram", "counter", "gauge") and unit and description


def test_trace_propagation_puts_the_calls_span_in_its_metadata() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    from etcd3._core.deadline import NEVER
    from etcd3._grpc import rpc
    from etcd3._grpc.call_rules import Attempts, routed_metadata

    spans = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(spans))
    for propagate in (False, True):
        recorder = observability.Recorder(tracer_provider=tracers,
                                          trace_propagation=propagate)
        ctx = Attempts(rpc.RANGE, b"", NEVER, "")
        recorder.call_started(ctx, current=False)
        metadata = dict(routed_metadata(rpc.RANGE, (("token", "t"),), ctx.carried) or ())
        recorder.call_ended(ctx, "OK")
        span = spans.get_finished_spans()[-1]
        assert metadata["token"] == "t" and metadata["hasleader"] == "true"
        if propagate:
            trace_id = format(span.context.trace_id, "032x")
            span_id = format(span.context.span_id, "016x")
            version, traced, parent, flags = metadata["traceparent"].split("-")
            assert (version, traced, parent) == ("00", trace_id, span_id)
            assert int(flags, 16) & 1  # sampled
        else:
            assert "traceparent" not in metadata
    tracers.shutdown()
