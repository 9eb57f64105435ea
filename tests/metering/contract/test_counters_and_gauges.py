"""Contract: counter totals per limit window (one row per window start), gauge levels with late
readings, replacing a window's counters, and the snapshot a limit check reads."""

from __future__ import annotations

from decimal import Decimal

from taskforge_common.meters import UsageType
from taskforge_common.periods import Period
from taskforge_metering.application.ports import GaugeChange, UnitOfWorkFactory, UsageSnapshot
from taskforge_metering.domain.aggregation import GaugeReading
from tests.metering.contract.builders import (
    CALLS,
    JOBS,
    MARCH,
    ORG,
    OTHER,
    WORKERS,
    at,
    counter,
    entitlements,
    reservation,
)

FEBRUARY = Period(at(1, month=2), MARCH.start, -1)
# Cut from another anchor: starts with March, ends later (and another period number).
MARCH_LONGER = Period(MARCH.start, at(5, month=4), 7)


async def test_counters_are_one_row_per_window_start(unit_of_work: UnitOfWorkFactory) -> None:
    async with unit_of_work() as uow:
        first = await uow.store.add_to_counters(
            {counter(JOBS, MARCH): Decimal(2), counter(CALLS, MARCH): Decimal("0.5")}
        )
        await uow.commit()
    async with unit_of_work() as uow:
        # Same start, another end: the same row, whose end stays the one first stored.
        second = await uow.store.add_to_counters({counter(JOBS, MARCH_LONGER): Decimal(3)})
        others = await uow.store.add_to_counters(
            {
                counter(JOBS, FEBRUARY): Decimal(10),
                counter(JOBS, MARCH, OTHER): Decimal(20),
            }
        )
        await uow.commit()
    assert first == {counter(JOBS, MARCH): Decimal(2), counter(CALLS, MARCH): Decimal("0.5")}
    assert second == {counter(JOBS, MARCH_LONGER): Decimal(5)}
    assert others == {
        counter(JOBS, FEBRUARY): Decimal(10),
        counter(JOBS, MARCH, OTHER): Decimal(20),
    }
    async with unit_of_work() as uow:
        march = await uow.store.snapshot(ORG, at(31, 23))
        after_the_stored_end = await uow.store.snapshot(ORG, at(2, month=4))
        february = await uow.store.snapshot(ORG, at(28, month=2))
    assert march.counters == {JOBS: Decimal(5), CALLS: Decimal("0.5")}
    assert after_the_stored_end.counters == {}
    assert february.counters == {JOBS: Decimal(10)}


