"""The composition root: settings, database, clock, the metering client and the use cases wired
into a running server, with the two loops that run beside it: the billing scheduler and the
outbox relay that pushes entitlements to metering.

Shutdown runs in the order that loses nothing: the server stops taking calls and lets in-flight
ones finish; then the scheduler (its run may still write entitlements to the outbox); then the
relay; then the metering channel the relay used; then the database and telemetry. What the relay
did not deliver stays in the outbox for the next start or another replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from taskforge.subscriptions.v1 import subscription_service_pb2_grpc
from taskforge_common.clock import Clock, SystemClock
from taskforge_common.db.engine import Database
from taskforge_common.grpc.auth import AuthInterceptor, JwtVerifier, Scope, ServiceTokenSource
from taskforge_common.grpc.server import (
    RunningServer,
    ServiceRegistration,
    serve_until_signal,
    start_server,
)
from taskforge_common.logging import configure_logging
from taskforge_common.outbox import OutboxRelay
from taskforge_common.page_tokens import PageTokens
from taskforge_common.telemetry import Telemetry, setup_telemetry
from taskforge_subscriptions.application.usage import UsageSource
from taskforge_subscriptions.application.use_cases import UseCases
from taskforge_subscriptions.clients.metering import ENTITLEMENTS_TOPIC, MeteringClient
from taskforge_subscriptions.config import SubscriptionsSettings
from taskforge_subscriptions.scheduler import BillingScheduler
from taskforge_subscriptions.storage.tables import outbox
from taskforge_subscriptions.storage.unit_of_work import SqlUnitOfWorkFactory
from taskforge_subscriptions.transport.servicer import (
    METHOD_SCOPES,
    SERVICE_NAME,
    SubscriptionServicer,
)

logger = logging.getLogger(__name__)

# The token this service shows metering: usage queries and entitlement pushes, any organisation.
METERING_SCOPES = (Scope.BILLING_READ, Scope.BILLING_ADMIN)
TOKEN_SUBJECT = "subscriptions"


@dataclass
class RunningService:
    """The started server and its background loops; `stop(grace)` shuts all of it down in
    order (the database and telemetry are the caller's: it made them)."""

    server: RunningServer
    metering: MeteringClient
    relay: OutboxRelay
    scheduler: BillingScheduler | None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def tasks(self) -> tuple[asyncio.Task[None], ...]:
        """The background loops, in the order they stop."""
        return tuple(self._tasks)

    def _start(self, name: str, loop: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
        self._tasks.append(asyncio.create_task(loop(self._stop), name=name))

    async def stop(self, grace: float) -> None:
        await self.server.stop(grace)
        await self.stop_background(grace)

    async def stop_background(self, grace: float) -> None:
        """Stop the scheduler, then the relay, each given `grace` seconds to finish what it is
        doing before it is cancelled; then close the metering channel."""
        self._stop.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, grace)
            except TimeoutError:
                logger.warning("%s did not stop within %.1f s; cancelled", task.get_name(), grace)
            except Exception:
                logger.exception("%s failed", task.get_name())
        await self.metering.close()


async def start(
    settings: SubscriptionsSettings,
    database: Database,
    telemetry: Telemetry,
    clock: Clock,
    usage: UsageSource | None = None,
) -> RunningService:
    """Start the subscriptions gRPC server on the configured host and port (0: any free port),
    the billing scheduler (unless its interval is 0) and the entitlements relay. `usage`
    replaces the metering client as the use cases' source of usage (tests); entitlements are
    pushed to the configured metering address either way."""
    metering = MeteringClient.connect(
        settings.metering_address,
        ServiceTokenSource(settings.auth, TOKEN_SUBJECT, METERING_SCOPES, clock=clock),
        deadline=settings.metering_deadline.total_seconds(),
        interceptors=telemetry.client_interceptors(),
    )
    use_cases = UseCases.build(
        SqlUnitOfWorkFactory(database),
        metering if usage is None else usage,
        clock,
        settings.billing,
        # Every replica has the token secret, so a page token pages on in any of them.
        PageTokens.from_secret(settings.auth.jwt_secret),
    )
    servicer = SubscriptionServicer(use_cases, settings.issuer)
    auth = AuthInterceptor(JwtVerifier(settings.auth, clock=clock), METHOD_SCOPES)
    try:
        server = await start_server(
            services=[
                ServiceRegistration(
                    SERVICE_NAME,
                    lambda grpc_server: (
                        subscription_service_pb2_grpc.add_SubscriptionServiceServicer_to_server(
                            servicer, grpc_server
                        )
                    ),
                )
            ],
            readiness=database.ping,
            host=settings.host,
            port=settings.port,
            interceptors=[*telemetry.server_interceptors(), auth],
        )
    except BaseException:
        await metering.close()  # no server, no loops: nothing else holds the channel
        raise
    relay = OutboxRelay(
        database,
        outbox,
        metering.push_entitlements,
        clock,
        topics=[ENTITLEMENTS_TOPIC],
        # Each push may take a whole deadline: the lease outlasts a batch's slow deliveries.
        lease=max(timedelta(seconds=30), settings.metering_deadline * 6),
    )
    scheduler = (
        BillingScheduler(use_cases.billing, clock, settings.billing_run_interval)
        if settings.scheduler_enabled
        else None
    )
    running = RunningService(server, metering, relay, scheduler)
    if scheduler is not None:
        running._start("billing-scheduler", scheduler.run)
    else:
        logger.info("billing scheduler disabled: runs only through RunBillingCycle")
    interval = settings.outbox_relay_interval
    running._start("entitlements-relay", lambda stop: relay.run(stop, interval))
    return running


async def main() -> None:
    settings = SubscriptionsSettings.from_env()
    configure_logging(settings.telemetry.service_name, settings.telemetry.log_level)
    telemetry = setup_telemetry(settings.telemetry)
    database = Database(settings.database_url, pool_size=settings.database_pool_size)
    running = await start(settings, database, telemetry, SystemClock())
    grace = settings.shutdown_grace.total_seconds()
    await serve_until_signal(
        running.server,
        grace=grace,
        on_shutdown=[
            lambda: running.stop_background(grace),
            database.dispose,
            lambda: asyncio.to_thread(telemetry.shutdown),
        ],
    )
