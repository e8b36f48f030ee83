"""The threaded driver of the lock and election algorithms (:mod:`etcd3._core.concurrency`):
it makes the requests the algorithm asks for, waits on watches, keeps deadlines, and
holds the lease (:class:`LeaseHolder`).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any, Callable, List, Optional

from .. import _holders, exceptions
from .._core import concurrency as core
from .._core.deadline import Deadline, Timeout
from .._core.ops import Get, Txn
from ..events import DeleteEvent
from .base import UNSET
from .client_api import ConcurrencyClient, KVClient, required

log = logging.getLogger("etcd3")

WATCH_RETRY_PAUSE = core.WATCH_RETRY_PAUSE


def run_txn(client: KVClient, txn: Txn) -> Any:
    """The TxnResponse of ``txn`` (the client's default timeout)."""
    return client.transaction_response(txn.compare, txn.success, txn.failure)


def run_get(client: KVClient, get: Get, timeout: Timeout = UNSET) -> Any:
    """The RangeResponse of ``get`` (single-key reads go through the read batcher)."""
    if get.range_end is None:
        return client.get_response(get.key, timeout=timeout, **get.range_options)
    return client.get_range_response(get.key, get.range_end, timeout=timeout,
                                      **get.range_options)


def range_kvs(txn_response: Any, index: int) -> Any:
    """The ``kvs`` of the ``index``-th (range) response of a transaction."""
    return txn_response.responses[index].response_range.kvs


def contend(client: ConcurrencyClient, attempt: core.Contention,
            deadline: Deadline, created: Callable[[], None]) -> core.Finished:
    """Drive ``attempt`` to its end: make each request it asks for, wait for each
    deletion until ``deadline``; ``created()`` runs once the own key exists.

    :raises Etcd3Exception: a request failed.
    """
    step: core.Step = attempt.start()
    while True:
        if isinstance(step, Txn):
            step = attempt.on_txn(run_txn(client, step))
            created()
        elif isinstance(step, Get):
            step = attempt.on_range(run_get(client, step))
        elif isinstance(step, core.WaitDelete):
            step = attempt.on_waited(wait_delete(client, step.key, step.revision, deadline))
        else:
            return step


def step_down(client: KVClient, own_key: Optional[bytes], revision: Optional[int],
              withdraw: Callable[[], None]) -> bool:
    """Fenced delete of ``own_key`` then ``withdraw()`` (even if the delete failed);
    False when there was no key, or it was no longer ours."""
    if own_key is None or revision is None:
        return False
    try:
        return bool(run_txn(client, core.delete_if_owner(own_key, revision)).succeeded)
    finally:
        withdraw()


def revoke_quietly(lease: Any) -> None:
    """Revoke ``lease`` (which deletes its keys) if there is one, ignoring a lease
    already gone or an unreachable etcd (the lease then expires after its TTL)."""
    if lease is not None:
        try:
            lease.revoke()
        except exceptions.Etcd3Exception:
            pass


def key_create_revision(client: KVClient, key: bytes, timeout: Timeout = UNSET) -> int:
    """The create revision of ``key`` (0 when it does not exist)."""
    kvs = client.get_response(key, timeout=timeout).kvs
    return kvs[0].create_revision if kvs else 0


def wait_delete(client: ConcurrencyClient, key: bytes, revision: int,
               deadline: Deadline) -> bool:
    """Wait until ``key`` is deleted at or after ``revision``.

    Returns False at the deadline; True when the key was deleted or the watch failed
    (the caller re-checks the store either way).
    """
    done = threading.Event()
    failed: List[BaseException] = []

    def on_response(response: Any) -> None:
        if isinstance(response, BaseException):
            failed.append(response)
            done.set()
        elif any(isinstance(event, DeleteEvent) for event in response.events):
            done.set()

    watch_id = client.add_watch_callback(key, on_response, start_revision=revision)
    try:
        finished = done.wait(deadline.remaining())
    finally:
        client.cancel_watch(watch_id)
    if failed:
        # A failing watch (compaction, broken stream): re-check after a pause
        # rather than spin.
        time.sleep(min(WATCH_RETRY_PAUSE, deadline.remaining() or WATCH_RETRY_PAUSE))
    return finished


class LeaseHolder(_holders.LeaseHolder):
    """The threaded :class:`etcd3._holders.LeaseHolder`: grants its lease with a
    blocking call; ``on_lost`` runs on a client thread."""

    etcd_client: Optional[ConcurrencyClient]

    @property
    def _client(self) -> ConcurrencyClient:
        return required(self.etcd_client, self)

    def _grant_lease(self, ttl: int) -> Any:
        """A new lease of ``ttl`` seconds kept alive for this holder."""
        self.lost = False
        # Weakly: the keepalive thread must not keep this holder (and so its client)
        # alive; a holder that was dropped has nobody left to tell.
        return self._client.lease(ttl, keep_alive=True,
                                  on_expired=weakref.WeakMethod(self._lease_lost))
