"""The billing scheduler: a run as of the clock's now at once and then every interval, as the
scheduler (an operator bound to no organisation); failures are logged and survived; the stop
event ends the loop."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from taskforge_common.caller import Caller
from taskforge_common.clock import ManualClock
from taskforge_subscriptions.application.billing_run import RunSummary
from taskforge_subscriptions.scheduler import BillingScheduler

START = datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
TICK = timedelta(milliseconds=20)


class FakeBillingRun:
    """Records each run; fails the runs listed in `failures` (by their number, from 0); moves
    the clock a minute on after each, as time passes between real runs."""

    def __init__(self, clock: ManualClock, failures: frozenset[int] = frozenset()) -> None:
        self.clock = clock
        self.failures = failures
        self.runs: list[tuple[datetime, Caller]] = []
        self.ran = asyncio.Event()

    async def run(self, as_of: datetime, caller: Caller) -> RunSummary:
        number = len(self.runs)
        self.runs.append((as_of, caller))
        self.clock.advance(timedelta(minutes=1))
        self.ran.set()
        if number in self.failures:
            raise RuntimeError("the database went away")
        return RunSummary(invoices_created=number, invoices_finalized=1)

    async def wait_for_runs(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.runs) < count:
                self.ran.clear()
                await self.ran.wait()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


async def test_runs_at_once_then_every_interval_as_the_scheduler(clock: ManualClock) -> None:
    billing = FakeBillingRun(clock)
    stop = asyncio.Event()
    task = asyncio.create_task(BillingScheduler(billing, clock, TICK).run(stop))

    await billing.wait_for_runs(3)
    stop.set()
    await asyncio.wait_for(task, 1)

    as_of = [when for when, _ in billing.runs]
    assert as_of[:3] == [START, START + timedelta(minutes=1), START + timedelta(minutes=2)]
    assert {caller for _, caller in billing.runs} == {Caller("scheduler", None, is_admin=True)}


async def test_the_summary_is_logged_at_info(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    billing = FakeBillingRun(clock)
    with caplog.at_level(logging.INFO, logger="taskforge_subscriptions.scheduler"):
        summary = await BillingScheduler(billing, clock, TICK).run_once()

    assert summary == RunSummary(invoices_created=0, invoices_finalized=1)
    (record,) = [r for r in caplog.records if "billing run as of" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert START.isoformat() in record.getMessage()
    assert "invoices_finalized 1" in record.getMessage()
    assert record.billing_run["invoices_finalized"] == 1  # type: ignore[attr-defined]


async def test_a_failing_run_is_logged_and_the_loop_goes_on(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    billing = FakeBillingRun(clock, failures=frozenset({0, 1}))
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="taskforge_subscriptions.scheduler"):
        task = asyncio.create_task(BillingScheduler(billing, clock, TICK).run(stop))
        await billing.wait_for_runs(3)
        stop.set()
        await asyncio.wait_for(task, 1)

    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 2
    assert all(r.exc_info and "the database went away" in str(r.exc_info[1]) for r in failures)
    assert any("invoices_created 2" in r.getMessage() for r in caplog.records)
    assert task.exception() is None  # the loop ended because it was told to, not by error


async def test_the_stop_event_ends_the_wait_at_once(clock: ManualClock) -> None:
    billing = FakeBillingRun(clock)
    stop = asyncio.Event()
    task = asyncio.create_task(BillingScheduler(billing, clock, timedelta(hours=1)).run(stop))
    await billing.wait_for_runs(1)

    stop.set()
    await asyncio.wait_for(task, 1)  # not an hour
    assert len(billing.runs) == 1


async def test_a_stop_set_before_starting_runs_nothing(clock: ManualClock) -> None:
    billing = FakeBillingRun(clock)
    stop = asyncio.Event()
    stop.set()
    await BillingScheduler(billing, clock, TICK).run(stop)
    assert billing.runs == []


def test_a_zero_interval_is_refused(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="positive"):
        BillingScheduler(FakeBillingRun(clock), clock, timedelta(0))
