"""The transactional outbox on PostgreSQL and SQLite: only committed messages are delivered, in
version order per key, retried with growing backoff, at least once across crashes, exactly once
across concurrent relays, and parked when the receiver refuses them for good."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError

from taskforge_common.clock import ManualClock
from taskforge_common.db.base import new_metadata
from taskforge_common.db.engine import Database
from taskforge_common.outbox import (
    Backoff,
    DeliveryError,
    OutboxMessage,
    OutboxRelay,
    PermanentDeliveryError,
    RelayResult,
    add_to_outbox,
    outbox_table,
)
from tests.databases import fresh_postgres_database

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NO_JITTER = Backoff(timedelta(seconds=1), timedelta(minutes=5), factor=2, jitter=0)
metadata = new_metadata()
OUTBOX = outbox_table(metadata)


@contextlib.asynccontextmanager
async def outbox_database(dialect: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new database holding an empty outbox table."""
    async with contextlib.AsyncExitStack() as stack:
        if dialect == "postgresql":
            url = await stack.enter_async_context(fresh_postgres_database("tf_test_outbox"))
        else:
            url = f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}"
        database = Database(url, pool_size=2)
        try:
            async with database.transaction() as transaction:
                await transaction.session.run_sync(
                    lambda session: metadata.create_all(session.connection())
                )
                await transaction.commit()
        finally:
            await database.dispose()
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with outbox_database(request.param, tmp_path) as url:
        database = Database(url, pool_size=4)
        yield database
        await database.dispose()


class Receiver:
    """A `deliver` that records what it received and fails as told, per (key, version)."""

    def __init__(self) -> None:
        self.received: list[OutboxMessage] = []
        self.failures: dict[tuple[str, int], list[Exception]] = defaultdict(list)

    async def __call__(self, message: OutboxMessage) -> None:
        planned = self.failures[(message.key, message.version)]
        if planned:
            raise planned.pop(0)
        self.received.append(message)

    def versions(self, key: str) -> list[int]:
        return [m.version for m in self.received if m.key == key]


def relay_for(
    database: Database,
    deliver: Callable[[OutboxMessage], Awaitable[None]],
    clock: ManualClock,
    **options: Any,
) -> OutboxRelay:
    options.setdefault("backoff", NO_JITTER)
    return OutboxRelay(database, OUTBOX, deliver, clock, **options)


async def add(
    database: Database,
    *messages: tuple[str, int],
    topic: str = "metering.entitlements",
    commit: bool = True,
) -> list[str]:
    """Add (key, version) messages in one transaction."""
    ids = []
    async with database.transaction() as transaction:
        for key, version in messages:
            payload = {"organization_id": key, "version": version, "email": "ann@example.com"}
            ids.append(
                await add_to_outbox(
                    transaction.session,
                    OUTBOX,
                    topic=topic,
                    key=key,
                    version=version,
                    payload=payload,
                    now=START,
                )
            )
        if commit:
            await transaction.commit()
    return ids


async def row(database: Database, message_id: str) -> Any:
    async with database.transaction() as transaction:
        return (
            await transaction.session.execute(select(OUTBOX).where(OUTBOX.c.id == message_id))
        ).one()


async def test_only_committed_messages_are_delivered(database: Database) -> None:
    await add(database, ("org-rolled-back", 1), commit=False)
    [kept] = await add(database, ("org-a", 1))
    receiver, clock = Receiver(), ManualClock(START)
    relay = relay_for(database, receiver, clock)
    assert await relay.pending_count() == 1
    assert await relay.relay_once() == RelayResult(claimed=1, delivered=1)
    assert [m.id for m in receiver.received] == [kept]
    assert receiver.received[0].payload == {
        "organization_id": "org-a",
        "version": 1,
        "email": "ann@example.com",
    }
    assert await relay.relay_once() == RelayResult()
    assert await relay.pending_count() == 0
    assert (await row(database, kept)).delivered_at == START


async def test_a_failing_delivery_is_retried_with_growing_backoff_until_delivered_once(
    database: Database,
) -> None:
    [message_id] = await add(database, ("org-a", 1))
    receiver, clock = Receiver(), ManualClock(START)
    receiver.failures[("org-a", 1)] = [
        RuntimeError("connect to https://user:secret@metering failed"),
        DeliveryError("metering answered UNAVAILABLE"),
        TimeoutError(),
    ]
    relay = relay_for(database, receiver, clock)
    for attempt, (delay, error) in enumerate(
        [
            (1, "RuntimeError"),
            (2, "DeliveryError: metering answered UNAVAILABLE"),
            (4, "TimeoutError"),
        ],
        start=1,
    ):
        assert await relay.relay_once() == RelayResult(claimed=1, failed=1)
        stored = await row(database, message_id)
        assert (stored.attempts, stored.last_error) == (attempt, error)
        assert stored.available_at == clock.now() + timedelta(seconds=delay)
        assert stored.lease_until is None
        clock.advance(timedelta(seconds=delay) - timedelta(microseconds=1))
        assert await relay.relay_once() == RelayResult()  # not due yet
        clock.advance(timedelta(microseconds=1))
    assert await relay.relay_once() == RelayResult(claimed=1, delivered=1)
    assert [(m.id, m.attempts) for m in receiver.received] == [(message_id, 3)]
    clock.advance(timedelta(hours=1))
    assert await relay.relay_once() == RelayResult()
    assert len(receiver.received) == 1


