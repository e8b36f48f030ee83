"""The watch state machine, step by step, with no stream, thread or server."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pytest

from etcd3._core.watch_actions import (
    Action,
    Dispatch,
    End,
    Enqueue,
    Reconnect,
    Send,
    Settle,
)
from etcd3._core.watch_core import FIRST_WATCH_ID, STREAM_WIDE, WatchCore
from etcd3._core.watch_state import Subscriber, WatchSpec
from etcd3.etcdrpc import kv_pb2
from etcd3.etcdrpc import rpc_pb2 as pb
from etcd3.events import WatchResponse


class Refused(Exception):
    pass


class Cancelled(Exception):
    pass


class Compacted(Exception):
    def __init__(self, revision: int) -> None:
        super().__init__(revision)
        self.revision = revision


class Overflow(Exception):
    pass


class FakeErrors:
    def __init__(self, authenticated: bool = False) -> None:
        self.authenticated = authenticated

    def refused(self, key: bytes, reason: str) -> BaseException:
        return Refused(key, reason)

    def cancelled(self, reason: str) -> BaseException:
        return Cancelled(reason)

    def compacted(self, revision: int) -> BaseException:
        return Compacted(revision)

    def overflow(self, sub: Subscriber) -> BaseException:
        return Overflow(sub.id)

    def token_may_be_stale(self, reason: str) -> bool:
        return self.authenticated and "permission denied" in reason


SPEC = WatchSpec(key=b"/k", range_end=b"/l")
OTHER = WatchSpec(key=b"/other")


def make_core(*, coalesce: bool = True, authenticated: bool = False,
              backlog: Optional[Dict[int, int]] = None) -> WatchCore:
    counts = backlog if backlog is not None else {}
    return WatchCore(FakeErrors(authenticated), lambda sub: counts.get(sub.id, 0),
                     coalesce=coalesce)


def iterator_sub(max_queue: Optional[int] = None,
                 unreachable_timeout: Optional[float] = None) -> Subscriber:
    return Subscriber(0, None, "inbox", max_queue, unreachable_timeout)


def callback_sub(max_queue: Optional[int] = None) -> Subscriber:
    return Subscriber(0, lambda item: None, None, max_queue)


def sent(actions: List[Action]) -> List[Any]:
    return [a.request for a in actions if isinstance(a, Send)]


def creates(actions: List[Action]) -> List[Tuple[int, int]]:
    """(watch_id, start_revision) of every create request in ``actions``."""
    return [(r.create_request.watch_id, r.create_request.start_revision)
            for r in sent(actions) if r.HasField("create_request")]


def cancels(actions: List[Action]) -> List[int]:
    return [r.cancel_request.watch_id for r in sent(actions)
            if r.HasField("cancel_request")]


def delivered(actions: List[Action]) -> List[Tuple[Subscriber, Any]]:
    """(subscriber, item) for every delivery in ``actions``, in order."""
    result: List[Tuple[Subscriber, Any]] = []
    for action in actions:
        if isinstance(action, (Dispatch, Enqueue)):
            result.extend((sub, action.item) for sub in action.subscribers)
    return result


def created(watch_id: int, revision: int) -> Any:
    return pb.WatchResponse(header=pb.ResponseHeader(revision=revision),
                            watch_id=watch_id, created=True)


def refused(watch_id: int, reason: str) -> Any:
    return pb.WatchResponse(header=pb.ResponseHeader(revision=1), watch_id=watch_id,
                            created=True, canceled=True, cancel_reason=reason)


def events(watch_id: int, *revisions: int, fragment: bool = False) -> Any:
    evs = [kv_pb2.Event(type=kv_pb2.Event.PUT,
                        kv=kv_pb2.KeyValue(key=b"/k", value=b"v", mod_revision=rev))
           for rev in revisions]
    return pb.WatchResponse(header=pb.ResponseHeader(revision=max(revisions)),
                            watch_id=watch_id, events=evs, fragment=fragment)


def progress(watch_id: int, revision: int) -> Any:
    return pb.WatchResponse(header=pb.ResponseHeader(revision=revision), watch_id=watch_id)


def revisions(item: Any) -> List[int]:
    assert isinstance(item, WatchResponse)
    return [e.mod_revision for e in item.events]


def open_and_confirm(core: WatchCore, sub: Subscriber, spec: WatchSpec = SPEC,
                     start: Optional[int] = None, revision: int = 10) -> int:
    """Subscribe on an open stream and confirm the create; returns the watch id."""
    if not core.stream_open:
        core.stream_opened()
    joining, actions = core.subscribe(sub, spec, start, now=0.0)
    assert not joining
    assert sub.watch is not None
    watch_id = sub.watch.id
    assert creates(actions) == [(watch_id, start or 0)]
    actions = core.receive(created(watch_id, revision))
    assert [type(a) for a in actions] == [Settle]
    return watch_id


# -- registration and confirmation -------------------------------------------------------


def test_subscribe_before_the_stream_sends_the_create_when_it_opens() -> None:
    core = make_core()
    sub = iterator_sub()
    joining, actions = core.subscribe(sub, SPEC, None, now=5.0)
    assert not joining and actions == []  # no stream yet
    assert sub.id == 1 and sub.since == 5.0 and core.subs == {1: sub}
    assert sub.watch is not None and not sub.watch.confirmed
    assert creates(core.stream_opened()) == [(sub.watch.id, 0)]


def test_confirmation_sets_the_resume_point_after_the_creation_revision() -> None:
    core = make_core()
    sub = iterator_sub()
    open_and_confirm(core, sub, revision=41)
    assert sub.watch is not None
    assert sub.watch.confirmed and sub.watch.next_rev == 42


def test_explicit_start_revision_is_kept_and_never_shared() -> None:
    core = make_core()
    first, second = iterator_sub(), iterator_sub()
    open_and_confirm(core, first, start=7)
    joining, actions = core.subscribe(second, SPEC, 7, now=0.0)
    assert not joining and first.watch is not second.watch
    assert second.watch is not None and creates(actions) == [(second.watch.id, 7)]
    assert core.shared == {}


def test_refused_create_leaves_the_error_for_subscribe_and_nothing_registered() -> None:
    core = make_core()
    core.stream_opened()
    sub = iterator_sub()
    _, actions = core.subscribe(sub, SPEC, None, now=0.0)
    assert sub.watch is not None
    sw = sub.watch
    # etcd may answer a refused create with watch id -1: matched by creation order
    actions = core.receive(refused(STREAM_WIDE, "rpc error: code = PermissionDenied"))
    assert isinstance(sub.error, Refused) and sub.finished
    assert delivered(actions) == []  # subscribe() raises it
    assert any(isinstance(a, Settle) and a.watch is sw for a in actions)
    assert core.subs == {} and core.watches == {} and core.shared == {}
    assert cancels(actions) == [sw.id]


def test_stale_token_refusal_asks_to_reconnect_once_then_fails() -> None:
    core = make_core(authenticated=True)
    core.stream_opened()
    sub = iterator_sub()
    _, actions = core.subscribe(sub, SPEC, None, now=0.0)
    assert sub.watch is not None
    watch_id = sub.watch.id
    actions = core.receive(refused(watch_id, "etcdserver: permission denied"))
    assert [type(a) for a in actions] == [Reconnect]
    assert sub.error is None and core.watches
    core.stream_closed()
    assert creates(core.stream_opened()) == [(watch_id, 0)]
    core.receive(refused(watch_id, "etcdserver: permission denied"))
    assert isinstance(sub.error, Refused)


# -- coalescing ----------------------------------------------------------------------------


def test_identical_watches_share_one_server_watch_and_joiners_skip_older_events() -> None:
    core = make_core()
    first, second = iterator_sub(), iterator_sub()
    watch_id = open_and_confirm(core, first)
    joining, actions = core.subscribe(second, SPEC, None, now=0.0)
    assert joining and actions == [] and second.watch is first.watch
    assert len(core.watches) == 1
    # Events arrive before the joiner learnt the store's revision: buffered.
    actions = core.receive(events(watch_id, 11, 12))
    assert [(s, revisions(i)) for s, i in delivered(actions)] == [(first, [11, 12])]
    # The store was at 11 when it joined: only 12 is newer.
    actions = core.settle_join(second, 11)
    assert [(s, revisions(i)) for s, i in delivered(actions)] == [(second, [12])]
    actions = core.receive(events(watch_id, 13))
    assert sorted((s.id, revisions(i)) for s, i in delivered(actions)) == [
        (first.id, [13]), (second.id, [13])]


def test_other_specs_and_no_coalescing_get_their_own_server_watch() -> None:
    core = make_core(coalesce=False)
    first, second, third = iterator_sub(), iterator_sub(), iterator_sub()
    open_and_confirm(core, first)
    open_and_confirm(core, second)
    open_and_confirm(core, third, spec=OTHER)
    assert len({id(s.watch) for s in (first, second, third)}) == 3


def test_cancelling_one_of_two_coalesced_subscribers_keeps_the_server_watch() -> None:
    core = make_core()
    first, second = iterator_sub(), callback_sub()
    watch_id = open_and_confirm(core, first)
    core.subscribe(second, SPEC, None, now=0.0)
    core.settle_join(second, 10)
    actions = core.cancel(first.id)
    assert actions is not None
    assert [type(a) for a in actions] == [End] and cancels(actions) == []
    assert first.cancelled and first.finished and watch_id in core.watches
    actions = core.receive(events(watch_id, 11))
    assert [(s, revisions(i)) for s, i in delivered(actions)] == [(second, [11])]
    assert isinstance(actions[0], Dispatch)  # callbacks run on the driver's dispatcher
    # The last one out cancels the server watch.
    actions = core.cancel(second.id)
    assert actions is not None and cancels(actions) == [watch_id]
    assert core.watches == {} and core.shared == {}
    assert core.cancel(second.id) is None


# -- resume ----------------------------------------------------------------------------------


def test_stream_break_resumes_each_watch_after_the_last_revision_delivered() -> None:
    core = make_core()
    a, b, c = iterator_sub(), iterator_sub(), iterator_sub()
    wa = open_and_confirm(core, a, revision=10)
    wb = open_and_confirm(core, b, spec=OTHER, revision=10)
    wc = open_and_confirm(core, c, start=3, revision=10)
    core.receive(events(wa, 11, 15))
    core.receive(progress(wb, 20))  # a progress notification moves the resume point
    core.stream_closed()
    assert core.request_progress() == []  # nothing to send it on
    assert sorted(creates(core.stream_opened())) == [(wa, 16), (wb, 21), (wc, 3)]
    # The re-creation is confirmed without moving the resume points.
    core.receive(created(wa, 30))
    assert a.watch is not None and a.watch.next_rev == 16


def test_fragments_are_joined_and_dropped_by_a_new_stream() -> None:
    core = make_core()
    sub = iterator_sub()
    watch_id = open_and_confirm(core, sub)
    assert core.receive(events(watch_id, 11, fragment=True)) == []
    actions = core.receive(events(watch_id, 11))
    assert [revisions(i) for _, i in delivered(actions)] == [[11, 11]]
    core.receive(events(watch_id, 12, fragment=True))
    core.stream_closed()
    assert creates(core.stream_opened()) == [(watch_id, 12)]
    actions = core.receive(events(watch_id, 12))
    assert [revisions(i) for _, i in delivered(actions)] == [[12]]


def test_responses_of_a_cancelled_watch_are_ignored() -> None:
    core = make_core()
    sub = iterator_sub()
    watch_id = open_and_confirm(core, sub)
    core.cancel(sub.id)
    assert core.receive(events(watch_id, 11)) == []


# -- errors after confirmation ---------------------------------------------------------------


def test_compaction_fails_every_subscriber_of_the_watch() -> None:
    core = make_core()
    first, second = iterator_sub(), callback_sub()
    watch_id = open_and_confirm(core, first, start=2)
    core.subscribe(second, SPEC, 2, now=0.0)  # own watch: explicit start revision
    actions = core.receive(pb.WatchResponse(header=pb.ResponseHeader(revision=50),
                                            watch_id=watch_id, compact_revision=40))
    [(sub, error)] = delivered(actions)
    assert sub is first and isinstance(error, Compacted) and error.revision == 40
    assert cancels(actions) == [watch_id] and first.finished
    assert first.id not in core.subs and second.id in core.subs


def test_cancel_by_etcd_reaches_the_callback() -> None:
    core = make_core()
    sub = callback_sub()
    watch_id = open_and_confirm(core, sub)
    actions = core.receive(pb.WatchResponse(watch_id=watch_id, canceled=True,
                                            cancel_reason="lost leadership"))
    [(target, error)] = delivered(actions)
    assert target is sub and isinstance(error, Cancelled)
    assert isinstance(actions[0], Dispatch)


def test_stream_that_cannot_open_fails_unconfirmed_watches_only_on_tls() -> None:
    core = make_core()
    confirmed, waiting = iterator_sub(), iterator_sub()
    open_and_confirm(core, confirmed)
    core.subscribe(waiting, OTHER, None, now=0.0)
    error = RuntimeError("tls")
    actions = core.fail_unconfirmed(error)
    assert waiting.error is error and delivered(actions) == []
    assert confirmed.id in core.subs and core.any_confirmed()
    actions = core.fail_all(error)
    assert delivered(actions) == [(confirmed, error)] and core.subs == {}


def test_overflowing_iterator_gets_the_error_and_others_go_on() -> None:
    backlog: Dict[int, int] = {}
    core = make_core(backlog=backlog)
    slow, fast = iterator_sub(max_queue=2), iterator_sub()
    watch_id = open_and_confirm(core, slow)
    core.subscribe(fast, SPEC, None, now=0.0)
    core.settle_join(fast, 10)
    backlog[slow.id] = 2
    actions = core.receive(events(watch_id, 11))
    items = {sub.id: item for sub, item in delivered(actions)}
    assert isinstance(items[slow.id], Overflow) and revisions(items[fast.id]) == [11]
    assert slow.finished and slow.id not in core.subs and watch_id in core.watches


def test_overflowing_callback_counts_what_the_driver_has_not_run() -> None:
    core = make_core()
    sub = callback_sub(max_queue=2)
    watch_id = open_and_confirm(core, sub)
    core.receive(events(watch_id, 11))
    core.receive(events(watch_id, 12))
    assert sub.routed == 2
    sub.delivered = 1  # the driver ran one callback
    core.receive(events(watch_id, 13))
    actions = core.receive(events(watch_id, 14))
    [(target, error)] = delivered(actions)
    assert target is sub and isinstance(error, Overflow)
    assert cancels(actions) == [watch_id]


# -- progress, outage, close ------------------------------------------------------------------


def test_requested_progress_reaches_confirmed_watches_but_probes_do_not() -> None:
    core = make_core()
    sub = iterator_sub()
    watch_id = open_and_confirm(core, sub, revision=10)
    # A watchdog probe's answer (nobody asked through the core): dropped.
    assert core.receive(progress(STREAM_WIDE, 12)) == []
    assert [r.HasField("progress_request") for r in sent(core.request_progress())] == [True]
    actions = core.receive(progress(STREAM_WIDE, 12))
    [(target, item)] = delivered(actions)
    assert target is sub and item.events == [] and item.header.revision == 12
    # A stream-wide notification never moves a resume point (etcd 3.4).
    assert sub.watch is not None and sub.watch.next_rev == 11
    assert watch_id in core.watches


def test_unreachable_timeout_ends_only_the_subscribers_past_it() -> None:
    core = make_core()
    patient, limited = iterator_sub(), iterator_sub(unreachable_timeout=5.0)
    core.subscribe(patient, SPEC, None, now=0.0)
    core.subscribe(limited, OTHER, None, now=3.0)
    assert core.unreachable_expired(7.0, down_since=1.0) == []
    assert core.unreachable_expired(8.0, down_since=1.0) == [limited]
    error = RuntimeError("unreachable")
    actions = core.end(limited, error)
    assert limited.error is error and delivered(actions) == []  # not confirmed yet
    assert list(core.subs) == [patient.id] and len(core.watches) == 1


def test_close_ends_iterators_and_wakes_waiters() -> None:
    core = make_core()
    it, cb = iterator_sub(), callback_sub()
    core.subscribe(it, SPEC, None, now=0.0)
    core.subscribe(cb, OTHER, None, now=0.0)
    actions = core.close()
    assert [a.subscriber for a in actions if isinstance(a, End)] == [it]
    assert len([a for a in actions if isinstance(a, Settle)]) == 2
    assert it.cancelled and cb.cancelled and core.subs == {} and core.watches == {}


def test_abandon_gives_iterators_the_error_and_callbacks_nothing() -> None:
    core = make_core()
    it, cb = iterator_sub(), callback_sub()
    open_and_confirm(core, it)
    open_and_confirm(core, cb, spec=OTHER)
    error = RuntimeError("forked")
    assert delivered(core.abandon(error)) == [(it, error)]
    assert core.subs == {} and not core.stream_open


@pytest.mark.parametrize("coalesce", [True, False])
def test_ids_are_stable_and_distinct(coalesce: bool) -> None:
    core = make_core(coalesce=coalesce)
    subs = [iterator_sub() for _ in range(3)]
    for sub in subs:
        core.subscribe(sub, SPEC, None, now=0.0)
    assert [s.id for s in subs] == [1, 2, 3]
    assert len(core.watches) == (1 if coalesce else 3)


def test_joiners_first_response_goes_out_as_one_delivery_in_join_order() -> None:
    core = make_core()
    first = callback_sub()
    watch_id = open_and_confirm(core, first)
    joiners = [callback_sub() for _ in range(3)]
    for sub in joiners:
        core.subscribe(sub, SPEC, None, now=0.0)
        core.settle_join(sub, 10)
    actions = core.receive(events(watch_id, 11))
    assert [type(a) for a in actions] == [Dispatch, Dispatch]
    assert [s for s, _ in delivered(actions)] == [first, *joiners]
    actions = core.receive(events(watch_id, 12))  # all attached now: one delivery
    assert [type(a) for a in actions] == [Dispatch]
    assert [s for s, _ in delivered(actions)] == [first, *joiners]


# -- a server that numbers watches itself (etcd's gRPC proxy) ------------------------------


def _subscribe_three(core: WatchCore) -> List[Subscriber]:
    core.stream_opened()
    subs = []
    for spec in (SPEC, OTHER, WatchSpec(key=b"/third")):
        sub = iterator_sub()
        core.subscribe(sub, spec, None, now=0.0)
        subs.append(sub)
    return subs


def test_client_ids_start_far_above_what_a_proxy_gives_out() -> None:
    core = make_core()
    first, second = _subscribe_three(core)[:2]
    assert first.watch is not None and second.watch is not None
    assert first.watch.id == FIRST_WATCH_ID and second.watch.id == FIRST_WATCH_ID + 1
    core.receive(created(first.watch.id, 5))  # etcd keeps the id asked for
    assert not core.ids_assigned_by_server


def test_proxy_numbers_map_to_creates_in_order_even_when_answered_out_of_order() -> None:
    core = make_core()
    subs = _subscribe_three(core)
    watches = [s.watch for s in subs]
    # The proxy answers with its own ids (0, 1, 2: its order of the creates), and
    # creates of different ranges come back in any order.
    for proxy_id in (2, 0, 1):
        actions = core.receive(created(proxy_id, 10))
        assert [type(a) for a in actions] == [Settle]
        assert actions[0].watch is watches[proxy_id]
    assert core.ids_assigned_by_server
    assert [w.server_id for w in watches if w is not None] == [0, 1, 2]
    got = delivered(core.receive(events(1, 11)))
    assert [(sub, revisions(item)) for sub, item in got] == [(subs[1], [11])]
    # Cancelling uses the proxy's id.
    assert cancels(core.cancel(subs[2].id) or []) == [2]
    assert core.receive(events(2, 12)) == []


def test_a_refused_create_takes_no_proxy_number() -> None:
    core = make_core()
    subs = _subscribe_three(core)
    core.receive(refused(STREAM_WIDE, "permission denied"))  # the first create
    assert isinstance(subs[0].error, Refused)
    actions = core.receive(created(1, 10))  # the proxy's second accepted = our third
    assert [a.watch for a in actions if isinstance(a, Settle)] == [subs[2].watch]
    actions = core.receive(created(0, 10))
    assert [a.watch for a in actions if isinstance(a, Settle)] == [subs[1].watch]


def test_a_watch_cancelled_before_the_proxy_confirmed_it_is_cancelled_by_its_number() -> None:
    core = make_core()
    subs = _subscribe_three(core)
    core.cancel(subs[1].id)
    assert cancels(core.receive(created(1, 10))) == [1]
    assert core.receive(events(1, 11)) == []


def test_a_new_stream_forgets_the_proxy_numbers() -> None:
    core = make_core()
    subs = _subscribe_three(core)
    for proxy_id in range(3):
        core.receive(created(proxy_id, 10))
    core.stream_closed()
    assert [w for _, w in creates(core.stream_opened())] == [11, 11, 11]
    assert not core.ids_assigned_by_server
    # On a member the ids asked for come back, and route as such.
    watch = subs[0].watch
    assert watch is not None
    core.receive(created(watch.id, 11))
    assert not core.ids_assigned_by_server and watch.server_id == watch.id
