"""What a direct call costs in Python before the network: argument checks and request
building of get, put, delete and a small transaction, through a real client whose
transport answers at once (no etcd needed).

    python benchmarks/bench_request_building.py [--rounds N] [--bytecodes]

Prints the best time per call in ns (CPU time, the minimum over ``--rounds`` rounds,
so a busy machine disturbs it less). To compare two trees, run it with each on
``PYTHONPATH``, alternating, and compare the minimums. ``--bytecodes`` counts the
Python bytecodes and calls one call executes instead: exact on a loaded machine
(work done in C, the codec's, is not counted).
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from types import FrameType
from typing import Any, Callable, Dict, List, Optional

import etcd3
from etcd3 import codec


class _Reply:
    kvs: list = []
    deleted = 1
    succeeded = True
    responses: list = []
    header = None


class _Batcher:
    def call(self, request: bytes, fields: Any, timeout: Any = None,
             context: str = "") -> Any:
        return _Reply


def calls(client: etcd3.Etcd3Client) -> Dict[str, Callable[[], Any]]:
    t = client.transactions
    return {
        "get": lambda: client.get("/bench/key"),
        "get, 2 options": lambda: client.get("/bench/key", serializable=True, revision=5),
        "put": lambda: client.put("/bench/key", "value"),
        "delete": lambda: client.delete("/bench/key"),
        "txn, 1 compare 3 ops": lambda: client.transaction(
            [t.value("/k") == "v"], [t.put("/k", "w"), t.get("/k")], [t.get("/k")]),
    }


def bytecodes(call: Callable[[], Any]) -> List[int]:
    """``[bytecodes, Python calls]`` one ``call()`` executes."""
    count = [0, 0]

    def tracer(frame: FrameType, event: str, arg: Any) -> Optional[Callable[..., Any]]:
        frame.f_trace_opcodes = True
        count[0 if event == "opcode" else 1] += event in ("opcode", "call")
        return tracer

    call()  # warm up
    sys.settrace(tracer)
    try:
        call()
    finally:
        sys.settrace(None)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--bytecodes", action="store_true",
                        help="count bytecodes per call instead of timing")
    args = parser.parse_args()
    client = etcd3.Etcd3Client()
    # The transport is replaced: only the Python side of each call is timed.
    client._call = lambda method, request, timeout=None, context="": _Reply  # type: ignore
    client._read_batcher = _Batcher()  # type: ignore[assignment]
    try:
        print(f"codec: {codec.IMPLEMENTATION}")
        for name, call in calls(client).items():
            if args.bytecodes:
                ops, frames = bytecodes(call)
                print(f"{name:22} {ops:5} bytecodes {frames:3} Python calls")
                continue
            number = 2_000 if name.startswith("txn") else 10_000
            best = min(timeit.repeat(call, number=number, repeat=args.rounds,
                                     timer=time.thread_time))
            print(f"{name:22} {best / number * 1e9:8.0f} ns")
    finally:
        client.close()


if __name__ == "__main__":
    main()
