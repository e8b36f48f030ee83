"""Every script in examples/ runs to completion against a real etcd it starts itself.

Each runs as a subprocess (the way a user runs it), with ``ETCD_ENDPOINTS`` unset so
it starts its own etcd (or 3-member cluster), and must exit 0 and print its key line.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import List

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"

CASES = [
    ("quickstart.py", [], "quickstart done."),
    ("threaded_service.py", ["--threads", "8", "--seconds", "4.5"], "0 failed"),
    ("bulk_loader.py", ["--keys", "20000"], "bulk load complete: 20000 keys"),
    ("watch_fanout.py", [], "210 of 210 subscribers received all 100 events exactly once"),
    ("locks_and_elections.py", [], "observer saw leaders: ['alice', 'alice v2', 'bob']"),
    ("seed_tour.py", [], "seed tour done."),
    ("aio_seed_tour.py", [], "aio seed tour done."),
    ("aio_fanout_server.py", [],
     "100 of 100 subscribers received all 100 events exactly once, in order"),
    ("feature_flags.py", [], "feature flags done."),
    ("metrics_server.py", [], "metrics server done: counters moved."),
]


def test_every_example_is_covered() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == {name for name, _, _ in CASES}


@pytest.mark.parametrize("script,args,expected", CASES, ids=[c[0] for c in CASES])
def test_example_runs(script: str, args: List[str], expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ETCD_ENDPOINTS"}
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args],
                            capture_output=True, text=True, timeout=60, env=env,
                            cwd=str(EXAMPLES.parent))
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{output}"
    assert expected in result.stdout, f"{script} did not print {expected!r}:\n{output}"
