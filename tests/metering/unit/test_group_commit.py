"""Group commit: callers share transactions, so a transaction that fails for a reason tied to
one event must not fail the others (SPEC §11). Driven on the in-memory store with one event
that no transaction can write."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Self

import pytest

from taskforge_common.clock import ManualClock
from taskforge_common.errors import Unavailable
from taskforge_common.meters import UsageType
from taskforge_common.page_tokens import PageTokens
from taskforge_metering.application.caller import Caller
from taskforge_metering.application.ingest import UsageEventInput
from taskforge_metering.application.ports import RecordKey, StoredRecord
from taskforge_metering.application.use_cases import UseCases
from tests.fakes.metering_store import InMemoryDatabase, InMemoryUnitOfWork

ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
OPERATOR = Caller("operator")
PAGE_TOKENS = PageTokens(b"page tokens of the tests")
POISON = "poison"


class PoisonedUnitOfWork(InMemoryUnitOfWork):
    """Fails, as a storage fault would, when asked to insert the event keyed POISON."""

    def __init__(self, database: PoisonedDatabase) -> None:
        super().__init__(database)
        self._failure = database.failure

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        insert = self.store.insert_records
        failure = self._failure

        async def insert_records(records: Sequence[StoredRecord]) -> set[RecordKey]:
            if any(r.record.idempotency_key == POISON for r in records):
                raise failure
            return await insert(records)

        self.store.insert_records = insert_records  # type: ignore[method-assign]
        return self


class PoisonedDatabase(InMemoryDatabase):
    """Counts the read-write transactions; `failure` is what a poisoned one raises."""

    def __init__(self, failure: Exception) -> None:
        super().__init__()
        self.failure = failure
        self.transactions = 0

    def __call__(self) -> PoisonedUnitOfWork:
        self.transactions += 1
        return PoisonedUnitOfWork(self)


def event(key: str) -> UsageEventInput:
    return UsageEventInput(ORG, UsageType.JOB_EXECUTION, "1", None, key)


def build(failure: Exception) -> tuple[UseCases, PoisonedDatabase]:
    database = PoisonedDatabase(failure)
    clock = ManualClock(datetime(2026, 3, 10, 12, tzinfo=UTC))
    return UseCases.build(database, clock, 1_000_000, PAGE_TOKENS), database


async def test_one_poisoned_event_fails_alone_among_concurrent_callers() -> None:
    use_cases, database = build(RuntimeError("storage fault tied to one event"))
    keys = [f"k{n}" for n in range(9)]
    outcomes = await asyncio.gather(
        *(use_cases.ingest.record(event(key), OPERATOR) for key in keys[:5]),
        use_cases.ingest.record(event(POISON), OPERATOR),
        *(use_cases.ingest.record(event(key), OPERATOR) for key in keys[5:]),
        return_exceptions=True,
    )
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failed) == 1
    assert getattr(failed[0], "status", None) == "INTERNAL"
    stored = {key for (_, key) in database.state.records}
    assert stored == set(keys)
    # The shared transaction of all ten, then halves: [0-4] ok, [5-9] fails; [5, 6] fails,
    # [7-9] ok; [5] fails, [6] ok. Seven in all: no transaction is tried twice.
    assert database.transactions == 7


async def test_a_batch_with_a_poisoned_event_stores_the_others() -> None:
    use_cases, database = build(RuntimeError("storage fault tied to one event"))
    results = await use_cases.ingest.record_batch(
        [event("a"), event(POISON), event("b"), event("c")], OPERATOR
    )
    assert [r.error is None for r in results] == [True, False, True, True]
    assert {key for (_, key) in database.state.records} == {"a", "b", "c"}


async def test_an_unreachable_database_fails_every_caller_without_retrying_apart() -> None:
    use_cases, database = build(Unavailable("the database is unavailable"))
    with pytest.raises(Unavailable):
        await use_cases.ingest.record_batch([event("a"), event(POISON), event("b")], OPERATOR)
    assert database.transactions == 1
    assert not database.state.records
