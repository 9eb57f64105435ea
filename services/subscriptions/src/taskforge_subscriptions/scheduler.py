"""The billing cycle run by the service itself, every interval: periods close, drafts finalize,
invoices go overdue and subscriptions are suspended without anyone calling RunBillingCycle.

Every replica runs it: a billing run is safe to run twice at once (each change locks its row and
re-checks it is still due), so no leader is needed. A failing run is logged and the next one
comes an interval later; the loop ends only when its stop event is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Protocol

from taskforge_common.caller import Caller
from taskforge_common.clock import Clock
from taskforge_subscriptions.application.billing_run import RunSummary

logger = logging.getLogger(__name__)

# Who the audit trail names for the scheduler's changes; an operator, bound to no organisation.
SCHEDULER_CALLER = Caller("scheduler", None, is_admin=True)


class BillingRunner(Protocol):
    async def run(self, as_of: datetime, caller: Caller) -> RunSummary: ...


class BillingScheduler:
    def __init__(self, billing: BillingRunner, clock: Clock, interval: timedelta) -> None:
        if interval <= timedelta(0):
            raise ValueError("the billing run interval is positive (a zero one runs no scheduler)")
        self._billing = billing
        self._clock = clock
        self._interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        """A billing run at once, then one an interval after each ends, until `stop` is set.
        A run in progress when `stop` is set finishes first (its transactions are short);
        cancelling the task interrupts it, and the next run picks up where it stopped."""
        logger.info("billing scheduler started (every %g s)", self._interval.total_seconds())
        while not stop.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval.total_seconds())
        logger.info("billing scheduler stopped")

    async def run_once(self) -> RunSummary | None:
        """One billing run as of now; None when it failed (logged, never raised)."""
        as_of = self._clock.now()
        try:
            summary = await self._billing.run(as_of, SCHEDULER_CALLER)
        except Exception:
            logger.exception("billing run as of %s failed; retrying in %s", as_of, self._interval)
            return None
        counts = dataclasses.asdict(summary)
        logger.info(
            "billing run as of %s: %s",
            as_of.isoformat(),
            ", ".join(f"{name} {count}" for name, count in counts.items()),
            extra={"billing_run": counts},
        )
        return summary
