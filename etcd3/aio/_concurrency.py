"""The asyncio driver of the lock, election and STM cores
(:mod:`etcd3._core.concurrency`, :mod:`etcd3._core.stm`): it makes the requests the
cores ask for, awaited."""

from __future__ import annotations

from typing import Any

from .._core.deadline import UNSET, Timeout
from .._core.ops import Get, Txn


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
