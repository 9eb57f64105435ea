"""Rows for the contract cases, and the way two units of work overlap on each backend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from taskforge_common.meters import UsageType
from taskforge_common.periods import Period
from taskforge_metering.application.ports import (
    CounterKey,
    MeteringStore,
    OutboxEvent,
    Reservation,
    StoredRecord,
    UnitOfWorkFactory,
)
from taskforge_metering.domain.entitlements import Entitlements, EntitlementStatus
from taskforge_metering.domain.usage import UsageRecord

ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
OTHER = "6e1c2a9b-7f3d-4f0e-8b1a-2c3d4e5f6a7b"
JOBS = UsageType.JOB_EXECUTION
CALLS = UsageType.API_CALL
WORKERS = UsageType.ACTIVE_WORKERS  # a gauge
MARCH = Period(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), 0)


def at(day: int, hour: int = 0, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def row_id(n: int) -> str:
    """Ids that sort the same in Python and in SQL: UUIDs with the number in the last digits."""
    return str(uuid.UUID(int=n))


def record(
    n: int,
    timestamp: datetime,
    *,
    organization_id: str = ORG,
    usage_type: UsageType = JOBS,
    quantity: str = "1",
    key: str | None = None,
    recorded_at: datetime | None = None,
    fingerprint: str | None = None,
) -> StoredRecord:
    return StoredRecord(
        UsageRecord(
            id=row_id(n),
            organization_id=organization_id,
            usage_type=usage_type,
            quantity=Decimal(quantity),
            timestamp=timestamp,
            idempotency_key=key or f"key-{n}",
            metadata={"queue": f"q{n}"},
            recorded_at=recorded_at or timestamp + timedelta(seconds=1),
        ),
        fingerprint or f"{n:064x}",
    )


def counter(usage_type: UsageType, window: Period, organization_id: str = ORG) -> CounterKey:
    return CounterKey(organization_id, usage_type, window)


def entitlements(
    version: int, *, organization_id: str = ORG, tier: str = "pro", limit: str = "100"
) -> Entitlements:
    return Entitlements(
        organization_id=organization_id,
        status=EntitlementStatus.ACTIVE,
        version=version,
        tier=tier,
        billing_cycle="monthly",
        period_anchor=MARCH.start,
        current_period_start=MARCH.start,
        current_period_end=MARCH.end,
        limits={JOBS: Decimal(limit), CALLS: Decimal("2.5")},
        usage_closed_before=at(1),
    )


def reservation(
    n: int,
    key: str,
    *,
    organization_id: str = ORG,
    usage_type: UsageType = JOBS,
    quantity: str = "1",
    status: str = "active",
    expires_at: datetime | None = None,
) -> Reservation:
    return Reservation(
        id=row_id(n),
        organization_id=organization_id,
        usage_type=usage_type,
        quantity=Decimal(quantity),
        idempotency_key=key,
        fingerprint=f"{n:064x}",
        status=status,
        window_start=MARCH.start,
        expires_at=expires_at or at(10, 12, 5),
        created_at=at(10, 12),
    )


def outbox_event(n: int, dedupe_key: str, organization_id: str = ORG) -> OutboxEvent:
    return OutboxEvent(
        id=row_id(n),
        event_type="usage.threshold_crossed",
        organization_id=organization_id,
        payload={"threshold": "80", "n": n},
        dedupe_key=dedupe_key,
        created_at=at(10, 12),
    )


Work = Callable[[MeteringStore], Awaitable[object]]


async def run_overlapping(
    backend: str, unit_of_work: UnitOfWorkFactory, first: Work, second: Work
) -> None:
    """Run `first` and `second` in two units of work that are open at the same time, each
    committing its own, as two concurrent use cases do."""
    if backend == "sqlite":
        # Transactions on SQLite run one at a time (taskforge_common.db.engine): in sequence.
        for work in (first, second):
            async with unit_of_work() as uow:
                await work(uow.store)
                await uow.commit()
    elif backend == "fake":
        # The fake never waits on a lock, so interleave the two by hand.
        one, two = unit_of_work(), unit_of_work()
        async with one, two:
            await first(one.store)
            await second(two.store)
            await one.commit()
            await two.commit()
    else:
        # Two real transactions on two connections, both begun before either works; the
        # second waits on the first one's row locks where they touch the same rows.
        both_begun = asyncio.Barrier(2)

        async def run(work: Work) -> None:
            async with unit_of_work() as uow:
                await both_begun.wait()
                await work(uow.store)
                await uow.commit()

        async with asyncio.timeout(10):
            await asyncio.gather(run(first), run(second))
