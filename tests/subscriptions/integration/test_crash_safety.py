"""Billing runs killed with SIGKILL at random points and re-run, and two runs at once, each in a
process of its own: in the end exactly one period-end invoice per (subscription, period), every
one finalized, and invoice numbers gap-free (SPEC §4; the seed's defect §13.10)."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from taskforge_common.caller import Caller
from taskforge_common.clock import ManualClock
from taskforge_common.db.engine import Database
from taskforge_common.page_tokens import PageTokens
from taskforge_subscriptions.application.billing_run import BillingSettings
from taskforge_subscriptions.application.commands import CreateSubscription
from taskforge_subscriptions.application.use_cases import UseCases
from taskforge_subscriptions.domain.plans import BillingCycle, Tier
from taskforge_subscriptions.storage import tables
from taskforge_subscriptions.storage.unit_of_work import SqlUnitOfWorkFactory
from tests.subscriptions.fake_usage import FakeUsage

pytestmark = pytest.mark.e2e

SUBSCRIPTIONS = 12
START = datetime(2026, 1, 31, 10, tzinfo=UTC)
AS_OF = datetime(2026, 7, 31, 10, tzinfo=UTC)  # six monthly periods have ended
PERIODS = 6
ADMIN = Caller("operator", None, is_admin=True)


async def subscribe_all(database: Database) -> None:
    settings = BillingSettings(timedelta(0), timedelta(days=14), Decimal("0.10"))
    use_cases = UseCases.build(
        SqlUnitOfWorkFactory(database),
        FakeUsage(),
        ManualClock(AS_OF),
        settings,
        PageTokens(b"k" * 32),
    )
    for index in range(SUBSCRIPTIONS):
        await use_cases.subscriptions.create(
            CreateSubscription(
                f"00000000-0000-4000-8000-{index:012d}",
                Tier.STARTER,
                BillingCycle.MONTHLY,
                True,
                start_time=START,
            ),
            ADMIN,
        )


async def child(url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.subscriptions.billing_child",
        url,
        AS_OF.isoformat(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process) -> None:
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert b"finished" in stdout


async def assert_billed_exactly_once(database: Database) -> None:
    invoices = tables.invoices
    async with database.read_only_transaction() as transaction:
        session = transaction.session
        per_period = (
            await session.execute(
                select(invoices.c.subscription_id, invoices.c.period_start, func.count())
                .where(invoices.c.kind == "period_end")
                .group_by(invoices.c.subscription_id, invoices.c.period_start)
            )
        ).all()
        numbers = sorted(
            n for (n,) in await session.execute(select(invoices.c.number)) if n is not None
        )
        drafts = await session.scalar(
            select(func.count()).select_from(invoices).where(invoices.c.status == "draft")
        )
    assert len(per_period) == SUBSCRIPTIONS * PERIODS
    assert {count for *_, count in per_period} == {1}
    assert drafts == 0
    # Start invoices and period ends, numbered 1…N without a gap or a repeat.
    expected = SUBSCRIPTIONS * (PERIODS + 1)
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, expected + 1)]


async def progress(database: Database) -> int:
    """Period-end invoices created plus those finalized: 0 … 2 × subscriptions × periods."""
    invoices = tables.invoices
    async with database.read_only_transaction() as transaction:
        rows = await transaction.session.execute(
            select(invoices.c.status).where(invoices.c.kind == "period_end")
        )
        return sum(1 if status == "draft" else 2 for (status,) in rows)


async def test_runs_killed_at_random_points_then_rerun_bill_each_period_once(
    subscriptions_database: Database,
) -> None:
    await subscribe_all(subscriptions_database)
    total = 2 * SUBSCRIPTIONS * PERIODS
    chance = random.Random(20261201)
    # Kill points chosen by progress, not by time, so every kill lands inside a run: while
    # periods are being closed and while drafts are being finalized.
    half = total // 2  # every period closed, none finalized yet
    targets = sorted(chance.sample(range(1, half), 3) + chance.sample(range(half + 1, total), 3))
    kills = []
    for target in targets:
        process = await child(subscriptions_database.url)
        # Polling the database: the progress lives there, not in an event of this process.
        while process.returncode is None and await progress(subscriptions_database) < target:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
            kills.append(await progress(subscriptions_database))
        await process.wait()
    assert len(kills) >= 3, f"most runs must be killed part-way, got {kills}"
    assert any(k < half for k in kills), kills  # while periods were being closed
    assert any(k > half for k in kills), kills  # while drafts were being finalized
    await finish(await child(subscriptions_database.url))
    await assert_billed_exactly_once(subscriptions_database)


@pytest.mark.postgres
async def test_two_runs_at_once_bill_each_period_once(subscriptions_database: Database) -> None:
    if subscriptions_database.dialect != "postgresql":
        pytest.skip("two processes at once are a PostgreSQL matter (SKIP LOCKED)")
    await subscribe_all(subscriptions_database)
    first, second = await child(subscriptions_database.url), await child(subscriptions_database.url)
    await asyncio.gather(finish(first), finish(second))
    await assert_billed_exactly_once(subscriptions_database)