async def test_versions_of_a_key_are_delivered_in_order_while_other_keys_proceed(
    database: Database,
) -> None:
    await add(database, ("org-a", 3), ("org-b", 2), ("org-a", 1), ("org-b", 1), ("org-a", 2))
    receiver, clock = Receiver(), ManualClock(START)
    receiver.failures[("org-a", 1)] = [DeliveryError("down"), DeliveryError("down")]
    relay = relay_for(database, receiver, clock)
    # org-a's first version fails and holds back its later ones; org-b is delivered meanwhile.
    assert await relay.relay_once() == RelayResult(claimed=5, delivered=2, failed=1)
    assert (receiver.versions("org-a"), receiver.versions("org-b")) == ([], [1, 2])
    clock.advance(timedelta(seconds=1))
    assert await relay.relay_once() == RelayResult(claimed=3, failed=1)
    clock.advance(timedelta(seconds=2))
    assert await relay.relay_once() == RelayResult(claimed=3, delivered=3)
    assert receiver.versions("org-a") == [1, 2, 3]


async def test_a_batch_takes_at_most_batch_size_messages_in_version_order(
    database: Database,
) -> None:
    await add(database, *((f"org-{k}", v) for k in range(3) for v in range(4, 0, -1)))
    receiver, clock = Receiver(), ManualClock(START)
    relay = relay_for(database, receiver, clock, batch_size=5)
    results = [await relay.relay_once() for _ in range(3)]
    assert [r.delivered for r in results] == [5, 5, 2]
    assert all(receiver.versions(f"org-{k}") == [1, 2, 3, 4] for k in range(3))


async def test_a_permanent_failure_is_parked_and_later_versions_proceed(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    [refused, _] = await add(database, ("org-a", 1), ("org-a", 2))
    receiver, clock = Receiver(), ManualClock(START)
    receiver.failures[("org-a", 1)] = [PermanentDeliveryError("metering refused: unknown tier")]
    relay = relay_for(database, receiver, clock)
    with caplog.at_level(logging.ERROR, logger="taskforge_common.outbox"):
        assert await relay.relay_once() == RelayResult(claimed=2, delivered=1, parked=1)
    assert receiver.versions("org-a") == [2]
    stored = await row(database, refused)
    assert stored.parked_at == START
    assert stored.last_error == "PermanentDeliveryError: metering refused: unknown tier"
    assert (await relay.pending_count(), await relay.parked_count()) == (0, 1)
    clock.advance(timedelta(days=365))
    assert await relay.relay_once() == RelayResult()  # parked means never retried
    [logged] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert refused in logged.getMessage()
    assert "ann@example.com" not in caplog.text  # payloads are never logged
    # A later version written afterwards is not held back by the parked one either.
    await add(database, ("org-a", 3))
    assert await relay.relay_once() == RelayResult(claimed=1, delivered=1)
    assert receiver.versions("org-a") == [2, 3]


async def test_a_run_never_skips_a_version_that_is_not_due_yet(database: Database) -> None:
    """v2 was written (and failed) before v1 and v3 committed: v1 goes, v3 waits for v2."""
    await add(database, ("org-a", 2))
    receiver, clock = Receiver(), ManualClock(START)
    receiver.failures[("org-a", 2)] = [DeliveryError("metering unavailable")]
    relay = relay_for(database, receiver, clock)
    assert await relay.relay_once() == RelayResult(claimed=1, failed=1)
    await add(database, ("org-a", 1), ("org-a", 3))
    assert await relay.relay_once() == RelayResult(claimed=1, delivered=1)
    assert receiver.versions("org-a") == [1]
    clock.advance(timedelta(minutes=10))  # v2's backoff is over
    await relay.relay_once()
    assert receiver.versions("org-a") == [1, 2, 3]


async def test_a_relay_stopped_between_delivery_and_record_delivers_again(
    database: Database,
) -> None:
    """At least once: the effect of the first delivery happened, its record did not."""
    [message_id] = await add(database, ("org-a", 1))
    clock = ManualClock(START)
    delivered: list[str] = []
    stuck = asyncio.Event()

    async def deliver_then_hang(message: OutboxMessage) -> None:
        delivered.append(message.id)
        stuck.set()
        await asyncio.Event().wait()  # the relay dies here, after the receiver has it

    crashing = relay_for(database, deliver_then_hang, clock)
    task = asyncio.create_task(crashing.relay_once())
    await stuck.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def deliver(message: OutboxMessage) -> None:
        delivered.append(message.id)

    relay = relay_for(database, deliver, clock)
    assert await relay.relay_once() == RelayResult()  # still leased by the stopped relay
    clock.advance(timedelta(seconds=30))
    assert await relay.relay_once() == RelayResult(claimed=1, delivered=1)
    assert delivered == [message_id, message_id]


async def test_a_run_whose_lease_runs_out_stops_and_leaves_the_rest(database: Database) -> None:
    await add(database, ("org-a", 1), ("org-a", 2))
    clock = ManualClock(START)
    received: list[int] = []

    async def slow(message: OutboxMessage) -> None:
        received.append(message.version)
        clock.advance(timedelta(seconds=31))

    relay = relay_for(database, slow, clock)
    assert await relay.relay_once() == RelayResult(claimed=2, delivered=1)
    assert await relay.relay_once() == RelayResult(claimed=1, delivered=1)
    assert received == [1, 2]


async def test_a_relay_takes_only_its_topics(database: Database) -> None:
    await add(database, ("org-a", 1), topic="webhooks")
    await add(database, ("org-a", 1), topic="metering.entitlements")
    receiver, clock = Receiver(), ManualClock(START)
    relay = relay_for(database, receiver, clock, topics={"webhooks"})
    assert await relay.pending_count() == 1
    assert await relay.relay_once() == RelayResult(claimed=1, delivered=1)
    assert [m.topic for m in receiver.received] == ["webhooks"]


async def test_run_relays_until_stopped_and_survives_database_errors(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await add(database, *((f"org-{k}", 1) for k in range(5)))
    receiver, clock = Receiver(), ManualClock(START)
    stop = asyncio.Event()
    missing = outbox_table(new_metadata(), "no_such_outbox")
    broken = OutboxRelay(database, missing, receiver, clock)
    relay = relay_for(database, receiver, clock, batch_size=2)
    with caplog.at_level(logging.ERROR, logger="taskforge_common.outbox"):
        runs = [
            asyncio.create_task(r.run(stop, timedelta(milliseconds=10))) for r in (relay, broken)
        ]
        for _ in range(500):
            if len(receiver.received) == 5 and len(caplog.records) >= 2:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*runs), 5)
    assert len(receiver.received) == 5
    assert all("no_such_outbox failed; retrying" in r.getMessage() for r in caplog.records)
    assert len(caplog.records) >= 2  # the broken relay kept trying


