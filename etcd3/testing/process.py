"""Helpers about etcd processes: their environment, their log, their thread states."""

from __future__ import annotations

import os
from typing import Any, Dict, TypeVar

_LOG_TAIL_LINES = 40


def server_env() -> Dict[str, str]:
    """The environment etcd runs with: ours without ``ETCD_*`` variables."""
    # etcd reads ETCD_* variables as flags; ours (ETCD_BINARY...) would only
    # produce warnings, a user's ETCD_NAME etc. would change the server.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ETCD_") or k == "ETCD_UNSUPPORTED_ARCH"
    }


def log_tail(path: str, lines: int = _LOG_TAIL_LINES) -> str:
    """The last *lines* lines of the log file *path*, or ``'(no log)'``."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(data.splitlines()[-lines:])


def all_threads_stopped(pid: int) -> bool:
    """True when every thread of ``pid`` is stopped by a signal (state T), or when
    /proc cannot tell (not Linux): then SIGSTOP's delivery is all one can wait for."""
    task_dir = f"/proc/{pid}/task"
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return True
    for tid in tids:
        try:
            with open(f"{task_dir}/{tid}/stat", "rb") as stat:
                # "pid (comm) S ...": the state follows the last ')' (comm may hold one).
                state = stat.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # the thread exited
        if state not in (b"T", b"t"):
            return False
    return True


L = TypeVar("L", bound="Launcher")


class Launcher:
    """``with launcher:`` starts it and stops it after; a start that fails part-way
    stops what it began before the error propagates."""

    def start(self: L) -> L:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: L) -> L:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()
