"""What the use cases need from storage, as data shapes and Protocols.

The SQL implementation lives in `storage/`; unit tests drive the use cases with in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol, Self

from taskforge_common.meters import UsageType, is_gauge
from taskforge_common.periods import Period
from taskforge_metering.domain.aggregation import GaugeReading
from taskforge_metering.domain.entitlements import Entitlements
from taskforge_metering.domain.usage import UsageRecord

# (organization_id, idempotency_key)
RecordKey = tuple[str, str]
# (organization_id, usage_type)
GaugeKey = tuple[str, UsageType]


@dataclass(frozen=True, slots=True)
class CounterKey:
    organization_id: str
    usage_type: UsageType
    window: Period


@dataclass(frozen=True, slots=True)
class StoredRecord:
    record: UsageRecord
    fingerprint: str


@dataclass(frozen=True, slots=True)
class GaugeChange:
    """A gauge moved from `previous` (None: first report) to `level`."""

    previous: Decimal | None
    level: Decimal


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    organization_id: str
    usage_type: UsageType
    quantity: Decimal
    idempotency_key: str
    fingerprint: str
    status: str
    window_start: datetime
    expires_at: datetime
    created_at: datetime
    record_id: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: str
    event_type: str
    organization_id: str
    payload: Mapping[str, Any]
    dedupe_key: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UsageSnapshot:
    """An organisation's usage in one window: counter totals, gauge levels, live reservations."""

    counters: Mapping[UsageType, Decimal]
    gauges: Mapping[UsageType, Decimal]
    reserved: Mapping[UsageType, Decimal]

    def current(self, usage_type: UsageType) -> Decimal:
        source = self.gauges if is_gauge(usage_type) else self.counters
        return source.get(usage_type, Decimal(0))


@dataclass(frozen=True, slots=True)
class UsageRange:
    """An organisation's usage over the half-open range [start, end)."""

    organization_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class RangeUsage:
    """What storage holds about one `UsageRange`, for billing it.

    `counters`: the total of each counter over the range (a type without events is absent).
    `levels_before`: per gauge, the last level reported before the range (absent: none was).
    `readings`: per gauge, its reports inside the range in (event time, recorded at, id) order
    (absent: none)."""

    counters: Mapping[UsageType, Decimal]
    levels_before: Mapping[UsageType, Decimal]
    readings: Mapping[UsageType, Sequence[GaugeReading]]


class MeteringReader(Protocol):
    """What a read-only unit of work may do: read. Implementations never commit."""

    async def get_entitlements(
        self, organization_ids: Collection[str]
    ) -> dict[str, Entitlements]: ...

    async def find_records(self, keys: Collection[RecordKey]) -> dict[RecordKey, StoredRecord]: ...

    async def count_records(
        self,
        organization_id: str,
        usage_type: UsageType | None,
        start: datetime | None,
        end: datetime | None,
    ) -> int: ...

    async def list_records(
        self,
        organization_id: str,
        usage_type: UsageType | None,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[UsageRecord]: ...

    async def sum_counters(
        self, organization_id: str, start: datetime, end: datetime
    ) -> dict[UsageType, Decimal]: ...

    async def gauge_history(
        self, organization_id: str, usage_type: UsageType, start: datetime, end: datetime
    ) -> tuple[Decimal | None, list[GaugeReading]]: ...

    async def usage_in_ranges(self, ranges: Sequence[UsageRange]) -> list[RangeUsage]:
        """One `RangeUsage` per range, in order, read in a number of statements that does not
        depend on how many ranges there are (ranges may overlap or repeat)."""
        ...

    async def snapshot(
        self, organization_id: str, now: datetime, usage_type: UsageType | None = None
    ) -> UsageSnapshot:
        """Counters of the monthly window containing `now`, gauge levels, live reservations."""
        ...

    async def limit_view(
        self, organization_id: str, now: datetime, usage_type: UsageType | None = None
    ) -> tuple[Entitlements | None, UsageSnapshot]:
        """Entitlements and snapshot together: what a limit check reads (one round trip where
        the database allows)."""
        ...

    async def get_reservation(self, reservation_id: str) -> Reservation | None: ...

    async def get_reservation_by_key(
        self, organization_id: str, idempotency_key: str
    ) -> Reservation | None: ...


class MeteringStore(MeteringReader, Protocol):
    """Storage of the metering service inside a read-write unit of work; never commits."""

    async def get_entitlements(
        self, organization_ids: Collection[str], *, for_update: bool = False
    ) -> dict[str, Entitlements]: ...

    async def get_reservation(
        self, reservation_id: str, *, for_update: bool = False
    ) -> Reservation | None: ...

    async def save_entitlements(self, entitlements: Entitlements, now: datetime) -> None: ...

    async def insert_records(self, records: Sequence[StoredRecord]) -> set[RecordKey]: ...

    async def add_to_counters(
        self, increments: Mapping[CounterKey, Decimal]
    ) -> dict[CounterKey, Decimal]: ...

    async def update_gauges(
        self, readings: Mapping[GaugeKey, GaugeReading]
    ) -> dict[GaugeKey, GaugeChange]: ...

    async def replace_counters(
        self, organization_id: str, window: Period, totals: Mapping[UsageType, Decimal]
    ) -> None: ...

    async def lock_limit(self, organization_id: str, usage_type: UsageType) -> None: ...

    async def insert_reservation(self, reservation: Reservation) -> bool:
        """False, inserting nothing, when the (organisation, idempotency key) is taken."""
        ...

    async def set_reservation_status(
        self, reservation_id: str, status: str, record_id: str | None = None
    ) -> None: ...

    async def add_outbox_events(self, events: Iterable[OutboxEvent]) -> int: ...


class ReadUnitOfWork(Protocol):
    """Reads inside `async with`; storage refuses writes, and `store` offers none. Each read
    may stand alone (no transaction across them) where storage allows, and then sees
    everything committed before it."""

    @property
    def store(self) -> MeteringReader: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class UnitOfWork(ReadUnitOfWork, Protocol):
    """One transaction: `store` inside `async with`; rolled back unless `commit()` was awaited."""

    @property
    def store(self) -> MeteringStore: ...

    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Makes units of work: read-write ones by calling it, read-only ones with `reader()`."""

    def __call__(self) -> UnitOfWork: ...

    def reader(self) -> ReadUnitOfWork: ...
