"""A billing run in a process of its own, for the crash tests: killed with SIGKILL at a random
point, or run to the end beside another one.

    python -m tests.subscriptions.billing_child <database url> <as_of, ISO 8601>

Usage comes from a stand-in that answers 100 jobs for every stretch, so the expected invoices
are known; the grace is 0, so one run closes and finalizes every period."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from taskforge_common.caller import Caller
from taskforge_common.clock import ManualClock
from taskforge_common.db.engine import Database
from taskforge_common.meters import UsageType
from taskforge_subscriptions.application.billing_run import BillingRun, BillingSettings
from taskforge_subscriptions.application.usage import UsageQuery, UsageStanding
from taskforge_subscriptions.storage.unit_of_work import SqlUnitOfWorkFactory

JOBS_PER_STRETCH = Decimal(100)
SETTINGS = BillingSettings(timedelta(0), timedelta(days=14), Decimal("0.10"), batch_size=7)


class HundredJobs:
    async def summaries(self, queries: Sequence[UsageQuery]) -> list[Mapping[UsageType, Decimal]]:
        return [{UsageType.JOB_EXECUTION: JOBS_PER_STRETCH} for _ in queries]

    async def standing(self, organization_id: str) -> UsageStanding:
        raise NotImplementedError("a billing run does not ask for it")


async def run(url: str, as_of: datetime) -> None:
    database = Database(url, pool_size=2)
    try:
        billing = BillingRun(
            SqlUnitOfWorkFactory(database), HundredJobs(), ManualClock(as_of), SETTINGS
        )
        summary = await billing.run(as_of, Caller("crash-test", None, is_admin=True))
        sys.stdout.write(f"finished {summary}\n")
    finally:
        await database.dispose()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], datetime.fromisoformat(sys.argv[2])))
