"""Building blocks shared by locks and elections (etcd's ``concurrency/key.go``).

A participant owns the key ``<prefix>/<lease id in hex>`` created in one transaction;
the oldest key (lowest create revision) under the prefix holds the lock/leadership;
a waiter watches only its predecessor, the newest key created before its own, until
no older key remains.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any, Callable, List, Optional, Tuple

from .. import codec, exceptions
from .._core.deadline import Deadline, Timeout
from .._grpc import rpc as _rpc
from ..events import DeleteEvent
from ..transactions import BaseCompare, Create, Delete, Get, Put, build_txn_request
from .base import UNSET

log = logging.getLogger("etcd3")

#: Pause before re-checking after a failed watch (compaction, broken stream), so a
#: persistent failure does not spin.
WATCH_RETRY_PAUSE = 0.1


def first_created_op(prefix: bytes) -> Get:
    """A Get of the oldest key under ``prefix`` (Go's ``WithFirstCreate``)."""
    return Get(prefix, codec.prefix_range_end(prefix), sort_order="ascend",
               sort_target="create", limit=1)


def txn(client: Any, compare: List[BaseCompare], success: List[Any],
        failure: List[Any]) -> Any:
    """Run a transaction and return the raw TxnResponse (header and per-op results)."""
    return client._call(_rpc.TXN, build_txn_request(compare, success, failure))


def range_kvs(txn_response: Any, index: int) -> Any:
    """The ``kvs`` of the ``index``-th (range) response of a transaction."""
    return txn_response.responses[index].response_range.kvs


def create_own_key(client: Any, prefix: bytes, lease_id: int,
                   value: bytes = b"") -> Tuple[bytes, int, Any, Any]:
    """Create ``<prefix><lease hex>`` with ``value`` unless it exists.

    Returns ``(own_key, own_create_revision, txn_response, oldest_kvs)``; when the
    key already existed its value is left alone (``txn_response.succeeded`` is False)
    and ``responses[0]`` holds it.
    """
    own = prefix + b"%x" % lease_id
    response = txn(client,
                   [Create(own) == 0],
                   [Put(own, value, lease=lease_id), first_created_op(prefix)],
                   [Get(own), first_created_op(prefix)])
    if response.succeeded:
        revision = response.header.revision
    else:
        revision = range_kvs(response, 0)[0].create_revision
    return own, revision, response, range_kvs(response, 1)


def delete_if_mine(client: Any, own_key: bytes, revision: int) -> bool:
    """Delete ``own_key`` only if its create revision is still ``revision``."""
    return bool(txn(client, [Create(own_key) == revision], [Delete(own_key)], []).succeeded)


def step_down(client: Any, own_key: Optional[bytes], revision: Optional[int],
              withdraw: Callable[[], None]) -> bool:
    """Fenced delete of ``own_key`` then ``withdraw()`` (even if the delete failed);
    False when there was no key, or it was no longer ours."""
    if own_key is None or revision is None:
        return False
    try:
        return delete_if_mine(client, own_key, revision)
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


def key_create_revision(client: Any, key: bytes, timeout: Timeout = UNSET) -> int:
    """The create revision of ``key`` (0 when it does not exist)."""
    kvs = client.get_response(key, timeout=timeout).kvs
    return kvs[0].create_revision if kvs else 0


def wait_delete(client: Any, key: bytes, revision: int, deadline: Deadline) -> bool:
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


def wait_deletes(client: Any, prefix: bytes, max_create_revision: int,
                 deadline: Deadline) -> bool:
    """Wait until no key under ``prefix`` created at or before ``max_create_revision``
    is left, watching one predecessor at a time. False at the deadline."""
    while True:
        response = client.get_prefix_response(
            prefix, sort_order="descend", sort_target="create", limit=1,
            max_create_revision=max_create_revision)
        if not response.kvs:
            return True
        predecessor = response.kvs[0].key
        if not wait_delete(client, predecessor, response.header.revision, deadline):
            return False


class LeaseHolder:
    """What a lock and an election candidate share: a lease kept alive by the client,
    and the news when it is lost.

    When the lease under a held key expires, is revoked, or cannot be kept alive for
    a whole TTL (the keepalive stream's member is gone, or this process was stopped),
    another participant may take over. The holder then learns it: :attr:`lost`
    becomes True, the ownership checks answer False without asking etcd, a WARNING
    is logged, and the ``on_lost(holder)`` callback runs (on a client thread).
    """

    etcd_client: Any
    lease: Any
    ttl: int
    #: What the holder holds, for the warning ("lock 'job'").
    _what: str

    def _init_holder(self, on_lost: Optional[Callable[[Any], None]]) -> None:
        self.on_lost = on_lost
        self.lost = False

    def _grant_lease(self, ttl: int) -> Any:
        """A new lease of ``ttl`` seconds kept alive for this holder."""
        self.lost = False
        # Weakly: the keepalive thread must not keep this holder (and so its client)
        # alive; a holder that was dropped has nobody left to tell.
        return self.etcd_client.lease(ttl, keep_alive=True,
                                      on_expired=weakref.WeakMethod(self._lease_lost))

    def _lease_lost(self, lease: Any) -> None:
        if lease is not self.lease or self.lost:
            return
        self.lost = True
        log.warning("etcd3: %s lost: its lease %x could not be kept alive; another "
                    "holder may have it now", self._what, int(lease.id))
        callback = self.on_lost
        if callback is not None:
            try:
                callback(self)
            except Exception:
                log.exception("etcd3: on_lost callback of %s failed", self._what)

    def _check_timeout(self) -> Optional[float]:
        """The deadline of an ownership check: the client's timeout, or the lease TTL
        when the client has none (no answer within a TTL means the lease may be
        gone anyway, so the check must not wait forever)."""
        timeout: Optional[float] = self.etcd_client.timeout
        return float(self.ttl) if timeout is None else timeout

    def _lease_alive(self) -> bool:
        """False when this process knows the lease is gone: lost, revoked, or not
        renewed for a whole TTL (checked locally, without asking etcd)."""
        lease = self.lease
        if lease is None or lease.expired or self.lost:
            return False
        engine = self.etcd_client._keepalive
        until = None if engine is None else engine.alive_until(lease.id)
        if until is not None and until <= time.monotonic():
            self._lease_lost(lease)
            return False
        return True
