"""gRPC settings that must be chosen before ``grpc`` is imported.

gRPC's default poller on Linux (``epoll1``) keeps one process-wide "active poller"
thread. A child forked while a parent thread is inside a gRPC call inherits that
state without the thread, and its first gRPC call may abort ("Check failed:
g_active_poller != worker"): about one fork in ten to one in three of a busy parent
here. gRPC's ``poll`` poller has no such global state (60 of 60 such forks
survived), so etcd3 picks it when it is imported before gRPC and the
``GRPC_POLL_STRATEGY`` environment variable is not set. Set that variable yourself
(e.g. ``GRPC_POLL_STRATEGY=epoll1``) to choose otherwise.
"""

from __future__ import annotations

import os
import sys

#: True when the process runs gRPC with a poller that survives a fork of a busy
#: parent (decided here, before gRPC starts).
FORK_SAFE_POLLER: bool

if "grpc" not in sys.modules and "GRPC_POLL_STRATEGY" not in os.environ \
        and sys.platform.startswith("linux"):
    os.environ["GRPC_POLL_STRATEGY"] = "poll"
FORK_SAFE_POLLER = (not sys.platform.startswith("linux")
                    or os.environ.get("GRPC_POLL_STRATEGY", "").split(",")[0] == "poll")
