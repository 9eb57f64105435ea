"""RecordUsage and RecordUsageBatch (SPEC §2, §11, §12).

A batch is validated event by event; the good events are written in one transaction together
with their counter totals, gauge levels and threshold events, and acknowledged only after it
commits. A bad event fails alone and writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from taskforge_common.clock import Clock
from taskforge_common.errors import (
    INTERNAL_ERROR_MESSAGE,
    AlreadyExists,
    BillingError,
    InvalidArgument,
    Unavailable,
)
from taskforge_common.ids import new_id
from taskforge_common.meters import UsageType, is_gauge
from taskforge_common.periods import Period
from taskforge_common.validation import instant_from_parts
from taskforge_metering.application.caller import Caller
from taskforge_metering.application.ports import (
    CounterKey,
    GaugeKey,
    MeteringStore,
    OutboxEvent,
    RecordKey,
    StoredRecord,
    UnitOfWorkFactory,
)
from taskforge_metering.application.rate_limit import IngestRateLimiter
from taskforge_metering.domain.aggregation import GaugeReading
from taskforge_metering.domain.entitlements import Entitlements, usage_window
from taskforge_metering.domain.thresholds import crossed_thresholds, threshold_percent
from taskforge_metering.domain.usage import (
    UsageEvent,
    UsageRecord,
    ensure_period_open,
    new_usage_event,
)

logger = logging.getLogger(__name__)

MAX_BATCH_SIZE = 1000
# Event-loop turns a group commit waits under load for more callers (see GroupCommit._gather).
GATHER_TURNS = 20
THRESHOLD_EVENT = "usage.threshold_reached"

# A validated event and its position in the caller's request (results are keyed by it).
IndexedEvent = tuple[int, UsageEvent]


@dataclass(frozen=True, slots=True)
class UsageEventInput:
    """A usage event as the caller sent it; `usage_type` None stands for an unknown type."""

    organization_id: str
    usage_type: UsageType | None
    quantity: str
    # A protobuf Timestamp's (seconds, nanos) as sent, checked with the rest of the event: not
    # every Timestamp fits a datetime, and a bad one must fail its own event only.
    timestamp: tuple[int, int] | None
    idempotency_key: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IngestResult:
    record: UsageRecord | None = None
    duplicate: bool = False
    error: BillingError | None = None


class UsageIngest:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        clock: Clock,
        rate_limiter: IngestRateLimiter,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._rate_limiter = rate_limiter
        self._group_commit = GroupCommit(self._write)

    async def record(self, event: UsageEventInput, caller: Caller) -> IngestResult:
        """One event, acknowledged after the transaction holding it commits; errors are raised.

        Concurrent calls share transactions (group commit), so many small calls cost about as
        much as a batch."""
        now = self._clock.now()
        try:
            valid = _validate(event, caller, now)
        except BillingError as error:
            raise _placed(error, "event") from None
        self._rate_limiter.acquire([valid.organization_id])
        result = await self._group_commit.submit(valid)
        if result.error is not None:
            raise result.error
        return result

    async def record_batch(
        self, events: Sequence[UsageEventInput], caller: Caller
    ) -> list[IngestResult]:
        """One result per event, in order."""
        if not events:
            raise InvalidArgument("events must hold at least one event", field="events")
        if len(events) > MAX_BATCH_SIZE:
            raise InvalidArgument(
                f"a batch holds at most {MAX_BATCH_SIZE} events, got {len(events)}",
                field="events",
            )
        now = self._clock.now()
        results: list[IngestResult | None] = [None] * len(events)
        valid: list[IndexedEvent] = []
        for index, raw in enumerate(events):
            try:
                valid.append((index, _validate(raw, caller, now)))
            except BillingError as error:
                results[index] = IngestResult(error=_placed(error, f"events[{index}]"))
        if valid:
            # A batch counts once per organisation in it, whatever its size.
            self._rate_limiter.acquire({event.organization_id for _, event in valid})
            for index, result in (await self._write(lambda: valid)).items():
                results[index] = result
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    async def _write(
        self, take_events: Callable[[], Sequence[IndexedEvent]]
    ) -> dict[int, IngestResult]:
        """Write the events `take_events` answers, asked once the transaction is open: a group
        commit keeps gathering callers while BEGIN travels.

        Events of several callers share the transaction. Validation has refused every bad
        input it can see, but should the transaction still fail for a reason tied to one
        event, the others are written without it (`_write_apart`): one caller's event never
        fails another's."""
        taken: Sequence[IndexedEvent] = ()

        def take() -> Sequence[IndexedEvent]:
            nonlocal taken
            taken = take_events()
            return taken

        try:
            return await self._write_together(take)
        except Unavailable:
            raise  # the database, not an event: every caller retries
        except Exception:
            if len(taken) <= 1:
                raise
            logger.warning("a shared ingest transaction failed; writing its events apart")
        return await self._write_apart(taken)

    async def _write_together(
        self, take_events: Callable[[], Sequence[IndexedEvent]]
    ) -> dict[int, IngestResult]:
        async with self._unit_of_work() as uow:
            written = await write_usage(uow.store, take_events(), self._clock.now())
            await uow.commit()
        return written

    async def _write_apart(self, events: Sequence[IndexedEvent]) -> dict[int, IngestResult]:
        """`events`, whose shared transaction failed, written as two halves in transactions of
        their own, each halved again if it fails, until the events that fail stand alone:
        ~2·log2(n) transactions for one failing event among n. Retrying is safe even after a
        commit of unknown outcome: records are idempotent."""
        middle = len(events) // 2
        results = await self._write_or_halve(events[:middle])
        results.update(await self._write_or_halve(events[middle:]))
        return results

    async def _write_or_halve(self, events: Sequence[IndexedEvent]) -> dict[int, IngestResult]:
        try:
            return await self._write_together(lambda: events)
        except Unavailable as error:
            return {index: IngestResult(error=error) for index, _ in events}
        except Exception:
            if len(events) > 1:
                return await self._write_apart(events)
            logger.exception("a usage event could not be written")
            return {events[0][0]: IngestResult(error=BillingError(INTERNAL_ERROR_MESSAGE))}


