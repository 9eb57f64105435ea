"""An in-memory MeteringStore and unit of work for driving the use cases in unit tests.

It mirrors the SQL repository's semantics, and `tests/metering/contract` runs the same cases on
it and on both databases so that it cannot drift: counters are rows keyed as in the schema
(organisation, usage type, window start), readings are ordered with the same tie-breaks.

A unit of work reads and writes a private copy of the state taken when it begins, and journals
every write; `commit()` replays the journal on the shared state, so the changes of overlapping
units of work add up as they do in the database (two increments of one counter keep both),
and a unit of work that is not committed leaves nothing behind.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Generic, Self, TypeVar

from taskforge_common.meters import UsageType, is_gauge
from taskforge_common.periods import Period
from taskforge_metering.application.ports import (
    CounterKey,
    GaugeChange,
    GaugeKey,
    OutboxEvent,
    RangeUsage,
    RecordKey,
    Reservation,
    StoredRecord,
    UsageRange,
    UsageSnapshot,
)
from taskforge_metering.domain.aggregation import GaugeReading
from taskforge_metering.domain.entitlements import Entitlements
from taskforge_metering.domain.usage import UsageRecord

# The primary key of usage_counters: (organization_id, usage_type, window_start).
CounterRowKey = tuple[str, UsageType, datetime]


@dataclass(frozen=True, slots=True)
class CounterRow:
    """A usage_counters row: the end is the one its first increment stored."""

    window_end: datetime
    quantity: Decimal


@dataclass
class State:
    entitlements: dict[str, Entitlements] = field(default_factory=dict)
    records: dict[RecordKey, StoredRecord] = field(default_factory=dict)
    counters: dict[CounterRowKey, CounterRow] = field(default_factory=dict)
    gauges: dict[GaugeKey, GaugeReading] = field(default_factory=dict)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    outbox: dict[str, OutboxEvent] = field(default_factory=dict)


def _list_order(record: UsageRecord) -> tuple[datetime, str]:
    """list_records' order and cursor: (event time, id)."""
    return (record.timestamp, record.id)


def _gauge_order(record: UsageRecord) -> tuple[datetime, datetime, str]:
    """gauge_history's order: (event time, recorded at, id)."""
    assert record.recorded_at is not None  # refused on insert, as NOT NULL does
    return (record.timestamp, record.recorded_at, record.id)


