"""Contract: `usage_in_ranges`, what GetUsageSummaries reads for many (organisation, range)
queries at once, answers each range as `sum_counters` and `gauge_history` answer it alone."""

from __future__ import annotations

from decimal import Decimal

from taskforge_common.meters import UsageType, is_gauge
from taskforge_metering.application.ports import RangeUsage, UnitOfWorkFactory, UsageRange
from taskforge_metering.domain.aggregation import GaugeReading
from tests.metering.contract.builders import CALLS, JOBS, ORG, OTHER, WORKERS, at, record

STORAGE = UsageType.STORAGE
THIRD = "3c1d8e2f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"  # nothing stored


async def test_each_range_is_answered_as_alone_in_one_call(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    rows = [
        # ORG's counters: one before the 10th, two inside [10th, 12th), one exactly at its end.
        record(1, at(9, 23), quantity="100"),
        record(2, at(10), quantity="1.5"),
        record(3, at(11, 23, 59), quantity="2.25"),
        record(4, at(12), quantity="8"),
        record(5, at(11), usage_type=CALLS, quantity="3"),
        # ORG's storage: 10 GB from the 5th (carried into every range below), 20 GB from the
        # 11th, a report at the 12th (the first range's end: not inside it).
        record(6, at(5), usage_type=STORAGE, quantity="10"),
        record(7, at(11), usage_type=STORAGE, quantity="20"),
        record(8, at(12), usage_type=STORAGE, quantity="30"),
        # Tied before the 10th: the last recorded is the level going in.
        record(9, at(9, 18), usage_type=WORKERS, quantity="1", recorded_at=at(9, 18, 2)),
        record(10, at(9, 18), usage_type=WORKERS, quantity="2", recorded_at=at(9, 18, 1)),
        # Tied inside: recorded_at first, then id.
        record(11, at(10, 12), usage_type=WORKERS, quantity="3", recorded_at=at(10, 12, 3)),
        record(12, at(10, 12), usage_type=WORKERS, quantity="4", recorded_at=at(10, 12, 1)),
        record(13, at(10, 6), usage_type=WORKERS, quantity="5", recorded_at=at(10, 12, 1)),
        # OTHER: its own counters and storage, never in ORG's answers.
        record(14, at(10, 1), organization_id=OTHER, quantity="40"),
        record(15, at(1), organization_id=OTHER, usage_type=STORAGE, quantity="7"),
        record(16, at(11, 12), organization_id=OTHER, usage_type=STORAGE, quantity="9"),
    ]
    async with unit_of_work() as uow:
        await uow.store.insert_records(rows)
        await uow.commit()
    ranges = [
        UsageRange(ORG, at(10), at(12)),
        UsageRange(OTHER, at(10), at(12)),
        UsageRange(ORG, at(11), at(13)),  # overlaps the first
        UsageRange(THIRD, at(1), at(30)),
        UsageRange(ORG, at(10), at(12)),  # the first again
        UsageRange(ORG, at(1), at(2)),  # before anything of ORG
    ]
    async with unit_of_work.reader() as reader:
        answers = await reader.store.usage_in_ranges(ranges)
        assert await reader.store.usage_in_ranges([]) == []
        alone = []
        for r in ranges:
            counters = await reader.store.sum_counters(r.organization_id, r.start, r.end)
            levels_before: dict[UsageType, Decimal] = {}
            readings: dict[UsageType, list[GaugeReading]] = {}
            for usage_type in filter(is_gauge, UsageType):
                before, inside = await reader.store.gauge_history(
                    r.organization_id, usage_type, r.start, r.end
                )
                if before is not None:
                    levels_before[usage_type] = before
                if inside:
                    readings[usage_type] = inside
            alone.append(RangeUsage(counters, levels_before, readings))

    first = RangeUsage(
        counters={JOBS: Decimal("3.75"), CALLS: Decimal(3)},
        levels_before={STORAGE: Decimal(10), WORKERS: Decimal(1)},
        readings={
            STORAGE: [GaugeReading(at(11), Decimal(20))],
            WORKERS: [
                GaugeReading(at(10, 6), Decimal(5)),
                GaugeReading(at(10, 12), Decimal(4)),
                GaugeReading(at(10, 12), Decimal(3)),
            ],
        },
    )
    assert answers == [
        first,
        RangeUsage(
            counters={JOBS: Decimal(40)},
            levels_before={STORAGE: Decimal(7)},
            readings={STORAGE: [GaugeReading(at(11, 12), Decimal(9))]},
        ),
        RangeUsage(
            counters={JOBS: Decimal("10.25"), CALLS: Decimal(3)},
            levels_before={STORAGE: Decimal(10), WORKERS: Decimal(3)},
            readings={
                STORAGE: [GaugeReading(at(11), Decimal(20)), GaugeReading(at(12), Decimal(30))]
            },
        ),
        RangeUsage({}, {}, {}),
        first,
        RangeUsage({}, {}, {}),
    ]
    assert answers == alone
