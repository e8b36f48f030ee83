"""When a silent watch stream is probed or moved, and when an outage is warned about."""

from __future__ import annotations

from etcd3._core.watch_liveness import PROBE, RECONNECT, Outage, SilenceProbe


def test_silent_stream_is_probed_once_then_moved_when_the_probe_is_unanswered() -> None:
    probe = SilenceProbe(silence=3.0, timeout=3.0)
    probe.attached(100.0)
    assert probe.tick(103.0, streaming=True) is None
    assert probe.tick(103.1, streaming=True) == PROBE
    assert probe.tick(104.0, streaming=True) is None  # one probe at a time
    assert probe.tick(106.2, streaming=True) == RECONNECT
    assert probe.probe_sent == 0.0


def test_an_answer_clears_the_probe() -> None:
    probe = SilenceProbe(silence=3.0, timeout=3.0)
    probe.attached(0.0)
    assert probe.tick(3.5, streaming=True) == PROBE
    probe.last_seen = 4.0
    assert probe.tick(7.0, streaming=True) is None
    assert probe.silent_for(7.5) == 3.5
    assert probe.tick(7.5, streaming=True) == PROBE


def test_no_stream_no_probe() -> None:
    probe = SilenceProbe(silence=3.0, timeout=3.0)
    probe.probe_sent = 5.0
    assert probe.tick(100.0, streaming=False) is None and probe.probe_sent == 0.0


def test_outage_counts_from_its_first_attempt_and_remembers_endpoints() -> None:
    outage = Outage()
    outage.begin(10.0)
    outage.tried_endpoint("a:2379")
    outage.tried_endpoint("b:2379")
    outage.tried_endpoint("a:2379")
    outage.begin(12.0)  # a later attempt of the same outage
    assert outage.since == 10.0 and outage.tried == ["a:2379", "b:2379"]
    assert outage.end() is None  # never warned about: nothing to report
    outage.begin(20.0)
    assert outage.since == 20.0 and outage.tried == []


def test_outage_warns_after_a_while_then_now_and_then() -> None:
    outage = Outage()
    assert not outage.should_warn(100.0, after=10.0, every=60.0)  # no outage
    outage.begin(0.0)
    assert not outage.should_warn(9.9, after=10.0, every=60.0)
    assert outage.should_warn(10.0, after=10.0, every=60.0)
    assert not outage.should_warn(69.9, after=10.0, every=60.0)
    assert outage.should_warn(70.0, after=10.0, every=60.0)
    assert outage.end() == 0.0 and outage.since is None
