"""MeteringClient against the real metering server (its own composition root, in-process on
127.0.0.1) on PostgreSQL and SQLite: summaries are GetUsageSummary's, in calls of at most 1,000
queries; the standing maps every limit; an entitlements push from the outbox is what
CheckLimits enforces, an older version changes nothing; entitlements written while metering
was down reach it through the outbox relay once it is back; and the service's composition root
relays a new subscription's entitlements to metering by itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import metering_service_pb2_grpc, usage_pb2
from taskforge.subscriptions.v1 import subscription_service_pb2 as subscriptions_pb
from taskforge.subscriptions.v1 import subscription_service_pb2_grpc
from taskforge_common.clock import ManualClock
from taskforge_common.config import AuthSettings, TelemetrySettings
from taskforge_common.db.base import new_metadata
from taskforge_common.db.engine import Database
from taskforge_common.errors import Reason, Unavailable
from taskforge_common.grpc.auth import Scope, ServiceTokenSource
from taskforge_common.grpc.server import RunningServer
from taskforge_common.meters import UsageType
from taskforge_common.outbox import (
    Backoff,
    DeliveryError,
    OutboxMessage,
    OutboxRelay,
    PermanentDeliveryError,
    add_to_outbox,
    outbox_table,
)
from taskforge_common.telemetry import setup_telemetry
from taskforge_metering import bootstrap
from taskforge_metering.config import MeteringSettings
from taskforge_metering.storage.tables import metadata as metering_metadata
from taskforge_subscriptions import bootstrap as subscriptions_bootstrap
from taskforge_subscriptions.application.changes import entitlements_of
from taskforge_subscriptions.application.usage import UsageQuery
from taskforge_subscriptions.clients.metering import (
    ENTITLEMENTS_TOPIC,
    MeteringClient,
)
from taskforge_subscriptions.config import SubscriptionsSettings
from taskforge_subscriptions.domain.plans import BillingCycle, Tier
from taskforge_subscriptions.domain.subscriptions import Subscription, SubscriptionStatus
from taskforge_subscriptions.rendering.invoice_pdf import DEFAULT_ISSUER
from tests.databases import empty_tables, fresh_postgres_database, migrated_database
from tests.metering.service_client import ORG, OTHER_ORG, SECRET, Client, grant, stamp

DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
JOB = common_pb2.USAGE_TYPE_JOB_EXECUTION
API = common_pb2.USAGE_TYPE_API_CALL
STORAGE = common_pb2.USAGE_TYPE_STORAGE
# Reconnect quickly after metering comes back (the default first wait is a second).
FAST_RECONNECT = (
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 200),
)


@pytest.fixture(scope="session", params=DIALECTS)
async def metering_database_session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    async with migrated_database(
        "metering", request.param, tmp_path_factory.mktemp("metering_client")
    ) as database:
        yield database


@pytest.fixture
async def metering_database(metering_database_session: Database) -> Database:
    await empty_tables(metering_database_session, metering_metadata)
    return metering_database_session


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


async def start_metering(database: Database, clock: ManualClock, port: int) -> RunningServer:
    settings = MeteringSettings(
        database_url=database.url,
        host="127.0.0.1",
        port=port,
        database_pool_size=5,
        workers=1,
        ingest_rate_per_second=1_000_000,
        shutdown_grace=timedelta(seconds=1),
        auth=AuthSettings(jwt_secret=SECRET),
        telemetry=TelemetrySettings("metering"),
    )
    telemetry = setup_telemetry(settings.telemetry, tracer_provider=TracerProvider())
    return await bootstrap.start(settings, database, telemetry, clock)


@dataclass
class Metering:
    """The running metering server, which a test may stop and start again on its port."""

    database: Database
    clock: ManualClock
    running: RunningServer | None
    port: int = 0

    async def stop(self) -> None:
        assert self.running is not None
        await self.running.stop(0)
        self.running = None

    async def restart(self) -> None:
        assert self.running is None
        self.running = await start_metering(self.database, self.clock, self.port)


@pytest.fixture
async def metering(metering_database: Database, clock: ManualClock) -> AsyncIterator[Metering]:
    running = await start_metering(metering_database, clock, 0)
    server = Metering(metering_database, clock, running, running.port)
    yield server
    if server.running is not None:
        await server.running.stop(0)


@pytest.fixture
async def raw(metering: Metering, clock: ManualClock) -> AsyncIterator[Client]:
    """A plain stub with an all-scopes token: what the client's answers are compared with."""
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{metering.port}", options=FAST_RECONNECT
    ) as channel:
        yield Client(metering_service_pb2_grpc.MeteringServiceStub(channel), clock, channel)


