"""A transactional outbox: messages written in the transaction of the change they announce, and a
relay that delivers them afterwards, at least once, in version order per key.

Each service keeps its own outbox table (`outbox_table`, created by its migrations) and runs one
or more `OutboxRelay`s on it. The guarantees:

- A message exists only if its transaction committed; it is delivered until `deliver` returns.
- At least once: a relay that stops between delivering and recording the delivery (a crash, a
  cancellation) leaves the message leased; once the lease expires it is delivered again. Receivers
  deduplicate by the message id, and drop a version older than one they have applied.
- Order per (topic, key): version n+1 is delivered only after version n was delivered or parked,
  so a failing message holds back the later versions of its key, while other keys proceed.
- Transient failures (any exception) are retried forever with capped exponential backoff.
- A `PermanentDeliveryError` parks the message (`parked_at` set, never retried) and logs it at
  ERROR; the later versions of its key then proceed. An ordered outbox may not block a key
  forever on one message the receiver will never take: versions carry state forward, so the next
  one supersedes it. A parked message stays in the table for an operator.
- Two relays never hold the same message: on PostgreSQL claims use FOR UPDATE SKIP LOCKED; on
  SQLite the `Database` runs one transaction at a time. A lease must outlast the delivery of a
  batch; a relay stops a key's run of versions when its lease runs out.

Logs name the message (id, topic, key, version, attempts), never its payload, which may hold
personal data. `last_error` keeps a `DeliveryError`'s message, written by our own code; of any other
exception only its class name, since messages of library errors may quote URLs or credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from taskforge_common.clock import Clock
from taskforge_common.db.engine import Database
from taskforge_common.db.types import UTCDateTime
from taskforge_common.ids import new_id
from taskforge_common.jsonsafe import JsonValue, to_json_safe

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 500
_TOPIC_LENGTH = 100
_KEY_LENGTH = 255


def outbox_table(metadata: MetaData, name: str = "outbox") -> Table:
    """The outbox table of one service, on `metadata` (its migrations create it)."""
    table = Table(
        name,
        metadata,
        Column("id", String(36), primary_key=True),
        Column("topic", String(_TOPIC_LENGTH), nullable=False),
        Column("key", String(_KEY_LENGTH), nullable=False),
        Column("version", BigInteger, nullable=False),
        Column("payload", JSON, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("available_at", UTCDateTime, nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
        Column("delivered_at", UTCDateTime, nullable=True),
        Column("parked_at", UTCDateTime, nullable=True),
        Column("lease_until", UTCDateTime, nullable=True),
        # Also serves the relay's "is an earlier version of this key still pending?" lookup.
        UniqueConstraint("topic", "key", "version", name=f"uq_{name}_topic_key_version"),
    )
    pending = and_(table.c.delivered_at.is_(None), table.c.parked_at.is_(None))
    Index(
        f"ix_{name}_due",
        table.c.available_at,
        postgresql_where=pending,
        sqlite_where=pending,
    )
    return table


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """What `deliver` receives. `id` is the receiver's idempotency key; `attempts` counts the
    failed deliveries before this one."""

    id: str
    topic: str
    key: str
    version: int
    payload: dict[str, JsonValue]
    created_at: datetime
    attempts: int


async def add_to_outbox(
    session: AsyncSession | AsyncConnection,
    table: Table,
    *,
    topic: str,
    key: str,
    version: int,
    payload: Mapping[str, object],
    now: datetime,
) -> str:
    """Write a message in the caller's transaction and answer its id. The payload is made
    JSON-safe (`to_json_safe`: decimals as strings). A second message with the same (topic,
    key, version) violates the table's unique constraint."""
    if not 0 < len(topic) <= _TOPIC_LENGTH:
        raise ValueError(f"an outbox topic is 1 to {_TOPIC_LENGTH} characters")
    if not 0 < len(key) <= _KEY_LENGTH:
        raise ValueError(f"an outbox key is 1 to {_KEY_LENGTH} characters")
    message_id = new_id(now)
    await session.execute(
        table.insert().values(
            id=message_id,
            topic=topic,
            key=key,
            version=version,
            payload=to_json_safe(dict(payload)),
            created_at=now,
            available_at=now,
            attempts=0,
        )
    )
    return message_id


class DeliveryError(Exception):
    """A failed delivery whose message is safe to store and log (no secrets, no payload data);
    retried with backoff like any other exception."""


