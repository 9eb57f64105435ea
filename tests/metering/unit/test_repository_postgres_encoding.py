"""How PostgresMeteringRepository.insert_records encodes rows: each column as one text, values
joined by \\x1f and split by PostgreSQL, instants as microseconds since the epoch. Every value
a validated event may carry must arrive exactly as sent, and the stored metadata text must be
json.dumps's, as before."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskforge_common.db.engine import Database
from taskforge_common.meters import UsageType
from taskforge_metering.application.ports import StoredRecord
from taskforge_metering.domain.usage import UsageRecord
from taskforge_metering.storage import repository_postgres
from taskforge_metering.storage.unit_of_work import SqlUnitOfWorkFactory
from tests.databases import migrated_database

ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
OTHER = "5e1c7a52-7a7d-4c8e-b1b6-2f5d0e9c3b02"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_database("metering", "postgresql", tmp_path) as database:
        yield database


def stored(
    n: int,
    timestamp: datetime,
    *,
    quantity: str = "1",
    key: str | None = None,
    metadata: dict[str, str] | None = None,
    organization_id: str = ORG,
    usage_type: UsageType = UsageType.JOB_EXECUTION,
    recorded_at: datetime | None = None,
) -> StoredRecord:
    return StoredRecord(
        UsageRecord(
            id=f"00000000-0000-7000-8000-{n:012x}",
            organization_id=organization_id,
            usage_type=usage_type,
            quantity=Decimal(quantity),
            timestamp=timestamp,
            idempotency_key=key or f"key-{n}",
            metadata={"queue": f"q{n}"} if metadata is None else metadata,
            recorded_at=recorded_at or timestamp,
        ),
        f"{n:064x}",
    )


EDGES = [
    stored(1, datetime(2000, 1, 1, tzinfo=UTC)),
    stored(
        2, datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), quantity="999999999999.999999"
    ),
    stored(3, datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC), quantity="0.000001", metadata={}),
    stored(4, datetime(2026, 3, 1, tzinfo=UTC), quantity="1000000000000", key="ключ 🔑 'q' \"d\""),
    stored(
        5,
        datetime(2026, 3, 1, 7, tzinfo=timezone(timedelta(hours=-5))),
        quantity="0",
        metadata={"note": 'tab\there\nline\r "quoted" \\ back', "ü": "🎉", "empty": ""},
        usage_type=UsageType.ACTIVE_WORKERS,
        recorded_at=datetime(2026, 3, 1, 0, 0, 5, 123_456, tzinfo=UTC),
    ),
    stored(6, datetime(2026, 3, 1, tzinfo=UTC), key="key-1", organization_id=OTHER),
]


async def test_every_value_arrives_exactly_as_sent(database: Database) -> None:
    unit_of_work = SqlUnitOfWorkFactory(database)
    async with unit_of_work() as uow:
        inserted = await uow.store.insert_records(EDGES)
        await uow.commit()
    keys = [(s.record.organization_id, s.record.idempotency_key) for s in EDGES]
    assert inserted == set(keys)
    async with unit_of_work() as uow:
        found = await uow.store.find_records(keys)
    assert [found[key] for key in keys] == EDGES
    async with database.engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        texts = await driver.fetch("SELECT id, metadata::text FROM usage_records ORDER BY id")
    assert [row[1] for row in texts] == [json.dumps(s.record.metadata) for s in EDGES]


async def test_one_record_and_repeated_keys(database: Database) -> None:
    """A lone record splits into one value per column; a key sent twice inserts once, and a
    key already stored not at all."""
    unit_of_work = SqlUnitOfWorkFactory(database)
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    async with unit_of_work() as uow:
        assert await uow.store.insert_records([stored(1, at)]) == {(ORG, "key-1")}
        again = [stored(2, at, key="key-1"), stored(3, at, key="n"), stored(4, at, key="n")]
        assert await uow.store.insert_records(again) == {(ORG, "n")}
        await uow.commit()


@pytest.mark.parametrize(
    "metadata",
    [{}, {"a": "b"}, {"queue": "default", "worker": "w1"}, {"k": "\t\n\r\x00\x1f\x7f\u2028"}],
)
def test_metadata_text_is_json_dumps(metadata: dict[str, str]) -> None:
    assert repository_postgres._metadata_json(metadata) == json.dumps(metadata)


@given(st.dictionaries(st.text(), st.text(), max_size=16))
def test_metadata_text_is_json_dumps_for_any_text(metadata: dict[str, str]) -> None:
    text = repository_postgres._metadata_json(metadata)
    assert text == json.dumps(metadata)
    assert "\x1f" not in text


@pytest.mark.parametrize("values", [["a", "b\x1fc"], [""], ["a\x1f"]])
def test_a_value_holding_the_separator_or_a_lone_empty_value_is_refused(
    values: list[str],
) -> None:
    with pytest.raises(ValueError, match="separator"):
        repository_postgres._joined(values)


def test_instants_are_exact_microseconds() -> None:
    at = datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    micros = int(repository_postgres._micros(at))
    assert datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros) == at
    with pytest.raises(ValueError, match="instants"):
        repository_postgres._micros(None)
