"""All SQL of the metering service. Repositories never commit: the unit of work does."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Insert,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    column,
    delete,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    tuple_,
    union_all,
    update,
    values,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from taskforge_common.db.engine import ReadOnlyTransaction
from taskforge_common.db.types import UTCDateTime, decimal_add, decimal_sum
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
from taskforge_metering.domain.entitlements import Entitlements, EntitlementStatus
from taskforge_metering.domain.usage import UsageRecord
from taskforge_metering.storage import tables as t


class MeteringRepository:
    """The portable implementation (SQLAlchemy Core), used as is on SQLite.
    `PostgresMeteringRepository` replaces its hot paths with SQL sent straight to asyncpg."""

    def __init__(self, transaction: ReadOnlyTransaction) -> None:
        self._transaction = transaction

    @property
    def _session(self) -> AsyncSession:
        return self._transaction.session

    def _insert(self, table: Table) -> Any:
        """INSERT with ON CONFLICT support for the dialect in use."""
        dialect = self._session.bind.dialect.name
        return (postgresql if dialect == "postgresql" else sqlite).insert(table)

    # -- entitlements ---------------------------------------------------------------------

    async def get_entitlements(
        self, organization_ids: Collection[str], *, for_update: bool = False
    ) -> dict[str, Entitlements]:
        if not organization_ids:
            return {}
        query = _ENTITLEMENTS_FOR_UPDATE if for_update else _ENTITLEMENTS
        result = await self._session.execute(query, {"organizations": list(organization_ids)})
        return {row["organization_id"]: entitlements_from_row(row) for row in result.mappings()}

    async def save_entitlements(self, entitlements: Entitlements, now: datetime) -> None:
        values = {
            "organization_id": entitlements.organization_id,
            "status": entitlements.status.value,
            "version": entitlements.version,
            "tier": entitlements.tier,
            "billing_cycle": entitlements.billing_cycle,
            "period_anchor": entitlements.period_anchor,
            "current_period_start": entitlements.current_period_start,
            "current_period_end": entitlements.current_period_end,
            "limits": {k.value: f"{v:f}" for k, v in entitlements.limits.items()},
            "usage_closed_before": entitlements.usage_closed_before,
            "updated_at": now,
        }
        statement = self._insert(t.entitlements).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[t.entitlements.c.organization_id],
            set_={k: statement.excluded[k] for k in values if k != "organization_id"},
            # Two pushes racing: the newer version wins whatever the commit order.
            where=t.entitlements.c.version < statement.excluded.version,
        )
        await self._session.execute(statement)

    # -- usage records --------------------------------------------------------------------

    async def insert_records(self, records: Sequence[StoredRecord]) -> set[RecordKey]:
        """Insert the records whose (organisation, idempotency key) is new; answer those keys."""
        if not records:
            return set()
        statement: Insert = (
            self._insert(t.usage_records)
            .on_conflict_do_nothing(index_elements=["organization_id", "idempotency_key"])
            .returning(t.usage_records.c.organization_id, t.usage_records.c.idempotency_key)
        )
        rows = await self._session.execute(statement, [_record_row(r) for r in records])
        return {(row[0], row[1]) for row in rows}

    async def find_records(self, keys: Collection[RecordKey]) -> dict[RecordKey, StoredRecord]:
        if not keys:
            return {}
        columns = tuple_(t.usage_records.c.organization_id, t.usage_records.c.idempotency_key)
        result = await self._session.execute(select(t.usage_records).where(columns.in_(list(keys))))
        found = (stored_record(row) for row in result.mappings())
        return {(s.record.organization_id, s.record.idempotency_key): s for s in found}

    async def count_records(
        self,
        organization_id: str,
        usage_type: UsageType | None,
        start: datetime | None,
        end: datetime | None,
    ) -> int:
        query = select(func.count()).select_from(t.usage_records)
        query = query.where(*_record_filters(organization_id, usage_type, start, end))
        return int((await self._session.execute(query)).scalar_one())

    async def list_records(
        self,
        organization_id: str,
        usage_type: UsageType | None,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[UsageRecord]:
        """Records in (event time, id) order, strictly after the cursor `after`."""
        c = t.usage_records.c
        query = select(t.usage_records).where(
            *_record_filters(organization_id, usage_type, start, end)
        )
        if after is not None:
            at, record_id = after
            query = query.where(or_(c.event_time > at, and_(c.event_time == at, c.id > record_id)))
        query = query.order_by(c.event_time, c.id).limit(limit)
        rows = (await self._session.execute(query)).mappings()
        return [stored_record(row).record for row in rows]

    async def sum_counters(
        self, organization_id: str, start: datetime, end: datetime
    ) -> dict[UsageType, Decimal]:
        """Total quantity per counter usage type of the events in [start, end)."""
        c = t.usage_records.c
        query = (
            select(c.usage_type, decimal_sum(c.quantity))
            .where(*_record_filters(organization_id, None, start, end))
            .group_by(c.usage_type)
        )
        rows = await self._session.execute(query)
        totals = {UsageType(row[0]): row[1] for row in rows}
        return {k: v for k, v in totals.items() if not is_gauge(k)}

    async def gauge_history(
        self, organization_id: str, usage_type: UsageType, start: datetime, end: datetime
    ) -> tuple[Decimal | None, list[GaugeReading]]:
        """The last level reported before `start`, and the reports in [start, end) in order."""
        c = t.usage_records.c
        before = (
            select(c.quantity)
            .where(*_record_filters(organization_id, usage_type, None, start))
            .order_by(c.event_time.desc(), c.recorded_at.desc(), c.id.desc())
            .limit(1)
        )
        level_before = (await self._session.execute(before)).scalar_one_or_none()
        inside = (
            select(c.event_time, c.quantity)
            .where(*_record_filters(organization_id, usage_type, start, end))
            .order_by(c.event_time, c.recorded_at, c.id)
        )
        rows = await self._session.execute(inside)
        return level_before, [GaugeReading(row[0], row[1]) for row in rows]

    async def usage_in_ranges(self, ranges: Sequence[UsageRange]) -> list[RangeUsage]:
        """What GetUsageSummaries bills, for every range in one statement (see
        `_usage_in_ranges`): one snapshot of storage on PostgreSQL, and one round trip."""
        if not ranges:
            return []
        counters: list[dict[UsageType, Decimal]] = [{} for _ in ranges]
        levels_before: list[dict[UsageType, Decimal]] = [{} for _ in ranges]
        readings: list[dict[UsageType, list[GaugeReading]]] = [{} for _ in ranges]
        rows = await self._session.execute(_usage_in_ranges(ranges))
        for index, part, usage_type_value, quantity, event_time, _, _ in rows:
            usage_type = UsageType(usage_type_value)
            if part == "reading":
                readings[index].setdefault(usage_type, []).append(
                    GaugeReading(event_time, quantity)
                )
            elif quantity is not None:  # "before": NULL when nothing was reported before
                (counters if part == "counter" else levels_before)[index][usage_type] = quantity
        return [RangeUsage(counters[i], levels_before[i], readings[i]) for i in range(len(ranges))]

    # -- counters and gauges --------------------------------------------------------------

    async def add_to_counters(
        self, increments: Mapping[CounterKey, Decimal]
    ) -> dict[CounterKey, Decimal]:
        """Add to the window totals (creating them); answer each new total."""
        totals: dict[CounterKey, Decimal] = {}
        c = t.usage_counters.c
        # Sorted, so concurrent transactions take the row locks in the same order.
        for key in sorted(increments, key=counter_sort_key):
            statement = self._insert(t.usage_counters).values(
                organization_id=key.organization_id,
                usage_type=key.usage_type.value,
                window_start=key.window.start,
                window_end=key.window.end,
                quantity=increments[key],
            )
            statement = statement.on_conflict_do_update(
                index_elements=["organization_id", "usage_type", "window_start"],
                set_={"quantity": decimal_add(c.quantity, statement.excluded.quantity)},
            ).returning(c.quantity)
            totals[key] = (await self._session.execute(statement)).scalar_one()
        return totals

    async def update_gauges(
        self, readings: Mapping[GaugeKey, GaugeReading]
    ) -> dict[GaugeKey, GaugeChange]:
        """Set each gauge to its reading unless a later one is stored; answer what changed."""
        if not readings:
            return {}
        c = t.usage_gauges.c
        current_query = select(c.organization_id, c.usage_type, c.level, c.as_of).where(
            tuple_(c.organization_id, c.usage_type).in_([(o, u.value) for o, u in readings])
        )
        current = {
            (row[0], UsageType(row[1])): (row[2], row[3])
            for row in await self._session.execute(current_query)
        }
        changes = gauge_changes(readings, current)
        for (organization_id, usage_type), change in changes.items():
            statement = self._insert(t.usage_gauges).values(
                organization_id=organization_id,
                usage_type=usage_type.value,
                level=change.level,
                as_of=readings[(organization_id, usage_type)].at,
            )
            statement = statement.on_conflict_do_update(
                index_elements=["organization_id", "usage_type"],
                set_={"level": statement.excluded.level, "as_of": statement.excluded.as_of},
                where=c.as_of <= statement.excluded.as_of,
            )
            await self._session.execute(statement)
        return changes

    async def replace_counters(
        self, organization_id: str, window: Period, totals: Mapping[UsageType, Decimal]
    ) -> None:
        """Make `window` the organisation's counting window: drop the totals of windows that
        overlap it (cut from another anchor) and store `totals` for it."""
        c = t.usage_counters.c
        await self._session.execute(
            delete(t.usage_counters).where(
                c.organization_id == organization_id,
                c.window_start < window.end,
                c.window_end > window.start,
            )
        )
        if totals:
            await self._session.execute(
                self._insert(t.usage_counters),
                [
                    {
                        "organization_id": organization_id,
                        "usage_type": usage_type.value,
                        "window_start": window.start,
                        "window_end": window.end,
                        "quantity": quantity,
                    }
                    for usage_type, quantity in totals.items()
                ],
            )

    async def snapshot(
        self, organization_id: str, now: datetime, usage_type: UsageType | None = None
    ) -> UsageSnapshot:
        """Counters of the monthly window containing `now`, gauge levels, live reservations."""
        params: dict[str, Any] = {"org": organization_id, "now": now}
        if usage_type is None:
            rows = await self._session.execute(_SNAPSHOT_ALL, params)
        else:
            rows = await self._session.execute(_SNAPSHOT_ONE, {**params, "type": usage_type.value})
        return snapshot_from_rows(rows)

    async def limit_view(
        self, organization_id: str, now: datetime, usage_type: UsageType | None = None
    ) -> tuple[Entitlements | None, UsageSnapshot]:
        """Entitlements and snapshot."""
        granted = (await self.get_entitlements([organization_id])).get(organization_id)
        return granted, await self.snapshot(organization_id, now, usage_type)

    async def lock_limit(self, organization_id: str, usage_type: UsageType) -> None:
        """Serialise reservations of one organisation's usage type until the transaction ends.
        Nothing to do on SQLite: its transactions already run one at a time (see
        taskforge_common.db.engine)."""

    # -- reservations ---------------------------------------------------------------------

    async def insert_reservation(self, reservation: Reservation) -> bool:
        """Insert unless the organisation already has a reservation with its idempotency key
        (a concurrent call may have stored it since it was looked up); answer whether it was."""
        statement = (
            self._insert(t.reservations)
            .values(_reservation_row(reservation))
            .on_conflict_do_nothing(index_elements=["organization_id", "idempotency_key"])
            .returning(t.reservations.c.id)
        )
        return (await self._session.execute(statement)).first() is not None

    async def get_reservation(
        self, reservation_id: str, *, for_update: bool = False
    ) -> Reservation | None:
        query = select(t.reservations).where(t.reservations.c.id == reservation_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._session.execute(query)).mappings().first()
        return _reservation(row) if row else None

    async def get_reservation_by_key(
        self, organization_id: str, idempotency_key: str
    ) -> Reservation | None:
        c = t.reservations.c
        query = select(t.reservations).where(
            c.organization_id == organization_id, c.idempotency_key == idempotency_key
        )
        row = (await self._session.execute(query)).mappings().first()
        return _reservation(row) if row else None

    async def set_reservation_status(
        self, reservation_id: str, status: str, record_id: str | None = None
    ) -> None:
        await self._session.execute(
            update(t.reservations)
            .where(t.reservations.c.id == reservation_id)
            .values(status=status, record_id=record_id)
        )

    # -- outbox ---------------------------------------------------------------------------

    async def add_outbox_events(self, events: Iterable[OutboxEvent]) -> int:
        """Store events whose dedupe key is new; answer how many were new."""
        rows = [outbox_row(e) for e in events]
        if not rows:
            return 0
        statement = (
            self._insert(t.outbox_events)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(t.outbox_events.c.id)
        )
        return len((await self._session.execute(statement, rows)).all())


# Statements of the hot paths are built once; building and cache-keying a select per call
# cost more than running it (measured ~0.3 ms per CheckLimits).
_ENTITLEMENTS = select(t.entitlements).where(
    t.entitlements.c.organization_id.in_(bindparam("organizations", expanding=True))
)
_ENTITLEMENTS_FOR_UPDATE = _ENTITLEMENTS.with_for_update()


def _snapshot_query(one_type: bool) -> CompoundSelect[Any]:
    counters_c, gauges_c, reservations_c = t.usage_counters.c, t.usage_gauges.c, t.reservations.c
    counters = select(literal("counter"), counters_c.usage_type, counters_c.quantity).where(
        counters_c.organization_id == bindparam("org"),
        counters_c.window_start <= bindparam("now"),
        counters_c.window_end > bindparam("now"),
    )
    gauges = select(literal("gauge"), gauges_c.usage_type, gauges_c.level).where(
        gauges_c.organization_id == bindparam("org")
    )
    reserved = (
        select(literal("reserved"), reservations_c.usage_type, decimal_sum(reservations_c.quantity))
        .where(
            reservations_c.organization_id == bindparam("org"),
            reservations_c.status == "active",
            reservations_c.expires_at > bindparam("now"),
        )
        .group_by(reservations_c.usage_type)
    )
    if one_type:
        counters = counters.where(counters_c.usage_type == bindparam("type"))
        gauges = gauges.where(gauges_c.usage_type == bindparam("type"))
        reserved = reserved.where(reservations_c.usage_type == bindparam("type"))
    return union_all(counters, gauges, reserved)


_SNAPSHOT_ALL = _snapshot_query(one_type=False)
_SNAPSHOT_ONE = _snapshot_query(one_type=True)


_RANGE_COLUMNS = (
    column("idx", Integer),
    column("organization_id", String),
    column("range_start", UTCDateTime),
    column("range_end", UTCDateTime),
)
_COUNTER_TYPES = [usage_type.value for usage_type in UsageType if not is_gauge(usage_type)]
_GAUGE_TYPES = [usage_type for usage_type in UsageType if is_gauge(usage_type)]


def _usage_in_ranges(ranges: Sequence[UsageRange]) -> CompoundSelect[Any]:
    """One statement over every range, passed as a VALUES list (idx = its position), whose
    rows are (idx, part, usage_type, quantity, event_time):

    - "reading": each gauge report inside a range, ordered by (event time, recorded at, id);
    - "counter": each counter's total over a range, for the types that have events there;
    - "before": per range and gauge, the last level reported before the range (NULL: none),
      by (event time, recorded at, id) descending, as `gauge_history` reads it.

    The usage_records indexes on (organization_id, usage_type, event_time) and
    (organization_id, event_time, id) serve every part. The readings come first so that the
    columns of the union take their types (instants) from it."""
    data = [(i, r.organization_id, r.start, r.end) for i, r in enumerate(ranges)]
    q = values(*_RANGE_COLUMNS, name="ranges").data(data).cte("ranges")
    r = t.usage_records.c
    inside = and_(
        r.organization_id == q.c.organization_id,
        r.event_time >= q.c.range_start,
        r.event_time < q.c.range_end,
    )
    in_ranges = q.join(t.usage_records, inside)
    reading = (
        select(
            q.c.idx,
            literal("reading").label("part"),
            r.usage_type,
            r.quantity,
            r.event_time,
            r.recorded_at,
            r.id,
        )
        .select_from(in_ranges)
        .where(r.usage_type.in_([usage_type.value for usage_type in _GAUGE_TYPES]))
    )
    counter = (
        select(q.c.idx, literal("counter"), r.usage_type, decimal_sum(r.quantity))
        .add_columns(null(), null(), null())
        .select_from(in_ranges)
        .where(r.usage_type.in_(_COUNTER_TYPES))
        .group_by(q.c.idx, r.usage_type)
    )
    earlier = t.usage_records.alias("earlier")
    e = earlier.c
    before = [
        select(
            q.c.idx,
            literal("before"),
            literal(usage_type.value),
            select(e.quantity)
            .where(
                e.organization_id == q.c.organization_id,
                e.usage_type == usage_type.value,
                e.event_time < q.c.range_start,
            )
            .order_by(e.event_time.desc(), e.recorded_at.desc(), e.id.desc())
            .limit(1)
            .scalar_subquery(),
            null(),
            null(),
            null(),
        ).select_from(q)
        for usage_type in _GAUGE_TYPES
    ]
    order: list[Any] = [literal_column(name) for name in ("event_time", "recorded_at", "id")]
    return union_all(reading, counter, *before).order_by(*order)


def gauge_changes(
    readings: Mapping[GaugeKey, GaugeReading], current: Mapping[GaugeKey, tuple[Decimal, datetime]]
) -> dict[GaugeKey, GaugeChange]:
    """The gauges a batch of readings moves, given each stored (level, as of): a reading older
    than the stored one arrived late and changes nothing. Sorted by key, so concurrent
    transactions lock gauge rows in the same order."""
    changes: dict[GaugeKey, GaugeChange] = {}
    for key in sorted(readings, key=lambda k: (k[0], k[1].value)):
        reading = readings[key]
        previous = current.get(key)
        if previous is not None and previous[1] > reading.at:
            continue
        changes[key] = GaugeChange(previous[0] if previous else None, reading.level)
    return changes


def counter_sort_key(key: CounterKey) -> tuple[str, str, datetime]:
    return (key.organization_id, key.usage_type.value, key.window.start)


def snapshot_from_rows(rows: Iterable[Any]) -> UsageSnapshot:
    parts: dict[str, dict[UsageType, Decimal]] = {"counter": {}, "gauge": {}, "reserved": {}}
    for kind, usage_type_value, quantity in rows:
        if quantity is not None:
            parts[kind][UsageType(usage_type_value)] = quantity
    return UsageSnapshot(
        counters=parts["counter"], gauges=parts["gauge"], reserved=parts["reserved"]
    )


def _record_filters(
    organization_id: str,
    usage_type: UsageType | None,
    start: datetime | None,
    end: datetime | None,
) -> list[Any]:
    c = t.usage_records.c
    filters: list[Any] = [c.organization_id == organization_id]
    if usage_type is not None:
        filters.append(c.usage_type == usage_type.value)
    if start is not None:
        filters.append(c.event_time >= start)
    if end is not None:
        filters.append(c.event_time < end)
    return filters


def outbox_row(event: OutboxEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "event_type": event.event_type,
        "organization_id": event.organization_id,
        "payload": dict(event.payload),
        "dedupe_key": event.dedupe_key,
        "created_at": event.created_at,
    }


def _record_row(stored: StoredRecord) -> dict[str, Any]:
    record = stored.record
    return {
        "id": record.id,
        "organization_id": record.organization_id,
        "usage_type": record.usage_type.value,
        "quantity": record.quantity,
        "event_time": record.timestamp,
        "idempotency_key": record.idempotency_key,
        "fingerprint": stored.fingerprint,
        "metadata": dict(record.metadata),
        "recorded_at": record.recorded_at,
    }


def stored_record(row: Any) -> StoredRecord:
    record = UsageRecord(
        id=row["id"],
        organization_id=row["organization_id"],
        usage_type=UsageType(row["usage_type"]),
        quantity=row["quantity"],
        timestamp=row["event_time"],
        idempotency_key=row["idempotency_key"],
        metadata=row["metadata"],
        recorded_at=row["recorded_at"],
    )
    return StoredRecord(record, row["fingerprint"])


def entitlements_from_row(row: Any) -> Entitlements:
    return Entitlements(
        organization_id=row["organization_id"],
        status=EntitlementStatus(row["status"]),
        version=row["version"],
        tier=row["tier"],
        billing_cycle=row["billing_cycle"],
        period_anchor=row["period_anchor"],
        current_period_start=row["current_period_start"],
        current_period_end=row["current_period_end"],
        # Read-only: a parsed value may be shared (see repository_postgres).
        limits=MappingProxyType({UsageType(k): Decimal(v) for k, v in row["limits"].items()}),
        usage_closed_before=row["usage_closed_before"],
    )


def _reservation_row(reservation: Reservation) -> dict[str, Any]:
    return {
        "id": reservation.id,
        "organization_id": reservation.organization_id,
        "usage_type": reservation.usage_type.value,
        "quantity": reservation.quantity,
        "idempotency_key": reservation.idempotency_key,
        "fingerprint": reservation.fingerprint,
        "status": reservation.status,
        "window_start": reservation.window_start,
        "expires_at": reservation.expires_at,
        "created_at": reservation.created_at,
        "record_id": reservation.record_id,
    }


def _reservation(row: Any) -> Reservation:
    return Reservation(
        id=row["id"],
        organization_id=row["organization_id"],
        usage_type=UsageType(row["usage_type"]),
        quantity=row["quantity"],
        idempotency_key=row["idempotency_key"],
        fingerprint=row["fingerprint"],
        status=row["status"],
        window_start=row["window_start"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        record_id=row["record_id"],
    )
