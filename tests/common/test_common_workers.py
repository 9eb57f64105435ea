"""run_workers: signals reach every worker, and one worker dying takes the set down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# A worker that writes its pid to DIR, then waits for SIGTERM and exits 0; with a number as
# CODE it exits with it soon, with "starting" SIGTERM kills it.
WORKER = """
import os, signal, sys, time, pathlib
code = sys.argv[2]
pathlib.Path(sys.argv[1], str(os.getpid())).touch()
if code.isdigit():
    time.sleep(0.5)
    sys.exit(int(code))
if code != "starting":  # a worker still starting up has no handler yet: SIGTERM kills it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    time.sleep(0.05)
"""

SUPERVISOR = f"""
import os, sys
from taskforge_common.workers import run_workers
directory, codes = sys.argv[1], sys.argv[2:]
sys.exit(run_workers([[sys.executable, "-c", {WORKER!r}, directory, c] for c in codes], os.environ))
"""


def supervise(directory: Path, *codes: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(directory), *codes], stderr=subprocess.PIPE
    )


def wait_for_workers(directory: Path, count: int) -> list[int]:
    for _ in range(200):
        pids = [int(p.name) for p in directory.iterdir()]
        if len(pids) == count:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"expected {count} workers, saw {list(directory.iterdir())}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "Z"


# "starting": that worker has no SIGTERM handler yet and dies of the passed-on signal itself,
# which still counts as a clean stop.
@pytest.mark.parametrize("second", ["", "starting"], ids=["graceful", "still-starting"])
def test_sigterm_reaches_every_worker_and_the_set_exits_cleanly(
    tmp_path: Path, second: str
) -> None:
    supervisor = supervise(tmp_path, "", second)
    pids = wait_for_workers(tmp_path, 2)
    assert all(alive(pid) for pid in pids)
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=10) == 0
    assert not any(alive(pid) for pid in pids)


def test_a_worker_that_dies_takes_the_others_down_with_its_status(tmp_path: Path) -> None:
    supervisor = supervise(tmp_path, "", "3")
    pids = wait_for_workers(tmp_path, 2)
    assert supervisor.wait(timeout=10) == 3
    assert not any(alive(pid) for pid in pids)
    assert supervisor.stderr is not None
    assert b"exited with 3; stopping the others" in supervisor.stderr.read()
