"""Compare and operation builders for :meth:`Etcd3Client.transaction`.

Used as in python-etcd3::

    client.transaction(
        compare=[client.transactions.value('/k') == 'v',
                 client.transactions.version('/k') > 0],
        success=[client.transactions.put('/k', 'new')],
        failure=[client.transactions.get('/k')],
    )

The builders are the client's one operation model (:mod:`etcd3._core.ops`), under
their python-etcd3 names.
"""

from __future__ import annotations

from typing import Any, List

from ._core.ops import (
    BaseCompare,
    Create,
    Delete,
    Get,
    KeyType,
    Lease,
    Mod,
    Op,
    Put,
    Txn,
    Value,
    Version,
    key_bytes,
    lease_to_id,
)
from .results import KVMetadata

for _public in (BaseCompare, Value, Version, Create, Mod, Lease, Put, Get, Delete, Txn):
    _public.__module__ = __name__  # their public home (docs, pickles, python-etcd3)

__all__ = ["BaseCompare", "Value", "Version", "Create", "Mod", "Lease", "Put", "Get",
           "Delete", "Txn", "Op", "KeyType", "Transactions", "key_bytes", "lease_to_id",
           "shape_txn_responses"]


class Transactions:
    """``client.transactions``: the builders, as python-etcd3 exposes them."""

    def __init__(self) -> None:
        self.value = Value
        self.version = Version
        self.create = Create
        self.mod = Mod
        self.lease = Lease
        self.put = Put
        self.get = Get
        self.delete = Delete
        self.txn = Txn


def shape_txn_responses(txn_response: Any) -> List[Any]:
    """python-etcd3's shape: a get yields a list of (value, KVMetadata); a put, delete or
    nested txn yields its ``ResponseOp``."""
    header = txn_response.header
    shaped: List[Any] = []
    for response in txn_response.responses:
        if response.WhichOneof("response") == "response_range":
            shaped.append([(kv.value, KVMetadata.from_pb(kv, header))
                           for kv in response.response_range.kvs])
        else:
            shaped.append(response)
    return shaped
