"""A gRPC error built in-process, as grpc-python raises it (shared by unit and
integration tests that feed the error translation and retry rules directly)."""

from __future__ import annotations

from typing import Any

import grpc


class RpcError(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """A gRPC error as grpc-python raises it: an RpcError that is also a Call."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> Any:
        return ()

    def trailing_metadata(self) -> Any:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> Any:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


#: What grpc-python says when nothing listens on the port.
REFUSED_DETAILS = ("failed to connect to all addresses; last error: UNKNOWN: "
                   "ipv4:127.0.0.1:1: Failed to connect to remote host: Connection refused")
#: ...and when a TLS handshake with a plain-text port fails.
HANDSHAKE_DETAILS = ("failed to connect to all addresses; last error: UNKNOWN: "
                     "ipv4:127.0.0.1:2379: Handshake read failed")