class GroupCommit:
    """Queues single events and writes whatever is waiting as one batch. A lone call is written
    at once; under load each transaction carries every call that arrived meanwhile. Every caller
    gets its own result, or the transaction's error.

    One writer at a time: concurrent transactions would all update the same counter rows (one
    per organisation and meter) and wait on each other's row locks; measured, four writers
    gave a third of one writer's throughput.
    """

    def __init__(
        self,
        write: Callable[[Callable[[], Sequence[IndexedEvent]]], Awaitable[dict[int, IngestResult]]],
    ) -> None:
        self._write = write
        self._waiting: list[tuple[UsageEvent, asyncio.Future[IngestResult]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._last_batch_size = 0

    async def submit(self, event: UsageEvent) -> IngestResult:
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        # One turn of the event loop first: requests already received get to join the batch.
        await asyncio.sleep(0)
        while self._waiting:
            await self._gather()
            await self._commit_next_batch()

    async def _gather(self) -> None:
        """Before a transaction, let the event loop run until as many callers wait as the last
        transaction carried, for at most GATHER_TURNS turns: a call takes several turns to get
        through grpc and the interceptors to `submit`, and each one that makes it shares the
        transaction instead of paying for its own. Measured (bench.unary, 32 in flight): 5
        calls per transaction became 9, and server CPU per call fell by a tenth. A lone caller
        never waits: its last transaction held only itself."""
        for _ in range(GATHER_TURNS):
            if len(self._waiting) >= self._last_batch_size:
                return
            await asyncio.sleep(0)

    async def _commit_next_batch(self) -> None:
        batch: list[tuple[UsageEvent, asyncio.Future[IngestResult]]] = []

        def take() -> list[IndexedEvent]:
            batch.extend(self._waiting[:MAX_BATCH_SIZE])
            del self._waiting[:MAX_BATCH_SIZE]
            self._last_batch_size = len(batch)
            return [(i, event) for i, (event, _) in enumerate(batch)]

        try:
            results = await self._write(take)
        except Exception as error:  # the transaction failed: every caller in it hears why
            if not batch:  # it failed to open: the callers waiting for it hear why
                take()
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for index, (_, future) in enumerate(batch):
            if not future.done():  # a caller that gave up (cancelled) needs no answer
                future.set_result(results[index])


def _placed(error: BillingError, prefix: str) -> BillingError:
    """`error` with its field path inside the request message `prefix`."""
    return error.at(prefix) if error.field else error


def _validate(raw: UsageEventInput, caller: Caller, now: datetime) -> UsageEvent:
    if raw.usage_type is None:
        raise InvalidArgument(
            "usage_type is required and must be a known usage type", field="usage_type"
        )
    event = new_usage_event(
        organization_id=raw.organization_id,
        usage_type=raw.usage_type,
        quantity=raw.quantity,
        timestamp=None
        if raw.timestamp is None
        else instant_from_parts(*raw.timestamp, "timestamp"),
        idempotency_key=raw.idempotency_key,
        metadata=raw.metadata,
        now=now,
    )
    caller.ensure_access(event.organization_id)
    return event


async def write_usage(
    store: MeteringStore, events: Sequence[IndexedEvent], now: datetime
) -> dict[int, IngestResult]:
    """Write validated events inside the caller's transaction; results keyed by event index.

    Idempotency: the first event with a key is stored; the same key with the same payload is a
    duplicate answering the stored record, with another payload an ALREADY_EXISTS error.
    """
    entitlements = await store.get_entitlements({e.organization_id for _, e in events})
    results: dict[int, IngestResult] = {}
    first_by_key: dict[RecordKey, IndexedEvent] = {}
    repeats: list[IndexedEvent] = []
    candidates: list[tuple[int, UsageEvent, StoredRecord, RecordKey]] = []
    closed: list[tuple[int, UsageEvent, BillingError]] = []
    for index, event in events:
        key = (event.organization_id, event.idempotency_key)
        if key in first_by_key:
            repeats.append((index, event))
            continue
        granted = entitlements.get(event.organization_id)
        if granted is not None and granted.usage_closed_before is not None:
            try:
                ensure_period_open(event.timestamp, granted.usage_closed_before)
            except BillingError as period_closed:
                closed.append((index, event, period_closed))
                continue
        first_by_key[key] = (index, event)
        # Positional: the fields of UsageRecord in order (keywords cost ~0.4 µs per event).
        record = UsageRecord(
            new_id(now),
            event.organization_id,
            event.usage_type,
            event.quantity,
            event.timestamp,
            event.idempotency_key,
            event.metadata,
            now,
        )
        candidates.append((index, event, StoredRecord(record, event.fingerprint), key))

    inserted = await store.insert_records([stored for _, _, stored, _ in candidates])
    new_events: list[UsageEvent] = []
    # Keys that did not insert, and events of closed periods: a retry of an event stored before
    # its period closed still answers the original record.
    existing = await store.find_records(
        [key for _, _, _, key in candidates if key not in inserted]
        + [(e.organization_id, e.idempotency_key) for _, e, _ in closed]
    )
    for index, event, error in closed:
        stored_before = existing.get((event.organization_id, event.idempotency_key))
        results[index] = (
            _replay(event, stored_before) if stored_before else IngestResult(error=error)
        )
    for index, event, stored, key in candidates:
        if key in inserted:
            results[index] = IngestResult(stored.record)
            new_events.append(event)
        else:
            results[index] = _replay(event, existing[key])
    for index, event in repeats:
        key = (event.organization_id, event.idempotency_key)
        if key in existing:  # stored before this batch: that record decides
            results[index] = _replay(event, existing[key])
            continue
        first_index, first = first_by_key[key]
        first_record = results[first_index].record
        if first_record is None or event.fingerprint != first.fingerprint:
            results[index] = IngestResult(error=_conflict(event))
        else:
            results[index] = IngestResult(record=first_record, duplicate=True)

    await _account(store, new_events, entitlements, now)
    return results


def _replay(event: UsageEvent, stored: StoredRecord) -> IngestResult:
    if stored.fingerprint != event.fingerprint:
        return IngestResult(error=_conflict(event))
    return IngestResult(record=stored.record, duplicate=True)


def _conflict(event: UsageEvent) -> AlreadyExists:
    return AlreadyExists(
        f"idempotency_key {event.idempotency_key!r} was already used with a different payload",
        field="idempotency_key",
    )


async def _account(
    store: MeteringStore,
    events: Sequence[UsageEvent],
    entitlements: Mapping[str, Entitlements],
    now: datetime,
) -> None:
    """Update counter totals and gauge levels for newly stored events; emit threshold events."""
    # Summed per (organisation, type, window) as plain tuples first: a CounterKey per event, built
    # and hashed, cost ~1 µs.
    sums: defaultdict[tuple[str, UsageType, Period], Decimal] = defaultdict(Decimal)
    latest: dict[GaugeKey, GaugeReading] = {}
    windows: dict[str, Period] = {}  # the last window per organisation: batches rarely span two
    for event in events:
        if is_gauge(event.usage_type):
            gauge_key = (event.organization_id, event.usage_type)
            current = latest.get(gauge_key)
            if current is None or event.timestamp >= current.at:
                latest[gauge_key] = GaugeReading(event.timestamp, event.quantity)
        else:
            window = windows.get(event.organization_id)
            if window is None or not window.contains(event.timestamp):
                granted = entitlements.get(event.organization_id)
                window = windows[event.organization_id] = usage_window(granted, event.timestamp)
            sums[(event.organization_id, event.usage_type, window)] += event.quantity
    increments: defaultdict[CounterKey, Decimal] = defaultdict(Decimal)
    for (organization_id, usage_type, window), amount in sums.items():
        increments[CounterKey(organization_id, usage_type, window)] += amount

    outbox: list[OutboxEvent] = []
    totals = await store.add_to_counters(increments)
    for counter, total in totals.items():
        granted = entitlements.get(counter.organization_id)
        outbox += _threshold_events(granted, counter, total - increments[counter], total, now)
    changes = await store.update_gauges(latest)
    for (org, usage_type), change in changes.items():
        granted = entitlements.get(org)
        window = usage_window(granted, latest[(org, usage_type)].at)
        gauge = CounterKey(org, usage_type, window)
        outbox += _threshold_events(
            granted, gauge, change.previous or Decimal(0), change.level, now
        )
    await store.add_outbox_events(outbox)


def _threshold_events(
    entitlements: Entitlements | None,
    counter: CounterKey,
    before: Decimal,
    after: Decimal,
    now: datetime,
) -> list[OutboxEvent]:
    """usage.threshold_reached for each threshold first reached; the outbox's dedupe key makes
    it once per limit, threshold and window whatever else happens."""
    limit = entitlements.limit_for(counter.usage_type) if entitlements else None
    if limit is None:
        return []
    return [
        _threshold_event(counter, threshold, after, limit, now)
        for threshold in crossed_thresholds(before, after, limit)
    ]


def _threshold_event(
    counter: CounterKey, threshold: Decimal, current: Decimal, limit: Decimal, now: datetime
) -> OutboxEvent:
    percent = threshold_percent(threshold)
    window = counter.window
    return OutboxEvent(
        id=new_id(now),
        event_type=THRESHOLD_EVENT,
        organization_id=counter.organization_id,
        payload={
            "organization_id": counter.organization_id,
            "usage_type": counter.usage_type.value,
            "threshold_percent": percent,
            "limit": f"{limit:f}",
            "current": f"{current:f}",
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
        },
        dedupe_key=(
            f"{THRESHOLD_EVENT}:{counter.organization_id}:{counter.usage_type.value}:"
            f"{window.start.isoformat()}:{percent}"
        ),
        created_at=now,
    )
