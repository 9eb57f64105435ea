"""An in-memory MeteringStore and unit of work for driving the use cases in unit tests.

It mirrors the SQL repository's semantics; the unit of work stages every change on a copy of
the state and publishes it only on commit, so a use case that fails leaves nothing behind.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Self

from taskforge_common.periods import Period
from taskforge_metering.application.ports import (
    CounterKey,
    GaugeChange,
    GaugeKey,
    OutboxEvent,
    RecordKey,
    Reservation,
    StoredRecord,
    UsageSnapshot,
)
from taskforge_metering.domain.aggregation import GaugeReading
from taskforge_metering.domain.entitlements import Entitlements
from taskforge_metering.domain.meters import UsageType, is_gauge
from taskforge_metering.domain.usage import UsageRecord


@dataclass
class State:
    entitlements: dict[str, Entitlements] = field(default_factory=dict)
    records: dict[RecordKey, StoredRecord] = field(default_factory=dict)
    counters: dict[CounterKey, Decimal] = field(default_factory=dict)
    gauges: dict[GaugeKey, GaugeReading] = field(default_factory=dict)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    outbox: dict[str, OutboxEvent] = field(default_factory=dict)


class InMemoryMeteringStore:
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
        return sorted(
            (
                s.record
                for s in self.state.records.values()
                if s.record.organization_id == organization_id
                and (usage_type is None or s.record.usage_type == usage_type)
                and (start is None or s.record.timestamp >= start)
                and (end is None or s.record.timestamp < end)
            ),
            key=lambda r: (r.timestamp, r.id),
        )

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
        records = self._matching(organization_id, usage_type, start, end)
        if after is not None:
            records = [r for r in records if (r.timestamp, r.id) > after]
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
        inside = self._matching(organization_id, usage_type, start, end)
        level_before = before[-1].quantity if before else None
        return level_before, [GaugeReading(r.timestamp, r.quantity) for r in inside]

    async def add_to_counters(
        self, increments: Mapping[CounterKey, Decimal]
    ) -> dict[CounterKey, Decimal]:
        for key, amount in increments.items():
            self.state.counters[key] = self.state.counters.get(key, Decimal(0)) + amount
        return {key: self.state.counters[key] for key in increments}

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
        for key in list(self.state.counters):
            overlaps = key.window.start < window.end and key.window.end > window.start
            if key.organization_id == organization_id and overlaps:
                del self.state.counters[key]
        for usage_type, total in totals.items():
            self.state.counters[CounterKey(organization_id, usage_type, window)] = total

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
                k.usage_type: v
                for k, v in self.state.counters.items()
                if wanted(k.organization_id, k.usage_type) and k.window.contains(now)
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
        reservation = self.state.reservations[reservation_id]
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


class InMemoryUnitOfWork:
    def __init__(self, database: InMemoryDatabase) -> None:
        self._database = database
        self._store: InMemoryMeteringStore | None = None

    @property
    def store(self) -> InMemoryMeteringStore:
        assert self._store is not None, "store used outside `async with`"
        return self._store

    async def __aenter__(self) -> Self:
        self._store = InMemoryMeteringStore(copy.deepcopy(self._database.state))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._store = None  # anything not committed is dropped

    async def commit(self) -> None:
        self._database.state = self.store.state
        self._database.commits += 1


class InMemoryDatabase:
    """Shared state plus the factory the use cases take (`read_only` changes nothing here)."""

    def __init__(self) -> None:
        self.state = State()
        self.commits = 0

    def __call__(self, *, read_only: bool = False) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self)
