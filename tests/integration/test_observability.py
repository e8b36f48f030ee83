"""OpenTelemetry metrics and traces of a client, read back with the SDK's in-memory
reader and exporter, against real etcd: unary calls as ``rpc.client.duration``
points and spans, a killed member as retry counts, ejections and span events, the
global :func:`etcd3.observability.enable`, and ``opentelemetry-instrumentation-grpc``
spans nesting under the client's."""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import etcd3
import etcd3.observability
from etcd3.retry import Retry
from etcd3.testing import EtcdCluster, EtcdServer

BOUND = 20.0

Points = Dict[str, List[Tuple[Dict[str, Any], Any]]]


class Telemetry:
    """An SDK meter provider and tracer provider kept in memory."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.spans = InMemorySpanExporter()
        self.tracers = TracerProvider()
        self.tracers.add_span_processor(SimpleSpanProcessor(self.spans))

    def points(self) -> Points:
        """Every metric's points now: name -> [(attributes, value or count)]."""
        found: Points = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:
                            value = point.count
                        found.setdefault(metric.name, []).append(
                            (dict(point.attributes), value))
        return found

    def close(self) -> None:
        self.meters.shutdown()
        self.tracers.shutdown()


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    made = Telemetry()
    yield made
    made.close()


def _value(points: Points, name: str, **attributes: Any) -> Any:
    """The value of the point of ``name`` with exactly ``attributes`` (0 if none)."""
    for found, value in points.get(name, ()):
        if found == attributes:
            return value
    return 0


@pytest.mark.drivers("threaded", "aio")
def test_calls_are_rpc_client_duration_points_and_spans(
        etcd_server: EtcdServer, connect: Any, telemetry: Telemetry) -> None:
    client = connect(host=etcd_server.host, port=etcd_server.port,
                     meter_provider=telemetry.meters, tracer_provider=telemetry.tracers)
    parent_tracer = telemetry.tracers.get_tracer("test")
    with parent_tracer.start_as_current_span("request") as parent:
        for i in range(3):
            client.put(f"/otel/{i}", "v")
    assert client.get("/otel/1")[0] == b"v"
    with pytest.raises(etcd3.exceptions.Etcd3Exception):
        client.put("/otel/bad", "v", lease=0x7FFF_FFFF)  # no such lease: NOT_FOUND
    assert client.put_many({f"/otel/bulk/{i}": b"v" for i in range(10)}) == 10

    points = telemetry.points()
    kv = {"rpc.system": "grpc", "rpc.service": "etcdserverpb.KV"}
    assert _value(points, "rpc.client.duration", **kv, **{
        "rpc.method": "Put", "rpc.grpc.status_code": 0}) == 3
    assert _value(points, "rpc.client.duration", **kv, **{
        "rpc.method": "Put", "rpc.grpc.status_code": 5}) == 1
    assert _value(points, "rpc.client.duration", **kv, **{
        "rpc.method": "Range", "rpc.grpc.status_code": 0}) == 1
    assert _value(points, "etcd3.bulk.items", **{"etcd3.bulk.operation": "put_many"}) == 10
    assert _value(points, "etcd3.watch.watchers") == 0
    # Every instrument reports, except those counted per endpoint or reason: no
    # endpoint failed and no call was retried.
    missing = {name for name, *_ in etcd3.observability.INSTRUMENTS} - set(points)
    assert missing == {"etcd3.client.retries", "etcd3.endpoint.ejections",
                       "etcd3.endpoint.readmissions", "etcd3.auth.token_refreshes"}

    spans = telemetry.spans.get_finished_spans()
    puts = [s for s in spans if s.name == "etcdserverpb.KV/Put"]
    assert len(puts) == 4
    under_request = [s for s in puts if s.parent is not None
                     and s.parent.span_id == parent.get_span_context().span_id]
    assert len(under_request) == 3
    failed = [s for s in puts if s.status.status_code is trace.StatusCode.ERROR]
    assert len(failed) == 1 and failed[0].attributes["rpc.grpc.status_code"] == 5
    for span in puts:
        assert span.kind is trace.SpanKind.CLIENT
        assert span.attributes["etcd3.attempts"] == 1
        assert span.attributes["server.address"] == etcd_server.endpoint


