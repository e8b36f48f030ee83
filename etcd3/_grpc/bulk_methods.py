"""The RPC methods of the bulk calls, for every gRPC driver."""

from __future__ import annotations

from dataclasses import replace

from . import rpc as _rpc

#: Txn with the reply left as wire bytes, for callers that need nothing from it.
TXN_UNDECODED = replace(_rpc.TXN, deserializer=bytes)

#: Txn for get_many, whose ops are all ranges: a read, so the retry rules may send it
#: again after a failure (another member, as for a Range) instead of reporting that
#: it "may have been applied". Still a Txn: the etcd 3.5.0-3.5.4 rule for read-only
#: Txns (no gRPC deadline) applies to it.
TXN_READ_ONLY = replace(_rpc.TXN, repeatable=True)
