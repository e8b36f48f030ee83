"""The asyncio driver of the lock, election and STM cores
(:mod:`etcd3._core.concurrency`, :mod:`etcd3._core.stm`): it makes the requests the
cores ask for, waits on watches and keeps deadlines, awaited; and holds the lease
of a lock or candidate (:class:`AioLeaseHolder`).

Cancellation: what must not be left behind (an own key, a lease) is removed by
:func:`shielded` cleanups, which finish even when the task that started them is
cancelled again meanwhile.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from typing import Any, Awaitable, Callable, Coroutine, Optional, Set, TypeVar

from .. import _holders, exceptions
from .._core import concurrency as core
from .._core.deadline import UNSET, Deadline, Timeout
from .._core.ops import Get, Txn
from ..events import DeleteEvent

log = logging.getLogger("etcd3")

T = TypeVar("T")

#: Cleanups and callbacks running as tasks of their own (kept until they end).
_BACKGROUND: Set[asyncio.Task[Any]] = set()


def _background(coro: Coroutine[Any, Any, T], what: str) -> asyncio.Task[T]:
    task = asyncio.ensure_future(coro)
    _BACKGROUND.add(task)

    def done(task: asyncio.Task[Any]) -> None:
        _BACKGROUND.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("etcd3: %s failed: %s", what, task.exception())

    task.add_done_callback(done)
    return task


async def shielded(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` in a task of its own: if the awaiting task is cancelled, the
    :class:`asyncio.CancelledError` propagates at once but ``coro`` still runs to
    its end (a cleanup that must happen: deleting a key, revoking a lease)."""
    return await asyncio.shield(_background(coro, "cleanup"))


async def run_txn(client: Any, txn: Txn, timeout: Timeout = UNSET) -> Any:
    """The TxnResponse of ``txn``."""
    return await client.transaction_response(txn.compare, txn.success, txn.failure,
                                             timeout=timeout)


async def run_get(client: Any, get: Get, timeout: Timeout = UNSET) -> Any:
    """The RangeResponse of ``get``."""
    if get.range_end is None:
        return await client.get_response(get.key, timeout=timeout, **get.range_options)
    return await client.get_range_response(get.key, get.range_end, timeout=timeout,
                                           **get.range_options)


async def contend(client: Any, attempt: core.Contention, deadline: Deadline,
                  created: Callable[[], None]) -> core.Finished:
    """Drive ``attempt`` to its end (see :func:`etcd3._sync.concurrency.contend`):
    make each request it asks for, wait for each deletion until ``deadline``;
    ``created()`` runs once the own key exists.

    :raises Etcd3Exception: a request failed.
    """
    step: core.Step = attempt.start()
    while True:
        if isinstance(step, Txn):
            step = attempt.on_txn(await run_txn(client, step))
            created()
        elif isinstance(step, Get):
            step = attempt.on_range(await run_get(client, step))
        elif isinstance(step, core.WaitDelete):
            step = attempt.on_waited(
                await wait_delete(client, step.key, step.revision, deadline))
        else:
            return step


async def step_down(client: Any, own_key: Optional[bytes], revision: Optional[int],
                    withdraw: Callable[[], Awaitable[None]]) -> bool:
    """Fenced delete of ``own_key`` then ``withdraw()`` (even if the delete failed);
    False when there was no key, or it was no longer ours."""
    if own_key is None or revision is None:
        return False
    try:
        return bool((await run_txn(client, core.delete_if_owner(own_key, revision)))
                    .succeeded)
    finally:
        await withdraw()


async def revoke_quietly(lease: Any) -> None:
    """Revoke ``lease`` (which deletes its keys) if there is one, ignoring a lease
    already gone or an unreachable etcd (the lease then expires after its TTL)."""
    if lease is not None:
        try:
            await lease.revoke()
        except exceptions.Etcd3Exception:
            pass


async def key_create_revision(client: Any, key: bytes, timeout: Timeout = UNSET) -> int:
    """The create revision of ``key`` (0 when it does not exist)."""
    kvs = (await client.get_response(key, timeout=timeout)).kvs
    return int(kvs[0].create_revision) if kvs else 0


async def wait_delete(client: Any, key: bytes, revision: int, deadline: Deadline) -> bool:
    """Wait until ``key`` is deleted at or after ``revision``.

    Returns False at the deadline; True when the key was deleted or the watch failed
    (the caller re-checks the store either way).
    """
    done = asyncio.Event()
    failed = []

    def on_response(response: Any) -> None:
        if isinstance(response, BaseException):
            failed.append(response)
            done.set()
        elif any(isinstance(event, DeleteEvent) for event in response.events):
            done.set()

    watch_id = await client.add_watch_callback(key, on_response, start_revision=revision)
    try:
        await asyncio.wait_for(done.wait(), deadline.remaining())
        finished = True
    except asyncio.TimeoutError:
        finished = False
    finally:
        await client.cancel_watch(watch_id)
    if failed:
        # A failing watch (compaction, broken stream): re-check after a pause
        # rather than spin.
        pause = core.WATCH_RETRY_PAUSE
        await asyncio.sleep(min(pause, deadline.remaining() or pause))
    return finished


class AioLeaseHolder(_holders.LeaseHolder):
    """The asyncio :class:`etcd3._holders.LeaseHolder`: grants its lease awaited;
    ``on_lost`` runs in the event loop and may be a coroutine function (then it
    runs as a task of its own)."""

    async def _grant_lease(self, ttl: int) -> Any:
        """A new lease of ``ttl`` seconds kept alive for this holder."""
        self.lost = False
        # Weakly: the keepalive task must not keep this holder (and so its client)
        # alive; a holder that was dropped has nobody left to tell.
        return await self._client.lease(ttl, keep_alive=True,
                                        on_expired=weakref.WeakMethod(self._lease_lost))

    def _deliver(self, result: Any) -> None:
        if inspect.isawaitable(result):
            _background(_awaited(result, self._what), f"on_lost callback of {self._what}")


async def _awaited(result: Awaitable[Any], what: str) -> None:
    try:
        await result
    except Exception:
        log.exception("etcd3: on_lost callback of %s failed", what)