@pytest.mark.drivers("threaded", "aio")
def test_a_killed_member_is_counted_and_its_retries_are_span_events(
        etcd_cluster: EtcdCluster, connect: Any, telemetry: Telemetry) -> None:
    client = connect(endpoints=etcd_cluster.endpoints, timeout=10,
                     retry=Retry(attempt_timeout=1.0), meter_provider=telemetry.meters,
                     tracer_provider=telemetry.tracers)
    leader = etcd_cluster.leader()
    victim = next(m for m in etcd_cluster.members if m is not leader)
    name = victim.endpoint
    victim.kill()
    try:
        give_up = time.monotonic() + BOUND
        for _ in range(500):
            client.get("/otel/failover")
            if _value(telemetry.points(), "etcd3.endpoint.ejections",
                      **{"server.address": name}):
                break
            assert time.monotonic() < give_up, f"{name} never ejected"
    finally:
        victim.start()
        etcd_cluster.wait_healthy()
    points = telemetry.points()
    assert _value(points, "etcd3.client.retries",
                  **{"etcd3.retry.reason": "UNAVAILABLE"}) >= 1
    retried = [s for s in telemetry.spans.get_finished_spans()
               if any(e.name == "etcd3.retry" for e in s.events)]
    assert retried, "no span has a retry event"
    span = retried[0]
    event = next(e for e in span.events if e.name == "etcd3.retry")
    assert event.attributes["etcd3.retry.reason"] == "UNAVAILABLE"
    assert event.attributes["server.address"] == name
    assert span.attributes["etcd3.attempts"] >= 2
    assert span.status.status_code is trace.StatusCode.UNSET  # it succeeded elsewhere


def test_enable_turns_metrics_on_for_clients_made_afterwards(
        etcd_server: EtcdServer, telemetry: Telemetry) -> None:
    etcd3.observability.enable(meter_provider=telemetry.meters)
    try:
        with etcd3.client(host=etcd_server.host, port=etcd_server.port) as client:
            client.put("/otel/global", "v")
            assert client.stats()["calls"]["etcdserverpb.KV/Put"]["count"] == 1
            with etcd3.client(host=etcd_server.host, port=etcd_server.port,
                              metrics=False) as opted_out:
                opted_out.put("/otel/global", "v")
                assert opted_out.stats()["enabled"] is False
    finally:
        etcd3.observability.disable()
    with etcd3.client(host=etcd_server.host, port=etcd_server.port) as after:
        after.put("/otel/global", "v")
        assert after.stats()["enabled"] is False
    assert _value(telemetry.points(), "rpc.client.duration", **{
        "rpc.system": "grpc", "rpc.service": "etcdserverpb.KV", "rpc.method": "Put",
        "rpc.grpc.status_code": 0}) == 1


def test_instrumentation_grpc_spans_nest_under_the_clients_spans(
        etcd_server: EtcdServer, telemetry: Telemetry) -> None:
    # opentelemetry-instrumentation-grpc takes the global tracer provider: set once
    # for the session (it cannot be replaced), spans kept in this test's exporter.
    from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient

    global_spans = _global_exporter()
    global_spans.clear()
    instrumentor = GrpcInstrumentorClient()
    instrumentor.instrument()
    try:
        with etcd3.client(host=etcd_server.host, port=etcd_server.port,
                          tracer_provider=trace.get_tracer_provider()) as client:
            client.put("/otel/nested", "v")
    finally:
        instrumentor.uninstrument()
    spans = global_spans.get_finished_spans()
    ours = [s for s in spans if s.instrumentation_scope.name == "etcd3"]
    theirs = [s for s in spans if s.name == "/etcdserverpb.KV/Put"]
    assert [s.name for s in ours] == ["etcdserverpb.KV/Put"]
    assert len(theirs) == 1  # one attempt, one span: nothing counted twice
    assert theirs[0].parent is not None
    assert theirs[0].parent.span_id == ours[0].context.span_id


