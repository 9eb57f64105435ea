"""Contract: usage records — idempotent inserts per organisation, half-open filters, paging and
the orders of list_records and gauge_history."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from taskforge_common.meters import UsageType
from taskforge_metering.application.ports import UnitOfWorkFactory
from taskforge_metering.domain.aggregation import GaugeReading
from tests.metering.contract.builders import (
    CALLS,
    JOBS,
    ORG,
    OTHER,
    WORKERS,
    at,
    record,
    row_id,
)


async def test_a_key_is_one_record_per_organisation(unit_of_work: UnitOfWorkFactory) -> None:
    first = record(1, at(10), key="k")
    same_key_elsewhere = record(2, at(10), key="k", organization_id=OTHER)
    async with unit_of_work() as uow:
        inserted = await uow.store.insert_records([first, same_key_elsewhere])
        await uow.commit()
    assert inserted == {(ORG, "k"), (OTHER, "k")}

    retry = record(3, at(11), key="k", quantity="9", fingerprint="f" * 64)
    new, new_twice = record(4, at(11), key="n"), record(5, at(12), key="n")
    async with unit_of_work() as uow:
        inserted = await uow.store.insert_records([retry, new, new_twice])
        await uow.commit()
    assert inserted == {(ORG, "n")}

    async with unit_of_work() as uow:
        found = await uow.store.find_records([(ORG, "k"), (OTHER, "k"), (ORG, "n"), (ORG, "x")])
        assert await uow.store.count_records(ORG, None, None, None) == 2
        assert await uow.store.find_records([]) == {}
    assert found == {(ORG, "k"): first, (OTHER, "k"): same_key_elsewhere, (ORG, "n"): new}


async def _store_window_records(unit_of_work: UnitOfWorkFactory) -> None:
    """Job records in March 10–12 and around, inserted out of order; ids 1–3 tie at noon, with
    recorded_at in the reverse order of their ids."""
    noon = at(10, 12)
    rows = [
        record(7, at(12)),  # at the end of [10th, 12th): excluded by it
        record(3, noon, recorded_at=noon + timedelta(seconds=1)),
        record(6, at(9, 23)),  # before the start
        record(1, noon, recorded_at=noon + timedelta(seconds=3)),
        record(5, at(11)),
        record(2, noon, recorded_at=noon + timedelta(seconds=2)),
        record(4, at(10)),  # at the start: included
        record(8, at(11), usage_type=CALLS),
        record(9, at(11), organization_id=OTHER),
    ]
    async with unit_of_work() as uow:
        await uow.store.insert_records(rows)
        await uow.commit()


async def test_counts_filter_on_a_half_open_range(unit_of_work: UnitOfWorkFactory) -> None:
    await _store_window_records(unit_of_work)
    async with unit_of_work() as uow:
        store = uow.store
        assert await store.count_records(ORG, JOBS, at(10), at(12)) == 5
        assert await store.count_records(ORG, None, at(10), at(12)) == 6
        assert await store.count_records(ORG, JOBS, None, at(10)) == 1
        assert await store.count_records(ORG, JOBS, at(10, 12), None) == 5
        assert await store.count_records(ORG, None, None, None) == 8
        assert await store.count_records(OTHER, None, None, None) == 1
        assert await store.count_records(ORG, JOBS, at(12), at(12)) == 0


async def test_lists_page_by_event_time_then_id(unit_of_work: UnitOfWorkFactory) -> None:
    await _store_window_records(unit_of_work)
    pages: list[list[str]] = []
    after = None
    async with unit_of_work() as uow:
        while True:
            page = await uow.store.list_records(ORG, JOBS, at(10), at(12), after, 2)
            if not page:
                break
            pages.append([r.id for r in page])
            after = (page[-1].timestamp, page[-1].id)
        everything = await uow.store.list_records(ORG, None, None, None, None, 100)
        # A cursor between two records tied on event time resumes after its id.
        resumed = await uow.store.list_records(ORG, JOBS, None, None, (at(10, 12), row_id(1)), 2)
    assert pages == [[row_id(4), row_id(1)], [row_id(2), row_id(3)], [row_id(5)]]
    assert [r.id for r in everything] == [row_id(n) for n in (6, 4, 1, 2, 3, 5, 8, 7)]
    assert [r.id for r in resumed] == [row_id(2), row_id(3)]


async def test_sums_counters_of_a_half_open_range(unit_of_work: UnitOfWorkFactory) -> None:
    async with unit_of_work() as uow:
        await uow.store.insert_records(
            [
                record(1, at(10), quantity="1.5"),
                record(2, at(11, 23, 59), quantity="2.25"),
                record(3, at(12), quantity="100"),  # at the end
                record(4, at(9, 23), quantity="100"),  # before
                record(5, at(11), usage_type=CALLS, quantity="3"),
                record(6, at(11), usage_type=WORKERS, quantity="7"),  # a gauge: not summed
                record(7, at(11), organization_id=OTHER, quantity="100"),
            ]
        )
        await uow.commit()
    async with unit_of_work() as uow:
        totals = await uow.store.sum_counters(ORG, at(10), at(12))
        nothing = await uow.store.sum_counters(ORG, at(20), at(21))
    assert totals == {JOBS: Decimal("3.75"), CALLS: Decimal(3)}
    assert nothing == {}


async def test_gauge_history_breaks_event_time_ties_by_recorded_at_then_id(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    start, end = at(10), at(12)
    noon = at(10, 12)

    rows = [
        record(1, at(9), usage_type=WORKERS, quantity="7"),
        # Before the start, tied at 18:00: the last recorded is the level going in.
        record(5, at(9, 18), usage_type=WORKERS, quantity="1", recorded_at=at(9, 18, 2)),
        record(9, at(9, 18), usage_type=WORKERS, quantity="2", recorded_at=at(9, 18, 1)),
        # Inside, tied at noon: recorded_at first, then id.
        record(2, noon, usage_type=WORKERS, quantity="3", recorded_at=at(10, 12, 3)),
        record(8, noon, usage_type=WORKERS, quantity="4", recorded_at=at(10, 12, 1)),
        record(6, noon, usage_type=WORKERS, quantity="5", recorded_at=at(10, 12, 1)),
        record(3, at(11), usage_type=WORKERS, quantity="6"),
        record(4, end, usage_type=WORKERS, quantity="99"),  # at the end: excluded
        record(10, at(11), usage_type=UsageType.STORAGE, quantity="99"),
        record(11, at(11), usage_type=WORKERS, quantity="99", organization_id=OTHER),
    ]
    async with unit_of_work() as uow:
        await uow.store.insert_records(rows)
        await uow.commit()
    async with unit_of_work() as uow:
        history = await uow.store.gauge_history(ORG, WORKERS, start, end)
        from_the_first = await uow.store.gauge_history(ORG, WORKERS, at(1), at(9, 12))
    assert history == (
        Decimal(1),
        [
            GaugeReading(noon, Decimal(5)),
            GaugeReading(noon, Decimal(4)),
            GaugeReading(noon, Decimal(3)),
            GaugeReading(at(11), Decimal(6)),
        ],
    )
    assert from_the_first == (None, [GaugeReading(at(9), Decimal(7))])
