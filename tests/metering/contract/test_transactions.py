"""Contract: units of work — nothing stays unless committed, and two that overlap both keep
their changes (a counter both add to keeps both increments)."""

from __future__ import annotations

from decimal import Decimal
from typing import cast

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from taskforge_metering.application.ports import MeteringStore, UnitOfWorkFactory
from taskforge_metering.domain.aggregation import GaugeReading
from tests.fakes.metering_store import ReadOnlyStorageError
from tests.metering.contract.builders import (
    JOBS,
    MARCH,
    ORG,
    WORKERS,
    Work,
    at,
    counter,
    entitlements,
    outbox_event,
    record,
    reservation,
    run_overlapping,
)

# How each backend refuses a write through a reader: SQLite's query_only, PostgreSQL's
# read-only connections, the fake's read-only store.
REFUSED = (DBAPIError, asyncpg.exceptions.ReadOnlySQLTransactionError, ReadOnlyStorageError)


async def _write_everything(store: MeteringStore) -> None:
    await store.save_entitlements(entitlements(1), at(10))
    await store.insert_records([record(1, at(10), key="k")])
    await store.add_to_counters({counter(JOBS, MARCH): Decimal(1)})
    await store.update_gauges({(ORG, WORKERS): GaugeReading(at(10), Decimal(3))})
    await store.insert_reservation(reservation(2, "r"))
    assert await store.add_outbox_events([outbox_event(3, "o")]) == 1


async def _assert_nothing_stored(unit_of_work: UnitOfWorkFactory) -> None:
    async with unit_of_work() as uow:
        store = uow.store
        assert await store.get_entitlements([ORG]) == {}
        assert await store.find_records([(ORG, "k")]) == {}
        assert await store.count_records(ORG, None, None, None) == 0
        entitled, snapshot = await store.limit_view(ORG, at(10, 1))
        assert entitled is None
        assert (snapshot.counters, snapshot.gauges, snapshot.reserved) == ({}, {}, {})
        assert await store.get_reservation_by_key(ORG, "r") is None
        assert await store.add_outbox_events([outbox_event(3, "o")]) == 1  # the key is free


async def test_a_unit_of_work_not_committed_leaves_nothing(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        await _write_everything(uow.store)
    await _assert_nothing_stored(unit_of_work)


async def test_a_failing_unit_of_work_leaves_nothing(unit_of_work: UnitOfWorkFactory) -> None:
    async def failing_use_case() -> None:
        async with unit_of_work() as uow:
            await _write_everything(uow.store)
            raise RuntimeError("use case failed")

    with pytest.raises(RuntimeError, match="use case failed"):
        await failing_use_case()
    await _assert_nothing_stored(unit_of_work)


async def test_a_unit_of_work_sees_its_own_writes_and_commits_them(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        await _write_everything(uow.store)
        assert (await uow.store.snapshot(ORG, at(10, 1))).counters == {JOBS: Decimal(1)}
        assert await uow.store.count_records(ORG, None, None, None) == 1
        await uow.commit()
    async with unit_of_work.reader() as reader:
        entitled, snapshot = await reader.store.limit_view(ORG, at(10, 1))
        assert entitled == entitlements(1)
        assert snapshot.counters == {JOBS: Decimal(1)}
        assert snapshot.gauges == {WORKERS: Decimal(3)}
        assert snapshot.reserved == {JOBS: Decimal(1)}
        assert await reader.store.count_records(ORG, None, None, None) == 1


async def test_a_reader_refuses_writes(unit_of_work: UnitOfWorkFactory) -> None:
    writes: list[Work] = [
        lambda store: store.insert_records([record(1, at(10), key="k")]),
        lambda store: store.add_to_counters({counter(JOBS, MARCH): Decimal(1)}),
        lambda store: store.insert_reservation(reservation(2, "r")),
    ]
    for write in writes:
        with pytest.raises(REFUSED, match=r"(?i)read-?only"):
            async with unit_of_work.reader() as reader:
                await write(cast(MeteringStore, reader.store))
    await _assert_nothing_stored(unit_of_work)


async def test_a_reader_sees_what_was_committed_before_each_read(
    backend: str, unit_of_work: UnitOfWorkFactory
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite runs one transaction at a time: a write cannot commit mid-read")
    async with unit_of_work.reader() as reader:
        assert await reader.store.count_records(ORG, None, None, None) == 0
        async with unit_of_work() as uow:
            await uow.store.insert_records([record(1, at(10))])
            await uow.commit()
        assert await reader.store.count_records(ORG, None, None, None) == 1


async def test_overlapping_units_of_work_keep_both_increments(
    backend: str, unit_of_work: UnitOfWorkFactory
) -> None:
    key = counter(JOBS, MARCH)

    def adding(amount: str) -> Work:
        async def work(store: MeteringStore) -> None:
            await store.snapshot(ORG, at(10))  # what a limit check reads first
            await store.add_to_counters({key: Decimal(amount)})

        return work

    await run_overlapping(backend, unit_of_work, adding("2"), adding("3"))
    async with unit_of_work() as uow:
        assert (await uow.store.snapshot(ORG, at(10))).counters == {JOBS: Decimal(5)}


async def test_overlapping_units_of_work_keep_both_records(
    backend: str, unit_of_work: UnitOfWorkFactory
) -> None:
    async def first(store: MeteringStore) -> None:
        await store.insert_records([record(1, at(10), key="a")])
        await store.add_outbox_events([outbox_event(1, "a")])

    async def second(store: MeteringStore) -> None:
        await store.insert_records([record(2, at(10), key="b")])
        await store.add_outbox_events([outbox_event(2, "b")])

    await run_overlapping(backend, unit_of_work, first, second)
    async with unit_of_work() as uow:
        assert set(await uow.store.find_records([(ORG, "a"), (ORG, "b")])) == {
            (ORG, "a"),
            (ORG, "b"),
        }
        assert await uow.store.add_outbox_events([outbox_event(3, "a"), outbox_event(4, "b")]) == 0