class PermanentDeliveryError(DeliveryError):
    """The receiver will never accept this message (it refused it as invalid): park it."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry n (n ≥ 1): initial × factor^(n-1), at most `maximum`, then shortened by
    up to `jitter` (a fraction) at random so that failures do not retry in lockstep."""

    initial: timedelta = timedelta(seconds=1)
    maximum: timedelta = timedelta(minutes=5)
    factor: float = 2
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if not timedelta(0) < self.initial <= self.maximum:
            raise ValueError("backoff needs 0 < initial <= maximum")
        if self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError("backoff needs factor >= 1 and 0 <= jitter < 1")

    def delay(self, attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
        if attempts < 1:
            raise ValueError("retries are counted from 1")
        if self.factor == 1:
            base = self.initial
        elif attempts - 1 < math.log(self.maximum / self.initial, self.factor):
            base = min(self.maximum, self.initial * self.factor ** (attempts - 1))
        else:  # at the cap; computing factor ** attempts would overflow a float in the end
            base = self.maximum
        return base * (1 - self.jitter * rng())


@dataclass(frozen=True, slots=True)
class RelayResult:
    """One `relay_once`: messages claimed, delivered, failed (to be retried) and parked."""

    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    parked: int = 0


@dataclass(slots=True)
class _Outcomes:
    delivered: list[str] = field(default_factory=list)
    failed: list[tuple[OutboxMessage, BaseException]] = field(default_factory=list)
    parked: list[tuple[OutboxMessage, PermanentDeliveryError]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


class OutboxRelay:
    """Delivers the due messages of one outbox table (optionally of some topics only)."""

    def __init__(
        self,
        database: Database,
        table: Table,
        deliver: Callable[[OutboxMessage], Awaitable[None]],
        clock: Clock,
        *,
        topics: Collection[str] | None = None,
        batch_size: int = 100,
        concurrency: int = 10,
        backoff: Backoff | None = None,
        lease: timedelta = timedelta(seconds=30),
    ) -> None:
        if batch_size < 1 or concurrency < 1 or lease <= timedelta(0):
            raise ValueError("batch_size and concurrency are at least 1; the lease is positive")
        self._database = database
        self._table = table
        self._deliver = deliver
        self._clock = clock
        self._topics = None if topics is None else sorted(topics)
        self.batch_size = batch_size
        self._concurrency = concurrency
        self._backoff = backoff or Backoff()
        self._lease = lease

    async def relay_once(self) -> RelayResult:
        """Claim due messages, deliver them outside any transaction, record the outcomes.

        Different keys are delivered concurrently (up to `concurrency`); the versions of one key
        one after another, stopping at the first failure."""
        claimed_at = self._clock.now()
        lease_until = claimed_at + self._lease
        runs = await self._claim(claimed_at, lease_until)
        if not runs:
            return RelayResult()
        outcomes = _Outcomes()
        slots = asyncio.Semaphore(self._concurrency)
        async with asyncio.TaskGroup() as group:
            for run in runs:
                group.create_task(self._deliver_run(run, lease_until, slots, outcomes))
        await self._record(outcomes, lease_until)
        return RelayResult(
            claimed=sum(len(run) for run in runs),
            delivered=len(outcomes.delivered),
            failed=len(outcomes.failed),
            parked=len(outcomes.parked),
        )

    async def run(self, stop: asyncio.Event, idle: timedelta) -> None:
        """Relay until `stop` is set: at once again after a full batch with deliveries, else
        after `idle`. Errors (the database unreachable, say) are logged and retried."""
        while not stop.is_set():
            busy = False
            try:
                result = await self.relay_once()
                busy = result.claimed >= self.batch_size and result.delivered > 0
            except Exception:
                logger.exception("outbox relay on %s failed; retrying", self._table.name)
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle.total_seconds())

    async def pending_count(self) -> int:
        """Messages not yet delivered nor parked (for health checks and metrics)."""
        table = self._table
        return await self._count(table.c.delivered_at.is_(None), table.c.parked_at.is_(None))

    async def parked_count(self) -> int:
        """Messages parked by a permanent failure (an operator's attention is needed)."""
        return await self._count(self._table.c.parked_at.is_not(None))

    async def _count(self, *conditions: ColumnElement[bool]) -> int:
        statement = select(func.count()).select_from(self._table).where(*conditions)
        if self._topics is not None:
            statement = statement.where(self._table.c.topic.in_(self._topics))
        async with self._database.read_only_transaction() as transaction:
            return int((await transaction.session.execute(statement)).scalar_one())

    async def _claim(self, now: datetime, lease_until: datetime) -> list[list[OutboxMessage]]:
        """Lease the due messages, as runs of consecutive versions of one key.

        The head of a key is its lowest pending version. Heads are locked (SKIP LOCKED) and
        leased here, so no other relay can take them or, while they are pending, any later
        version of their key. Each head's run continues with the next versions while they are
        due and free, up to `batch_size` messages in all."""
        table = self._table
        earlier = table.alias("earlier")
        pending = and_(table.c.delivered_at.is_(None), table.c.parked_at.is_(None))
        free = and_(
            table.c.available_at <= now,
            or_(table.c.lease_until.is_(None), table.c.lease_until <= now),
        )
        earlier_pending = exists().where(
            earlier.c.topic == table.c.topic,
            earlier.c.key == table.c.key,
            earlier.c.version < table.c.version,
            earlier.c.delivered_at.is_(None),
            earlier.c.parked_at.is_(None),
        )
        heads_query = (
            select(table)
            .where(pending, free, ~earlier_pending)
            .order_by(table.c.available_at, table.c.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True, of=table)
        )
        if self._topics is not None:
            heads_query = heads_query.where(table.c.topic.in_(self._topics))
        async with self._database.transaction() as transaction:
            session = transaction.session
            heads = (await session.execute(heads_query)).all()
            if not heads:
                return []
            runs = {(row.topic, row.key): [row] for row in heads}
            room = self.batch_size - len(heads)
            if room > 0:
                followers = (
                    select(table)
                    .where(
                        pending,
                        or_(
                            *(
                                and_(
                                    table.c.topic == row.topic,
                                    table.c.key == row.key,
                                    table.c.version > row.version,
                                )
                                for row in heads
                            )
                        ),
                    )
                    .order_by(table.c.topic, table.c.key, table.c.version)
                    .limit(room)
                )
                _extend_runs(runs, (await session.execute(followers)).all(), now)
            claimed = [row.id for run in runs.values() for row in run]
            await session.execute(
                update(table).where(table.c.id.in_(claimed)).values(lease_until=lease_until)
            )
            await transaction.commit()
        return [[_message(row) for row in run] for run in runs.values()]

    async def _deliver_run(
        self,
        run: Sequence[OutboxMessage],
        lease_until: datetime,
        slots: asyncio.Semaphore,
        outcomes: _Outcomes,
    ) -> None:
        async with slots:
            for position, message in enumerate(run):
                if self._clock.now() >= lease_until:
                    # Another relay may take these now; delivering them too would race it.
                    outcomes.released.extend(m.id for m in run[position:])
                    return
                try:
                    await self._deliver(message)
                except PermanentDeliveryError as error:
                    outcomes.parked.append((message, error))
                except Exception as error:
                    outcomes.failed.append((message, error))
                    outcomes.released.extend(m.id for m in run[position + 1 :])
                    return
                else:
                    outcomes.delivered.append(message.id)

    async def _record(self, outcomes: _Outcomes, lease_until: datetime) -> None:
        """Record the outcomes in one short transaction. A failure is recorded only while this
        relay still holds the lease: if it ran out, another relay owns the message now."""
        table = self._table
        now = self._clock.now()
        ours = table.c.lease_until == lease_until
        async with self._database.transaction() as transaction:
            session = transaction.session
            if outcomes.delivered:
                await session.execute(
                    update(table)
                    .where(table.c.id.in_(outcomes.delivered), table.c.delivered_at.is_(None))
                    .values(delivered_at=now, lease_until=None)
                )
            if outcomes.released:
                await session.execute(
                    update(table)
                    .where(table.c.id.in_(outcomes.released), ours)
                    .values(lease_until=None)
                )
            for message, failure in outcomes.failed:
                attempts = message.attempts + 1
                retry_at = now + self._backoff.delay(attempts)
                await session.execute(
                    update(table)
                    .where(table.c.id == message.id, ours)
                    .values(
                        attempts=attempts,
                        available_at=retry_at,
                        last_error=_describe(failure),
                        lease_until=None,
                    )
                )
                logger.warning(
                    "outbox message %s (%s, key %s, version %d) failed attempt %d: %s; "
                    "retrying at %s",
                    message.id,
                    message.topic,
                    message.key,
                    message.version,
                    attempts,
                    type(failure).__name__,
                    retry_at.isoformat(),
                )
            for message, permanent in outcomes.parked:
                await session.execute(
                    update(table)
                    .where(table.c.id == message.id, ours)
                    .values(
                        attempts=message.attempts + 1,
                        parked_at=now,
                        last_error=_describe(permanent),
                        lease_until=None,
                    )
                )
                logger.error(
                    "outbox message %s (%s, key %s, version %d) parked after attempt %d: %s",
                    message.id,
                    message.topic,
                    message.key,
                    message.version,
                    message.attempts + 1,
                    _describe(permanent),
                )
            await transaction.commit()


def _extend_runs(
    runs: dict[tuple[str, str], list[Row[Any]]], followers: Sequence[Row[Any]], now: datetime
) -> None:
    """Append each key's later pending versions to its run, stopping at the first that is not
    due or is leased: a run never skips a version."""
    stopped: set[tuple[str, str]] = set()
    for row in followers:
        key = (row.topic, row.key)
        if key in stopped:
            continue
        leased = row.lease_until is not None and row.lease_until > now
        if row.available_at > now or leased:
            stopped.add(key)
            continue
        runs[key].append(row)


def _message(row: Row[Any]) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        topic=row.topic,
        key=row.key,
        version=row.version,
        payload=row.payload,
        created_at=row.created_at,
        attempts=row.attempts,
    )


def _describe(error: BaseException) -> str:
    """What `last_error` keeps: see the module's docstring."""
    if isinstance(error, DeliveryError):
        text = f"{type(error).__name__}: {error}"
    else:
        text = type(error).__name__
    return text[:MAX_ERROR_LENGTH]