async def test_one_batch_may_add_twice_to_one_counter_row(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        totals = await uow.store.add_to_counters(
            {counter(JOBS, MARCH): Decimal(2), counter(JOBS, MARCH_LONGER): Decimal(3)}
        )
        await uow.commit()
    assert max(totals.values()) == Decimal(5)
    async with unit_of_work() as uow:
        assert (await uow.store.snapshot(ORG, at(10))).counters == {JOBS: Decimal(5)}


async def test_gauges_keep_the_latest_reading_by_event_time(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    workers, queues = (ORG, WORKERS), (ORG, UsageType.QUEUES)
    steps = [
        ({workers: GaugeReading(at(10, 12), Decimal(5))}, {workers: GaugeChange(None, Decimal(5))}),
        # Late: older than the stored reading, changes nothing.
        ({workers: GaugeReading(at(10, 11), Decimal(3))}, {}),
        # As old as the stored one: replaces it.
        (
            {
                workers: GaugeReading(at(10, 12), Decimal(6)),
                queues: GaugeReading(at(1), Decimal(2)),
            },
            {workers: GaugeChange(Decimal(5), Decimal(6)), queues: GaugeChange(None, Decimal(2))},
        ),
        (
            {
                workers: GaugeReading(at(10, 13), Decimal(4)),
                queues: GaugeReading(at(1), Decimal(1)),
                (OTHER, WORKERS): GaugeReading(at(10), Decimal(50)),
            },
            {
                workers: GaugeChange(Decimal(6), Decimal(4)),
                queues: GaugeChange(Decimal(2), Decimal(1)),
                (OTHER, WORKERS): GaugeChange(None, Decimal(50)),
            },
        ),
    ]
    for readings, changes in steps:
        async with unit_of_work() as uow:
            assert await uow.store.update_gauges(readings) == changes
            await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.store.update_gauges({}) == {}
        snapshot = await uow.store.snapshot(ORG, at(10, 14))
    assert snapshot.gauges == {WORKERS: Decimal(4), UsageType.QUEUES: Decimal(1)}


async def test_replacing_counters_drops_every_overlapping_window(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        await uow.store.add_to_counters(
            {
                counter(JOBS, MARCH): Decimal(5),
                counter(CALLS, MARCH): Decimal(6),
                counter(JOBS, FEBRUARY): Decimal(7),
                counter(JOBS, MARCH, OTHER): Decimal(8),
            }
        )
        await uow.commit()
    from_the_fifth = Period(at(5), at(5, month=4), 0)
    async with unit_of_work() as uow:
        await uow.store.replace_counters(ORG, from_the_fifth, {JOBS: Decimal(3)})
        await uow.commit()
    async with unit_of_work() as uow:
        again = await uow.store.add_to_counters({counter(JOBS, from_the_fifth): Decimal(1)})
        await uow.commit()
    assert again == {counter(JOBS, from_the_fifth): Decimal(4)}
    async with unit_of_work() as uow:
        store = uow.store
        assert (await store.snapshot(ORG, at(10))).counters == {JOBS: Decimal(4)}
        assert (await store.snapshot(ORG, at(3))).counters == {}  # March 1st's row is gone
        assert (await store.snapshot(ORG, at(3, month=4))).counters == {JOBS: Decimal(4)}
        assert (await store.snapshot(ORG, at(15, month=2))).counters == {JOBS: Decimal(7)}
        assert (await store.snapshot(OTHER, at(10))).counters == {JOBS: Decimal(8)}

    async with unit_of_work() as uow:  # nothing to store: the window's counters are cleared
        await uow.store.replace_counters(ORG, from_the_fifth, {})
        await uow.commit()
    async with unit_of_work() as uow:
        assert (await uow.store.snapshot(ORG, at(10))).counters == {}


async def test_snapshot_counts_the_window_of_now_and_live_reservations(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    now = at(10, 12)
    async with unit_of_work() as uow:
        store = uow.store
        await store.add_to_counters(
            {
                counter(JOBS, FEBRUARY): Decimal(100),
                counter(JOBS, MARCH): Decimal(3),
                counter(CALLS, MARCH): Decimal(4),
                counter(JOBS, MARCH, OTHER): Decimal(100),
            }
        )
        await store.update_gauges({(ORG, WORKERS): GaugeReading(at(2), Decimal(9))})
        for r in [
            reservation(1, "a", quantity="1.5"),
            reservation(2, "b", quantity="2"),
            reservation(3, "c", quantity="100", expires_at=now),  # expires now: not live
            reservation(4, "d", quantity="100", status="committed"),
            reservation(5, "e", quantity="100", status="released"),
            reservation(6, "f", quantity="0.25", usage_type=CALLS),
            reservation(7, "g", quantity="100", organization_id=OTHER),
        ]:
            assert await store.insert_reservation(r)
        await store.save_entitlements(entitlements(1), now)
        await uow.commit()

    async with unit_of_work() as uow:
        store = uow.store
        everything = await store.snapshot(ORG, now)
        jobs = await store.snapshot(ORG, now, JOBS)
        at_the_start = await store.snapshot(ORG, MARCH.start)
        at_the_end = await store.snapshot(ORG, MARCH.end)
        view = await store.limit_view(ORG, now)
        view_of_jobs = await store.limit_view(ORG, now, JOBS)
        view_without_entitlements = await store.limit_view(OTHER, now, CALLS)
    assert everything.counters == {JOBS: Decimal(3), CALLS: Decimal(4)}
    assert everything.gauges == {WORKERS: Decimal(9)}
    assert everything.reserved == {JOBS: Decimal("3.5"), CALLS: Decimal("0.25")}
    assert jobs == UsageSnapshot({JOBS: Decimal(3)}, {}, {JOBS: Decimal("3.5")})
    assert at_the_start.counters == {JOBS: Decimal(3), CALLS: Decimal(4)}
    assert at_the_end.counters == {}
    assert view == (entitlements(1), everything)
    assert view_of_jobs == (entitlements(1), jobs)
    assert view_without_entitlements[0] is None
    assert view_without_entitlements[1].counters == {}
    assert view_without_entitlements[1].reserved == {}
