"""The metering and subscriptions services, real and wired together, for tests that drive both
through gRPC: each service's own composition root on 127.0.0.1 port 0, each on its own migrated
database of one dialect, sharing one ManualClock.

    async with ServiceDatabases.create("sqlite", tmp_path) as databases:
        await databases.reset()  # before each test
        async with running_services(databases, ManualClock(start)) as services:
            await services.subscriptions.CreateSubscription(..., metadata=services.customer(org))
            await services.relay()  # entitlements reach metering now, not "eventually"

Entitlements travel from subscriptions to metering through the subscriptions outbox. The
service's background relay is left idle (an hour between polls) and its billing scheduler is off,
so nothing happens behind a test's back: `relay()` delivers every pending message at once, and
billing runs only when the test calls RunBillingCycle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import grpc
from opentelemetry.sdk.trace import TracerProvider

from taskforge.metering.v1 import metering_service_pb2_grpc
from taskforge.subscriptions.v1 import subscription_service_pb2_grpc
from taskforge_common.clock import ManualClock
from taskforge_common.config import AuthSettings, TelemetrySettings
from taskforge_common.db.engine import Database
from taskforge_common.grpc.auth import Scope, issue_token
from taskforge_common.outbox import OutboxRelay
from taskforge_common.telemetry import setup_telemetry
from taskforge_metering.storage.tables import metadata as metering_metadata
from taskforge_subscriptions import bootstrap
from taskforge_subscriptions.config import SubscriptionsSettings
from taskforge_subscriptions.rendering.invoice_pdf import DEFAULT_ISSUER
from tests.databases import empty_tables, migrated_database
from tests.metering.service_client import SECRET, start_service
from tests.subscriptions.conftest import Seed, read_seed, reset

Metadata = tuple[tuple[str, str], ...]

# SPEC §4's defaults: period-end invoices stay draft an hour; 10% tax.
INVOICE_GRACE = timedelta(hours=1)
DEFAULT_TAX_RATE = Decimal("0.10")
CUSTOMER_SCOPES = (Scope.BILLING_READ, Scope.BILLING_WRITE)
PLATFORM_SCOPES = (Scope.USAGE_WRITE, Scope.LIMITS_READ)
# More relay rounds than this without draining the outbox is a bug, not a slow test.
_MAX_RELAY_ROUNDS = 50


@dataclass
class ServiceDatabases:
    """One migrated database per service, of the same dialect, kept for a test session."""

    dialect: str
    metering: Database
    subscriptions: Database
    seed: Seed

    @classmethod
    @asynccontextmanager
    async def create(cls, dialect: str, tmp_dir: Path) -> AsyncIterator[ServiceDatabases]:
        async with (
            migrated_database("metering", dialect, tmp_dir) as metering,
            migrated_database("subscriptions", dialect, tmp_dir) as subscriptions,
        ):
            yield cls(dialect, metering, subscriptions, await read_seed(subscriptions))

    async def reset(self) -> None:
        """Back to what the migrations left: no usage, no subscriptions, the seeded price book
        and sequences (so invoice numbers start again at 1); the append-only audit trail stays."""
        await empty_tables(self.metering, metering_metadata)
        await reset(self.subscriptions, self.seed)


@dataclass
class Services:
    """Stubs of both running services, the clock they share and tokens to call them with."""

    metering: metering_service_pb2_grpc.MeteringServiceAsyncStub
    subscriptions: subscription_service_pb2_grpc.SubscriptionServiceAsyncStub
    clock: ManualClock
    outbox_relay: OutboxRelay

    def token(
        self, scopes: Sequence[str], organization_id: str | None = None, subject: str = "tester"
    ) -> str:
        """A bearer token issued now (by the shared clock), valid for an hour of it."""
        return issue_token(
            SECRET, subject, scopes, organization_id=organization_id, now=self.clock.now()
        )

    def auth(
        self, scopes: Sequence[str], organization_id: str | None = None, subject: str = "tester"
    ) -> Metadata:
        return (("authorization", f"Bearer {self.token(scopes, organization_id, subject)}"),)

    def customer(self, organization_id: str, scopes: Sequence[str] = CUSTOMER_SCOPES) -> Metadata:
        """The dashboard acting for one organisation: billing:read and billing:write, bound."""
        return self.auth(scopes, organization_id, "customer")

    def operator(self) -> Metadata:
        """An operator: billing:admin, bound to no organisation."""
        return self.auth([Scope.BILLING_ADMIN], None, "operator")

    def platform(self, organization_id: str) -> Metadata:
        """TaskForge's own services reporting usage and checking limits for one organisation."""
        return self.auth(PLATFORM_SCOPES, organization_id, "platform")

    async def relay(self) -> int:
        """Deliver every pending entitlements message to metering now; answers how many.
        A failed or parked delivery fails the test: the message would otherwise wait for a
        backoff measured on a clock that only moves when the test moves it."""
        delivered = 0
        for _ in range(_MAX_RELAY_ROUNDS):
            result = await self.outbox_relay.relay_once()
            if result.failed or result.parked:
                raise AssertionError(f"entitlements delivery to metering failed: {result}")
            delivered += result.delivered
            if await self.outbox_relay.pending_count() == 0:
                return delivered
        raise AssertionError(f"the outbox still has pending messages after {delivered}")


def subscriptions_settings(
    database: Database, metering_port: int, invoice_grace: timedelta = INVOICE_GRACE
) -> SubscriptionsSettings:
    return SubscriptionsSettings(
        database_url=database.url,
        host="127.0.0.1",
        port=0,
        database_pool_size=5,
        metering_address=f"127.0.0.1:{metering_port}",
        metering_deadline=timedelta(seconds=10),
        invoice_grace=invoice_grace,
        suspension_grace=timedelta(days=14),
        default_tax_rate=DEFAULT_TAX_RATE,
        billing_run_interval=timedelta(0),  # no scheduler: billing runs when the test says
        outbox_relay_interval=timedelta(hours=1),  # idle: the test relays with relay()
        issuer=DEFAULT_ISSUER,
        shutdown_grace=timedelta(seconds=1),
        auth=AuthSettings(jwt_secret=SECRET),
        telemetry=TelemetrySettings("subscriptions"),
    )


@asynccontextmanager
async def running_services(
    databases: ServiceDatabases, clock: ManualClock, invoice_grace: timedelta = INVOICE_GRACE
) -> AsyncIterator[Services]:
    """Metering, then subscriptions pointed at it, each from its own composition root; both
    stopped afterwards (the databases stay: they are the caller's)."""
    async with AsyncExitStack() as stack:
        metering = await start_service(databases.metering, clock)
        stack.push_async_callback(metering.stop, 1)
        settings = subscriptions_settings(databases.subscriptions, metering.port, invoice_grace)
        telemetry = setup_telemetry(settings.telemetry, tracer_provider=TracerProvider())
        subscriptions = await bootstrap.start(settings, databases.subscriptions, telemetry, clock)
        stack.push_async_callback(subscriptions.stop, 1)
        metering_channel = await stack.enter_async_context(
            grpc.aio.insecure_channel(f"127.0.0.1:{metering.port}")
        )
        subscriptions_channel = await stack.enter_async_context(
            grpc.aio.insecure_channel(f"127.0.0.1:{subscriptions.port}")
        )
        yield Services(
            metering=metering_service_pb2_grpc.MeteringServiceStub(metering_channel),
            subscriptions=subscription_service_pb2_grpc.SubscriptionServiceStub(
                subscriptions_channel
            ),
            clock=clock,
            outbox_relay=subscriptions.relay,
        )
