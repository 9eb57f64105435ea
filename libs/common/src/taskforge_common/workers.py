"""Several server processes on one address.

A Python process computes on one core at a time (the GIL), so a host with spare cores runs one
worker per core: each is a complete server bound to the same host and port, and the kernel
spreads incoming connections across them (SO_REUSEPORT, on by default in gRPC on Linux). A call
is served whole by one worker; workers share nothing but the database.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from types import FrameType

logger = logging.getLogger(__name__)


def run_workers(commands: Sequence[Sequence[str]], env: Mapping[str, str]) -> int:
    """Run one worker per command (usually copies of one) until they exit; answer the exit
    status.

    SIGTERM and SIGINT are passed on to every worker, which stop gracefully on their own (a
    worker still starting up dies of the signal itself, which counts as stopping cleanly). A
    worker that exits while nobody asked it to takes the others down with it, and its status
    (1 if it claimed success) is answered: the orchestrator restarts the whole set, and a
    half-alive set never hides behind the survivors' health checks.
    """
    if not commands:
        raise ValueError("at least one worker is needed")
    workers = [subprocess.Popen(list(command), env=dict(env)) for command in commands]
    logger.info("started %d workers", len(workers), extra={"pids": [w.pid for w in workers]})
    stopping = False
    status = 0
    sent: set[int] = set()  # the signals passed on to the workers

    def stop_all(signum: int) -> None:
        sent.add(signum)
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signum)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        stop_all(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while any(worker.returncode is None for worker in workers):
            pid, wait_status = os.wait()
            worker = next((w for w in workers if w.pid == pid), None)
            if worker is None:
                continue
            worker.returncode = os.waitstatus_to_exitcode(wait_status)
            code = _exit_status(worker.returncode)
            if not stopping:
                logger.error("worker %d exited with %d; stopping the others", pid, code)
                stopping = True
                status = code or 1
                stop_all(signal.SIGTERM)
            elif code != 0 and status == 0 and -worker.returncode not in sent:
                status = code
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status


def _exit_status(returncode: int) -> int:
    """A shell-style status: a worker killed by signal N counts as 128 + N."""
    return 128 - returncode if returncode < 0 else returncode