class CallLog(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Every unary call the client makes: (method, request)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        method = details.method
        self.calls.append((method.decode() if isinstance(method, bytes) else method, request))
        return await continuation(details, request)


@dataclass
class Subject:
    client: MeteringClient
    log: CallLog = field(default_factory=CallLog)


def connect(
    port: int, clock: ManualClock, log: CallLog | None = None, secret: str = SECRET
) -> MeteringClient:
    tokens = ServiceTokenSource(
        AuthSettings(jwt_secret=secret),
        "subscriptions",
        [Scope.BILLING_READ, Scope.BILLING_ADMIN],
        clock=clock,
    )
    return MeteringClient.connect(
        f"127.0.0.1:{port}",
        tokens,
        deadline=10,
        interceptors=[] if log is None else [cast(grpc.aio.ClientInterceptor, log)],
        options=FAST_RECONNECT,
    )


@pytest.fixture
async def subject(metering: Metering, clock: ManualClock) -> AsyncIterator[Subject]:
    log = CallLog()
    client = connect(metering.port, clock, log)
    yield Subject(client, log)
    await client.close()


async def record(
    client: Client, organization_id: str, usage_type: int, at: datetime, q: str
) -> None:
    event = pb.RecordUsageRequest().event
    event.organization_id = organization_id
    event.usage_type = cast(common_pb2.UsageType, usage_type)
    event.quantity = q
    event.idempotency_key = f"{organization_id}-{usage_type}-{at.isoformat()}-{q}"
    event.timestamp.CopyFrom(stamp(at))
    await client.stub.RecordUsage(pb.RecordUsageRequest(event=event), metadata=client.auth())


def subscription(
    version: int = 1,
    limits: dict[UsageType, Decimal] | None = None,
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
    usage_closed_before: datetime | None = None,
) -> Subscription:
    anchor = datetime(2026, 3, 1, tzinfo=UTC)
    return Subscription(
        id="5f0c9a1e-0000-4000-8000-000000000001",
        organization_id=ORG,
        tier=Tier.PRO,
        status=status,
        cycle=BillingCycle.MONTHLY,
        auto_renew=True,
        cancel_at_period_end=False,
        price_per_month=Decimal("49.00"),
        currency="USD",
        limits=limits if limits is not None else {UsageType.JOB_EXECUTION: Decimal(100)},
        anchor=anchor,
        period_index=0,
        created_at=anchor,
        updated_at=anchor,
        usage_closed_before=usage_closed_before,
        version=version,
    )


def usage_type_of(number: int) -> UsageType:
    return UsageType[common_pb2.UsageType.Name(number).removeprefix("USAGE_TYPE_")]


def message_of(sub: Subscription, message_id: str = "m-1") -> OutboxMessage:
    update = entitlements_of(sub)
    return OutboxMessage(
        id=message_id,
        topic=ENTITLEMENTS_TOPIC,
        key=update.organization_id,
        version=update.version,
        payload=dict(update.payload),
        created_at=NOW,
        attempts=0,
    )


async def check(client: Client, organization_id: str = ORG) -> pb.CheckLimitsResponse:
    return await client.stub.CheckLimits(
        pb.CheckLimitsRequest(organization_id=organization_id), metadata=client.auth()
    )


async def eventually_allowed(client: Client, seconds: float = 10) -> pb.CheckLimitsResponse:
    """CheckLimits once it allows the organisation: entitlements arrive through a relay."""
    async with asyncio.timeout(seconds):
        while True:
            reply = await check(client)
            if reply.allowed:
                return reply
            await asyncio.sleep(0.02)


# Summaries -------------------------------------------------------------------------------------


async def test_summaries_are_what_get_usage_summary_answers(subject: Subject, raw: Client) -> None:
    await record(raw, ORG, JOB, T0, "3")
    await record(raw, ORG, JOB, T0 + 2 * HOUR, "4")
    await record(raw, ORG, API, T0 + HOUR, "0.5")
    await record(raw, ORG, STORAGE, T0 - HOUR, "10")
    await record(raw, OTHER_ORG, JOB, T0 + HOUR, "7")
    queries = [
        UsageQuery(ORG, T0, T0 + HOUR),
        UsageQuery(ORG, T0, T0 + 3 * HOUR),
        UsageQuery(OTHER_ORG, T0, T0 + 3 * HOUR),
        UsageQuery(ORG, T0 - 2 * HOUR, T0 + 4 * HOUR),
        UsageQuery(ORG, T0, T0 + HOUR),  # a repeated query is answered again
    ]

    answers = await subject.client.summaries(queries)

    expected = []
    for query in queries:
        reply = await raw.stub.GetUsageSummary(
            pb.GetUsageSummaryRequest(
                organization_id=query.organization_id,
                start_time=stamp(query.start),
                end_time=stamp(query.end),
            ),
            metadata=raw.auth(),
        )
        expected.append(
            {usage_type_of(item.usage_type): Decimal(item.quantity) for item in reply.items}
        )
    assert answers == expected
    assert answers[1][UsageType.JOB_EXECUTION] == Decimal(7)
    assert answers[1][UsageType.API_CALL] == Decimal("0.5")
    assert answers[2][UsageType.JOB_EXECUTION] == Decimal(7)
    assert answers[3][UsageType.STORAGE] == Decimal(50)  # 10 GB for 5 hours, in GB-hours
    assert all(isinstance(q, Decimal) for answer in answers for q in answer.values())
    assert set(answers[0]) == set(UsageType)  # every meter, zeros included


async def test_summaries_go_in_calls_of_at_most_1000_queries_and_keep_their_order(
    subject: Subject, raw: Client
) -> None:
    for hour in range(10):
        await record(raw, ORG, JOB, T0 + hour * HOUR, "1")
    # Query i covers (i % 10) + 1 hours: its answer tells which query it belongs to.
    queries = [UsageQuery(ORG, T0, T0 + (i % 10 + 1) * HOUR) for i in range(2500)]

    answers = await subject.client.summaries(queries)

    calls = [
        request for method, request in subject.log.calls if method.endswith("/GetUsageSummaries")
    ]
    assert [len(request.queries) for request in calls] == [1000, 1000, 500]
    assert [answer[UsageType.JOB_EXECUTION] for answer in answers] == [
        Decimal(i % 10 + 1) for i in range(2500)
    ]


async def test_no_queries_make_no_call(subject: Subject) -> None:
    assert await subject.client.summaries([]) == []
    assert subject.log.calls == []


# Standing --------------------------------------------------------------------------------------


async def test_standing_maps_current_usage_and_every_limit(subject: Subject, raw: Client) -> None:
    await grant(raw, job_execution="10", api_call="100", storage="5", queues="")
    await record(raw, ORG, JOB, NOW - HOUR, "12")
    await record(raw, ORG, API, NOW - HOUR, "40")
    await record(raw, ORG, STORAGE, NOW - HOUR, "2.5")

    standing = await subject.client.standing(ORG)

    assert standing.current[UsageType.JOB_EXECUTION] == Decimal(12)
    assert standing.current[UsageType.API_CALL] == Decimal(40)
    assert standing.current[UsageType.STORAGE] == Decimal("2.5")
    assert standing.current[UsageType.QUEUES] == Decimal(0)
    usage = await raw.stub.GetCurrentUsage(
        pb.GetCurrentUsageRequest(organization_id=ORG), metadata=raw.auth()
    )
    assert standing.window_start == usage.usage.period_start.ToDatetime(tzinfo=UTC)
    assert standing.window_end == usage.usage.period_end.ToDatetime(tzinfo=UTC)
    limits = {limit.usage_type: limit for limit in standing.limits}
    reply = await check(raw)
    assert len(limits) == len(reply.limits) >= 3
    job = limits[UsageType.JOB_EXECUTION]
    assert (job.limit, job.current, job.remaining, job.exceeded) == (
        Decimal(10),
        Decimal(12),
        Decimal(0),
        True,
    )
    api = limits[UsageType.API_CALL]
    assert (api.limit, api.current, api.remaining, api.exceeded) == (
        Decimal(100),
        Decimal(40),
        Decimal(60),
        False,
    )
    assert limits[UsageType.STORAGE].remaining == Decimal("2.5")
    for status in reply.limits:
        mapped = limits[usage_type_of(status.usage_type)]
        assert mapped.limit == (Decimal(status.limit) if status.limit else None)
        assert mapped.current == Decimal(status.current)
        assert mapped.exceeded is status.exceeded


async def test_an_organisation_without_entitlements_stands_without_limits(
    subject: Subject,
) -> None:
    standing = await subject.client.standing(OTHER_ORG)
    assert standing.limits == []
    assert set(standing.current.values()) == {Decimal(0)}


# Entitlement pushes ----------------------------------------------------------------------------


async def test_a_push_is_what_check_limits_enforces_and_an_older_version_is_ignored(
    subject: Subject, raw: Client
) -> None:
    assert not (await check(raw)).allowed  # no subscription yet

    await subject.client.push_entitlements(
        message_of(subscription(version=2, limits={UsageType.JOB_EXECUTION: Decimal(5)}))
    )
    reply = await check(raw)
    assert reply.allowed
    assert [(s.usage_type, s.limit) for s in reply.limits] == [(JOB, "5")]

    await subject.client.push_entitlements(
        message_of(subscription(version=1, limits={UsageType.JOB_EXECUTION: Decimal(1000)}), "m-0")
    )
    assert [(s.usage_type, s.limit) for s in (await check(raw)).limits] == [(JOB, "5")]

    await subject.client.push_entitlements(
        message_of(subscription(version=3, status=SubscriptionStatus.PAST_DUE), "m-3")
    )
    reply = await check(raw)
    assert not reply.allowed
    assert reply.reason == "payment overdue"


async def test_a_push_carries_every_field_of_the_payload(subject: Subject, raw: Client) -> None:
    closed = datetime(2026, 3, 5, tzinfo=UTC)
    sub = subscription(
        limits={UsageType.API_CALL: Decimal("2.5"), UsageType.QUEUES: Decimal(3)},
        usage_closed_before=closed,
    )
    await subject.client.push_entitlements(message_of(sub))

    stored = await raw.stub.UpsertEntitlements(
        pb.UpsertEntitlementsRequest(
            organization_id=ORG,
            entitlements=usage_pb2.Entitlements(
                status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE, version=0
            ),
        ),
        metadata=raw.auth(),
    )
    entitlements = stored.entitlements  # the newer stored ones, untouched by version 0
    assert entitlements.version == sub.entitlements_version
    assert entitlements.tier == common_pb2.TIER_PRO
    assert entitlements.billing_cycle == common_pb2.BILLING_CYCLE_MONTHLY
    assert entitlements.period_anchor.ToDatetime(tzinfo=UTC) == sub.anchor
    assert entitlements.current_period_start.ToDatetime(tzinfo=UTC) == sub.current_period.start
    assert entitlements.current_period_end.ToDatetime(tzinfo=UTC) == sub.current_period.end
    assert entitlements.usage_closed_before.ToDatetime(tzinfo=UTC) == closed
    assert sorted((limit.usage_type, limit.max) for limit in entitlements.limits) == [
        (API, "2.5"),
        (common_pb2.USAGE_TYPE_QUEUES, "3"),
    ]


async def test_a_payload_metering_refuses_is_parked_for_good(subject: Subject) -> None:
    # Seven decimal places: metering takes at most six, so this message can never be delivered.
    refused = message_of(subscription(limits={UsageType.JOB_EXECUTION: Decimal("0.0000001")}))
    with pytest.raises(PermanentDeliveryError) as failure:
        await subject.client.push_entitlements(refused)
    assert str(failure.value) == "metering UpsertEntitlements answered INVALID_ARGUMENT"

    unreadable = OutboxMessage("m-9", ENTITLEMENTS_TOPIC, ORG, 9, {"status": "gone"}, NOW, 0)
    with pytest.raises(PermanentDeliveryError):
        await subject.client.push_entitlements(unreadable)


async def test_a_token_metering_does_not_accept_is_retried_not_parked(
    metering: Metering, clock: ManualClock
) -> None:
    # A rotated secret: this replica's token is refused until it gets the new one.
    client = connect(metering.port, clock, secret="another-secret-that-is-long-enough-too")
    try:
        with pytest.raises(DeliveryError) as failure:
            await client.push_entitlements(message_of(subscription()))
        assert not isinstance(failure.value, PermanentDeliveryError)
        assert "UNAUTHENTICATED" in str(failure.value)
    finally:
        await client.close()


# Metering down ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def outbox_database(dialect: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A throwaway database holding an outbox table as the subscriptions service keeps one."""
    async with contextlib.AsyncExitStack() as stack:
        if dialect == "postgresql":
            url = await stack.enter_async_context(fresh_postgres_database("tf_test_sub_outbox"))
        else:
            url = f"sqlite+aiosqlite:///{tmp_path / 'subscriptions_outbox.db'}"
        database = Database(url, pool_size=2)
        stack.push_async_callback(database.dispose)
        async with database.transaction() as transaction:
            await transaction.session.run_sync(
                lambda session: OUTBOX_METADATA.create_all(session.connection())
            )
            await transaction.commit()
        yield database


OUTBOX_METADATA = new_metadata()
OUTBOX = outbox_table(OUTBOX_METADATA)


async def test_queries_answer_unavailable_while_metering_is_down(
    subject: Subject, metering: Metering
) -> None:
    await metering.stop()
    with pytest.raises(Unavailable) as down:
        await subject.client.summaries([UsageQuery(ORG, T0, T0 + HOUR)])
    assert down.value.reason is Reason.PEER_UNAVAILABLE  # not the database's
    with pytest.raises(Unavailable):
        await subject.client.standing(ORG)


async def test_entitlements_written_while_metering_is_down_reach_it_when_it_is_back(
    subject: Subject, metering: Metering, raw: Client, clock: ManualClock, tmp_path: Path
) -> None:
    await metering.stop()
    sub = subscription(limits={UsageType.JOB_EXECUTION: Decimal(42)})
    with pytest.raises(DeliveryError) as failure:
        await subject.client.push_entitlements(message_of(sub))
    assert not isinstance(failure.value, PermanentDeliveryError)

    async with outbox_database(metering.database.dialect, tmp_path) as database:
        update = entitlements_of(sub)
        async with database.transaction() as transaction:
            await add_to_outbox(
                transaction.session,
                OUTBOX,
                topic=ENTITLEMENTS_TOPIC,
                key=update.organization_id,
                version=update.version,
                payload=update.payload,
                now=clock.now(),
            )
            await transaction.commit()
        relay = OutboxRelay(
            database,
            OUTBOX,
            subject.client.push_entitlements,
            clock,
            topics=[ENTITLEMENTS_TOPIC],
            backoff=Backoff(timedelta(seconds=1), timedelta(seconds=1), jitter=0),
        )
        down = await relay.relay_once()
        assert (down.claimed, down.delivered, down.failed) == (1, 0, 1)

        await metering.restart()
        delivered = 0
        for _ in range(100):  # the channel reconnects within a few hundred milliseconds
            clock.advance(timedelta(seconds=2))
            delivered += (await relay.relay_once()).delivered
            if delivered:
                break
            await asyncio.sleep(0.05)
        assert delivered == 1
        assert (await relay.relay_once()).claimed == 0  # delivered once, not again

        async with database.read_only_transaction() as transaction:
            (row,) = (await transaction.session.execute(OUTBOX.select())).all()
        assert row.delivered_at is not None
        assert row.attempts >= 1  # the failures before metering was back
        assert row.last_error == "DeliveryError: metering UpsertEntitlements answered UNAVAILABLE"

    reply = await check(raw)
    assert reply.allowed
    assert [(s.usage_type, s.limit) for s in reply.limits] == [(JOB, "42")]


# The composition root ----------------------------------------------------------------------------


def subscriptions_settings(database: Database, metering_port: int) -> SubscriptionsSettings:
    return SubscriptionsSettings(
        database_url=database.url,
        host="127.0.0.1",
        port=0,
        database_pool_size=5,
        metering_address=f"127.0.0.1:{metering_port}",
        metering_deadline=timedelta(seconds=5),
        invoice_grace=timedelta(hours=1),
        suspension_grace=timedelta(days=14),
        default_tax_rate=Decimal("0.10"),
        billing_run_interval=timedelta(milliseconds=50),
        outbox_relay_interval=timedelta(milliseconds=20),
        issuer=DEFAULT_ISSUER,
        shutdown_grace=timedelta(seconds=1),
        auth=AuthSettings(jwt_secret=SECRET),
        telemetry=TelemetrySettings("subscriptions"),
    )


async def test_the_service_pushes_a_new_subscription_to_metering_through_its_relay(
    metering: Metering, raw: Client, subscriptions_database: Database, clock: ManualClock
) -> None:
    settings = subscriptions_settings(subscriptions_database, metering.port)
    telemetry = setup_telemetry(settings.telemetry, tracer_provider=TracerProvider())
    running = await subscriptions_bootstrap.start(
        settings, subscriptions_database, telemetry, clock
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = subscription_service_pb2_grpc.SubscriptionServiceStub(channel)
            await stub.CreateSubscription(
                subscriptions_pb.CreateSubscriptionRequest(
                    organization_id=ORG,
                    tier=common_pb2.TIER_STARTER,
                    billing_cycle=common_pb2.BILLING_CYCLE_MONTHLY,
                    auto_renew=True,
                ),
                metadata=raw.auth(),
            )
        reply = await eventually_allowed(raw)
        assert reply.limits  # the starter tier's limits
    finally:
        await running.stop(1)
    assert [task.get_name() for task in running.tasks] == [
        "billing-scheduler",
        "entitlements-relay",
    ]
    assert all(task.done() for task in running.tasks)