_GLOBAL_EXPORTER: List[InMemorySpanExporter] = []


def _global_exporter() -> InMemorySpanExporter:
    if not _GLOBAL_EXPORTER:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _GLOBAL_EXPORTER.append(exporter)
    return _GLOBAL_EXPORTER[0]


def test_clients_sharing_a_meter_provider_add_up(etcd_server: EtcdServer,
                                                 telemetry: Telemetry) -> None:
    where = {"host": etcd_server.host, "port": etcd_server.port}
    with etcd3.client(**where, meter_provider=telemetry.meters) as first, \
            etcd3.client(**where, meter_provider=telemetry.meters) as second:
        first.put_many({"/otel/shared/a": b"v", "/otel/shared/b": b"v"})
        second.put_many({"/otel/shared/c": b"v"})
        second.put("/otel/shared/d", "v")
        points = telemetry.points()
    assert _value(points, "etcd3.bulk.items", **{"etcd3.bulk.operation": "put_many"}) == 3
    assert _value(points, "rpc.client.duration", **{
        "rpc.system": "grpc", "rpc.service": "etcdserverpb.KV", "rpc.method": "Put",
        "rpc.grpc.status_code": 0}) == 1
    assert first.stats()["bulk"] == {"put_many": 2}


def test_a_cancelled_call_ends_its_span_and_leaves_no_current_span(
        etcd_server: EtcdServer, telemetry: Telemetry) -> None:
    import asyncio

    import etcd3.aio

    async def body() -> None:
        async with etcd3.aio.client(host=etcd_server.host, port=etcd_server.port,
                                    metrics=True,
                                    tracer_provider=telemetry.tracers) as client:
            await client.put("/otel/cancel", "v")
            task = asyncio.current_task()
            assert task is not None
            etcd_server.pause()  # the get hangs until it is cancelled
            try:
                handle = asyncio.get_running_loop().call_later(0.3, task.cancel)
                with pytest.raises(asyncio.CancelledError):
                    await client.get("/otel/cancel")
                handle.cancel()
                if hasattr(task, "uncancel"):
                    task.uncancel()
            finally:
                etcd_server.resume()
            # The call's span ended with it: it is not left current in this task.
            assert not trace.get_current_span().get_span_context().is_valid
            assert client.stats()["errors"] == {"CANCELLED": 1}

    asyncio.run(body())
    gets = [s for s in telemetry.spans.get_finished_spans()
            if s.name == "etcdserverpb.KV/Range"]
    assert len(gets) == 1
    assert gets[0].status.status_code is trace.StatusCode.ERROR
    assert gets[0].attributes["rpc.grpc.status_code"] == 1  # CANCELLED


def test_calls_made_as_futures_are_spans_too(etcd_server: EtcdServer,
                                            telemetry: Telemetry) -> None:
    # put_many keeps several Txns in flight as futures of the threaded transport.
    with etcd3.client(host=etcd_server.host, port=etcd_server.port,
                      tracer_provider=telemetry.tracers) as client:
        assert client.put_many({f"/otel/futures/{i:03}": b"v" for i in range(300)},
                               ops_per_txn=50) == 300
        txns = client.stats()["calls"]["etcdserverpb.KV/Txn"]["count"]
    spans = [s for s in telemetry.spans.get_finished_spans()
             if s.name == "etcdserverpb.KV/Txn"]
    assert txns == len(spans) == 6
    assert all(s.status.status_code is trace.StatusCode.UNSET for s in spans)
