"""python-etcd3's raw gRPC attributes, for code that calls etcd's stubs directly.

python-etcd3 exposed its channel, its generated stubs (``kvstub``, ``leasestub``,
``clusterstub``, ``maintenancestub``, ``auth_stub``), the auth ``metadata`` and
``call_credentials``. Code written against them keeps working::

    response = client.kvstub.Range(etcdrpc.RangeRequest(key=b'k'), client.timeout,
                                   credentials=client.call_credentials,
                                   metadata=client.metadata)

Such calls go to one endpoint (the first healthy one) and bypass this client's
retries, failover, token refresh and error translation: a failure raises a plain
``grpc.RpcError``. Prefer the client's own methods.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import grpc

from ._sync.base import ServiceBase
from .etcdrpc import rpc_pb2_grpc
from .pool import ChannelPool, Endpoint

Metadata = Optional[Tuple[Tuple[str, str], ...]]


class EtcdTokenCallCredentials(grpc.AuthMetadataPlugin):  # type: ignore[misc]
    """python-etcd3's call-credentials plugin: puts an auth token in each call's
    metadata. This client does not need it (it sends its token as plain metadata,
    which also works without TLS, where gRPC refuses call credentials)."""

    def __init__(self, access_token: str) -> None:
        self._access_token = access_token

    def __call__(self, context: Any, callback: Callable[..., None]) -> None:
        callback((("token", self._access_token),), None)


def _stub_property(stub_class: type) -> Any:
    service = stub_class.__name__[:-len("Stub")]

    def stub(self: RawStubs) -> Any:
        return self._stub(stub_class)

    stub.__doc__ = f"etcd's {service} service stub (``{stub_class.__name__}``) on :attr:`channel`."
    return property(stub)


class RawStubs:
    """The raw gRPC attributes both clients share (see the module docstring); with
    the asyncio client, channel and stubs are ``grpc.aio`` ones."""

    _transport: Any

    def _pool(self) -> ChannelPool:
        pool: ChannelPool = self._transport.pool
        return pool

    #: python-etcd3 set call credentials only with TLS and a user; this client puts
    #: the token in :attr:`metadata` instead, so there are never call credentials.
    call_credentials: Optional[grpc.CallCredentials] = None

    @property
    def channel(self) -> Any:
        """A gRPC channel to the first healthy endpoint.

        :raises ClientClosedError: the client is closed.
        """
        return self._pool().preferred().channels[0]

    @property
    def endpoint_in_use(self) -> Endpoint:
        """The endpoint :attr:`channel` leads to (python-etcd3 master's multi-endpoint
        client). Ordinary calls are spread over every healthy endpoint.

        :raises ClientClosedError: the client is closed.
        """
        return self._pool().preferred().endpoint

    @property
    def uses_secure_channel(self) -> bool:
        """True when the client talks TLS (python-etcd3: ``ca_cert`` was given)."""
        return any(endpoint.secure for endpoint in self._pool().endpoints)

    def _stub(self, stub_class: type) -> Any:
        # Kept with the channel's multi-callables, so a channel the pool replaces
        # (after a fork, or an endpoint sync) gets new stubs.
        state = self._pool().preferred()
        registry = state.callables[0]
        stub = registry.get(stub_class)
        if stub is None:
            stub = registry[stub_class] = stub_class(state.channels[0])
        return stub

    kvstub = _stub_property(rpc_pb2_grpc.KVStub)
    leasestub = _stub_property(rpc_pb2_grpc.LeaseStub)
    clusterstub = _stub_property(rpc_pb2_grpc.ClusterStub)
    maintenancestub = _stub_property(rpc_pb2_grpc.MaintenanceStub)
    auth_stub = _stub_property(rpc_pb2_grpc.AuthStub)


class RawStubsMixin(ServiceBase, RawStubs):
    """The raw gRPC attributes of python-etcd3's client (see the module docstring)."""

    @property
    def metadata(self) -> Metadata:
        """The auth metadata (``(('token', ...),)``) for calls on :attr:`channel`, or
        None without authentication; authenticates first if needed.

        :raises AuthenticationFailedError: the user or password is wrong.
        """
        return self._transport.metadata_for(self._transport.pool.preferred())
