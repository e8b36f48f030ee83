"""Generated from protos/ by protos/generate.py; do not edit.

Every message, enum and stub is also importable from here, as in python-etcd3
(e.g. ``etcd3.etcdrpc.WatchCreateRequest.NOPUT``)."""

from .auth_pb2 import *  # noqa: F401,F403
from .kv_pb2 import *  # noqa: F401,F403
from .rpc_pb2 import *  # noqa: F401,F403
from .rpc_pb2_grpc import *  # noqa: F401,F403