async def test_concurrent_relays_on_postgresql_deliver_every_message_exactly_once(
    tmp_path: Path,
) -> None:
    keys, versions = 20, 10
    async with outbox_database("postgresql", tmp_path) as url:
        databases = [Database(url, pool_size=4) for _ in range(3)]
        try:
            for version in range(1, versions + 1):
                await add(databases[0], *((f"org-{k}", version) for k in range(keys)))
            clock = ManualClock(START)
            received: list[OutboxMessage] = []

            async def deliver(message: OutboxMessage) -> None:
                await asyncio.sleep(0.001 * (hash(message.id) % 3))
                received.append(message)

            relays = [relay_for(db, deliver, clock, batch_size=7) for db in databases]

            async def drain(relay: OutboxRelay) -> None:
                while await relay.pending_count():
                    await relay.relay_once()

            await asyncio.gather(*(drain(relay) for relay in relays))
        finally:
            for db in databases:
                await db.dispose()
    assert len(received) == keys * versions
    assert set(Counter(m.id for m in received).values()) == {1}
    by_key: dict[str, list[int]] = defaultdict(list)
    for message in received:
        by_key[message.key].append(message.version)
    assert all(delivered == list(range(1, versions + 1)) for delivered in by_key.values())


def test_backoff_grows_to_its_cap_with_bounded_jitter() -> None:
    backoff = Backoff(timedelta(seconds=1), timedelta(minutes=5), factor=2, jitter=0.2)
    delays = [backoff.delay(n, lambda: 0.0).total_seconds() for n in range(1, 11)]
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert backoff.delay(10**6, lambda: 0.0) == timedelta(minutes=5)  # no float overflow
    assert backoff.delay(1, lambda: 1.0) == timedelta(seconds=0.8)
    assert Backoff(factor=1).delay(50, lambda: 0.0) == timedelta(seconds=1)
    for invalid in (
        {"initial": timedelta(0)},
        {"initial": timedelta(hours=1)},
        {"factor": 0.5},
        {"jitter": 1.0},
    ):
        with pytest.raises(ValueError, match="backoff needs"):
            Backoff(**invalid)


def test_the_table_has_a_unique_version_per_key_and_a_due_index() -> None:
    table: Table = outbox_table(new_metadata(), "events_outbox")
    assert {c.name for c in table.constraints} >= {"uq_events_outbox_topic_key_version"}
    assert {i.name for i in table.indexes} == {"ix_events_outbox_due"}


async def test_a_version_is_written_once_per_key_and_topic(database: Database) -> None:
    await add(database, ("org-a", 1))
    await add(database, ("org-a", 1), topic="webhooks")
    with pytest.raises(IntegrityError):
        await add(database, ("org-a", 1))
