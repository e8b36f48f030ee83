"""The RPC methods of the bulk calls, for every gRPC driver."""

from __future__ import annotations

from dataclasses import replace

from . import rpc as _rpc

#: Txn with the reply left as wire bytes, for callers that need nothing from it.
TXN_UNDECODED = replace(_rpc.TXN, deserializer=bytes)