class InMemoryMeteringStore:
    """The store over one `State`, changing it in place."""

    def __init__(self, state: State) -> None:
        self.state = state

    async def get_entitlements(
        self, organization_ids: Collection[str], *, for_update: bool = False
    ) -> dict[str, Entitlements]:
        return {
            o: self.state.entitlements[o] for o in organization_ids if o in self.state.entitlements
        }

    async def save_entitlements(self, entitlements: Entitlements, now: datetime) -> None:
        current = self.state.entitlements.get(entitlements.organization_id)
        if current is None or current.version < entitlements.version:
            self.state.entitlements[entitlements.organization_id] = entitlements

    async def insert_records(self, records: Sequence[StoredRecord]) -> set[RecordKey]:
        inserted: set[RecordKey] = set()
        for stored in records:
            if stored.record.recorded_at is None:
                raise ValueError("usage_records.recorded_at is NOT NULL")
            key = (stored.record.organization_id, stored.record.idempotency_key)
            if key not in self.state.records:
                self.state.records[key] = stored
                inserted.add(key)
        return inserted

    async def find_records(self, keys: Collection[RecordKey]) -> dict[RecordKey, StoredRecord]:
        return {k: self.state.records[k] for k in keys if k in self.state.records}

    def _matching(
        self,
        organization_id: str,
        usage_type: UsageType | None,
        start: datetime | None,
        end: datetime | None,
    ) -> list[UsageRecord]:
        """The records in [start, end), in no particular order (callers sort)."""
        return [
            s.record
            for s in self.state.records.values()
            if s.record.organization_id == organization_id
            and (usage_type is None or s.record.usage_type == usage_type)
            and (start is None or s.record.timestamp >= start)
            and (end is None or s.record.timestamp < end)
        ]

    async def count_records(
        self,
        organization_id: str,
        usage_type: UsageType | None,
        start: datetime | None,
        end: datetime | None,
    ) -> int:
        return len(self._matching(organization_id, usage_type, start, end))

    async def list_records(
        self,
        organization_id: str,
        usage_type: UsageType | None,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[UsageRecord]:
        records = sorted(self._matching(organization_id, usage_type, start, end), key=_list_order)
        if after is not None:
            records = [r for r in records if _list_order(r) > after]
        return records[:limit]

    async def sum_counters(
        self, organization_id: str, start: datetime, end: datetime
    ) -> dict[UsageType, Decimal]:
        totals: dict[UsageType, Decimal] = {}
        for record in self._matching(organization_id, None, start, end):
            if not is_gauge(record.usage_type):
                totals[record.usage_type] = (
                    totals.get(record.usage_type, Decimal(0)) + record.quantity
                )
        return totals

    async def gauge_history(
        self, organization_id: str, usage_type: UsageType, start: datetime, end: datetime
    ) -> tuple[Decimal | None, list[GaugeReading]]:
        before = self._matching(organization_id, usage_type, None, start)
        inside = sorted(self._matching(organization_id, usage_type, start, end), key=_gauge_order)
        level_before = max(before, key=_gauge_order).quantity if before else None
        return level_before, [GaugeReading(r.timestamp, r.quantity) for r in inside]

    async def usage_in_ranges(self, ranges: Sequence[UsageRange]) -> list[RangeUsage]:
        """Each range read on its own: `sum_counters`, and `gauge_history` of every gauge."""
        answers: list[RangeUsage] = []
        for usage_range in ranges:
            org, start, end = usage_range.organization_id, usage_range.start, usage_range.end
            levels_before: dict[UsageType, Decimal] = {}
            readings: dict[UsageType, list[GaugeReading]] = {}
            for usage_type in UsageType:
                if not is_gauge(usage_type):
                    continue
                before, inside = await self.gauge_history(org, usage_type, start, end)
                if before is not None:
                    levels_before[usage_type] = before
                if inside:
                    readings[usage_type] = inside
            counters = await self.sum_counters(org, start, end)
            answers.append(RangeUsage(counters, levels_before, readings))
        return answers

    async def add_to_counters(
        self, increments: Mapping[CounterKey, Decimal]
    ) -> dict[CounterKey, Decimal]:
        """Upsert on (organisation, usage type, window start), adding to the quantity only."""
        totals: dict[CounterKey, Decimal] = {}
        for key, amount in increments.items():
            row_key = (key.organization_id, key.usage_type, key.window.start)
            row = self.state.counters.get(row_key)
            if row is None:
                row = CounterRow(key.window.end, amount)
            else:
                row = replace(row, quantity=row.quantity + amount)
            self.state.counters[row_key] = row
            totals[key] = row.quantity
        return totals

    async def update_gauges(
        self, readings: Mapping[GaugeKey, GaugeReading]
    ) -> dict[GaugeKey, GaugeChange]:
        changes: dict[GaugeKey, GaugeChange] = {}
        for key, reading in readings.items():
            previous = self.state.gauges.get(key)
            if previous is not None and previous.at > reading.at:
                continue
            self.state.gauges[key] = reading
            changes[key] = GaugeChange(previous.level if previous else None, reading.level)
        return changes

    async def replace_counters(
        self, organization_id: str, window: Period, totals: Mapping[UsageType, Decimal]
    ) -> None:
        for key, row in list(self.state.counters.items()):
            org, _, start = key
            if org == organization_id and start < window.end and row.window_end > window.start:
                del self.state.counters[key]
        for usage_type, total in totals.items():
            row_key = (organization_id, usage_type, window.start)
            self.state.counters[row_key] = CounterRow(window.end, total)

    async def limit_view(
        self, organization_id: str, now: datetime, usage_type: UsageType | None = None
    ) -> tuple[Entitlements | None, UsageSnapshot]:
        granted = self.state.entitlements.get(organization_id)
        return granted, await self.snapshot(organization_id, now, usage_type)

    async def snapshot(
        self, organization_id: str, now: datetime, usage_type: UsageType | None = None
    ) -> UsageSnapshot:
        def wanted(org: str, kind: UsageType) -> bool:
            return org == organization_id and (usage_type is None or kind == usage_type)

        reserved: dict[UsageType, Decimal] = {}
        for r in self.state.reservations.values():
            if (
                wanted(r.organization_id, r.usage_type)
                and r.status == "active"
                and r.expires_at > now
            ):
                reserved[r.usage_type] = reserved.get(r.usage_type, Decimal(0)) + r.quantity
        return UsageSnapshot(
            counters={
                kind: row.quantity
                for (org, kind, start), row in self.state.counters.items()
                if wanted(org, kind) and start <= now < row.window_end
            },
            gauges={k[1]: v.level for k, v in self.state.gauges.items() if wanted(*k)},
            reserved=reserved,
        )

    async def lock_limit(self, organization_id: str, usage_type: UsageType) -> None:
        """Nothing to do: the fake's transactions do not interleave within an await-free body."""

    async def insert_reservation(self, reservation: Reservation) -> bool:
        taken = any(
            (r.organization_id, r.idempotency_key)
            == (reservation.organization_id, reservation.idempotency_key)
            for r in self.state.reservations.values()
        )
        if not taken:
            self.state.reservations[reservation.id] = reservation
        return not taken

    async def get_reservation(
        self, reservation_id: str, *, for_update: bool = False
    ) -> Reservation | None:
        return self.state.reservations.get(reservation_id)

    async def get_reservation_by_key(
        self, organization_id: str, idempotency_key: str
    ) -> Reservation | None:
        for reservation in self.state.reservations.values():
            if (reservation.organization_id, reservation.idempotency_key) == (
                organization_id,
                idempotency_key,
            ):
                return reservation
        return None

    async def set_reservation_status(
        self, reservation_id: str, status: str, record_id: str | None = None
    ) -> None:
        """An UPDATE by id: an unknown id changes nothing."""
        reservation = self.state.reservations.get(reservation_id)
        if reservation is not None:
            self.state.reservations[reservation_id] = replace(
                reservation, status=status, record_id=record_id
            )

    async def add_outbox_events(self, events: Iterable[OutboxEvent]) -> int:
        added = 0
        for event in events:
            if event.dedupe_key not in self.state.outbox:
                self.state.outbox[event.dedupe_key] = event
                added += 1
        return added


# A write as the unit of work journals it, to be applied again to the shared state at commit.
Write = Callable[[InMemoryMeteringStore], Awaitable[object]]


class JournalingMeteringStore(InMemoryMeteringStore):
    """The store of one unit of work: its own copy of the state, and the journal of its writes.

    Each write is journaled with a copy of its arguments (the caller may reuse its mappings)."""

    def __init__(self, state: State) -> None:
        super().__init__(state)
        self.journal: list[Write] = []

    async def save_entitlements(self, entitlements: Entitlements, now: datetime) -> None:
        self.journal.append(lambda live: live.save_entitlements(entitlements, now))
        await super().save_entitlements(entitlements, now)

    async def insert_records(self, records: Sequence[StoredRecord]) -> set[RecordKey]:
        staged = list(records)
        self.journal.append(lambda live: live.insert_records(staged))
        return await super().insert_records(staged)

    async def add_to_counters(
        self, increments: Mapping[CounterKey, Decimal]
    ) -> dict[CounterKey, Decimal]:
        staged = dict(increments)
        self.journal.append(lambda live: live.add_to_counters(staged))
        return await super().add_to_counters(staged)

    async def update_gauges(
        self, readings: Mapping[GaugeKey, GaugeReading]
    ) -> dict[GaugeKey, GaugeChange]:
        staged = dict(readings)
        self.journal.append(lambda live: live.update_gauges(staged))
        return await super().update_gauges(staged)

    async def replace_counters(
        self, organization_id: str, window: Period, totals: Mapping[UsageType, Decimal]
    ) -> None:
        staged = dict(totals)
        self.journal.append(lambda live: live.replace_counters(organization_id, window, staged))
        await super().replace_counters(organization_id, window, staged)

    async def insert_reservation(self, reservation: Reservation) -> bool:
        self.journal.append(lambda live: live.insert_reservation(reservation))
        return await super().insert_reservation(reservation)

    async def set_reservation_status(
        self, reservation_id: str, status: str, record_id: str | None = None
    ) -> None:
        self.journal.append(
            lambda live: live.set_reservation_status(reservation_id, status, record_id)
        )
        await super().set_reservation_status(reservation_id, status, record_id)

    async def add_outbox_events(self, events: Iterable[OutboxEvent]) -> int:
        staged = list(events)
        self.journal.append(lambda live: live.add_outbox_events(staged))
        return await super().add_outbox_events(staged)


_Store = TypeVar("_Store", bound=InMemoryMeteringStore)


class _InMemoryScope(Generic[_Store]):
    """A unit of work's store while inside `async with`; `_open` makes it."""

    def __init__(self, database: InMemoryDatabase) -> None:
        self._database = database
        self._store: _Store | None = None

    @property
    def store(self) -> _Store:
        assert self._store is not None, "store used outside `async with`"
        return self._store

    def _open(self) -> _Store:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self._store = self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._store = None  # anything not committed is dropped


class InMemoryUnitOfWork(_InMemoryScope[JournalingMeteringStore]):
    def _open(self) -> JournalingMeteringStore:
        return JournalingMeteringStore(copy.deepcopy(self._database.state))

    async def commit(self) -> None:
        """Apply this unit of work's writes, in order, to the state as it is now (which other
        units of work may have changed since this one began). The in-memory store never awaits
        anything, so no other unit of work runs in between: a commit is atomic."""
        live = InMemoryMeteringStore(self._database.state)
        journal, self.store.journal = self.store.journal, []
        for write in journal:
            await write(live)
        self._database.commits += 1


class ReadOnlyStorageError(Exception):
    """A write through a read-only unit of work, which the databases refuse too."""


class ReadOnlyMeteringStore(InMemoryMeteringStore):
    """The store of a read-only unit of work: reads of the shared state as it is at each read
    (as PostgreSQL's standalone reads see all that is committed); every write is refused."""

    def _refuse(self) -> ReadOnlyStorageError:
        return ReadOnlyStorageError("cannot write through a read-only unit of work")

    async def save_entitlements(self, entitlements: Entitlements, now: datetime) -> None:
        raise self._refuse()

    async def insert_records(self, records: Sequence[StoredRecord]) -> set[RecordKey]:
        raise self._refuse()

    async def add_to_counters(
        self, increments: Mapping[CounterKey, Decimal]
    ) -> dict[CounterKey, Decimal]:
        raise self._refuse()

    async def update_gauges(
        self, readings: Mapping[GaugeKey, GaugeReading]
    ) -> dict[GaugeKey, GaugeChange]:
        raise self._refuse()

    async def replace_counters(
        self, organization_id: str, window: Period, totals: Mapping[UsageType, Decimal]
    ) -> None:
        raise self._refuse()

    async def insert_reservation(self, reservation: Reservation) -> bool:
        raise self._refuse()

    async def set_reservation_status(
        self, reservation_id: str, status: str, record_id: str | None = None
    ) -> None:
        raise self._refuse()

    async def add_outbox_events(self, events: Iterable[OutboxEvent]) -> int:
        raise self._refuse()


class InMemoryReadUnitOfWork(_InMemoryScope[ReadOnlyMeteringStore]):
    """A read-only unit of work: nothing to commit, and its store refuses writes."""

    def _open(self) -> ReadOnlyMeteringStore:
        return ReadOnlyMeteringStore(self._database.state)


class InMemoryDatabase:
    """Shared state plus the factory the use cases take: read-write units of work by calling
    it, read-only ones with `reader()`."""

    def __init__(self) -> None:
        self.state = State()
        self.commits = 0

    def __call__(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self)

    def reader(self) -> InMemoryReadUnitOfWork:
        return InMemoryReadUnitOfWork(self)
