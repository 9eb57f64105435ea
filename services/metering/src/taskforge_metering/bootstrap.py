"""The composition root: settings, database, clock and use cases wired into a running server."""

from __future__ import annotations

import asyncio
import gc

from taskforge.metering.v1 import metering_service_pb2_grpc
from taskforge_common.clock import Clock, SystemClock
from taskforge_common.db.engine import Database
from taskforge_common.grpc.auth import AuthInterceptor, JwtVerifier
from taskforge_common.grpc.server import (
    RunningServer,
    ServiceRegistration,
    serve_until_signal,
    start_server,
)
from taskforge_common.logging import configure_logging
from taskforge_common.page_tokens import PageTokens
from taskforge_common.telemetry import Telemetry, setup_telemetry
from taskforge_metering.application.use_cases import UseCases
from taskforge_metering.config import MeteringSettings
from taskforge_metering.storage.unit_of_work import SqlUnitOfWorkFactory
from taskforge_metering.transport.servicer import METHOD_SCOPES, SERVICE_NAME, MeteringServicer


async def start(
    settings: MeteringSettings, database: Database, telemetry: Telemetry, clock: Clock
) -> RunningServer:
    """Start the metering gRPC server on the configured host and port (0: any free port)."""
    use_cases = UseCases.build(
        SqlUnitOfWorkFactory(database),
        clock,
        settings.ingest_rate_per_second,
        # Every replica has the token secret, so a page token pages on in any of them.
        PageTokens.from_secret(settings.auth.jwt_secret),
    )
    servicer = MeteringServicer(use_cases)
    auth = AuthInterceptor(JwtVerifier(settings.auth, clock=clock), METHOD_SCOPES)
    return await start_server(
        services=[
            ServiceRegistration(
                SERVICE_NAME,
                lambda server: metering_service_pb2_grpc.add_MeteringServiceServicer_to_server(
                    servicer, server
                ),
            )
        ],
        readiness=database.ping,
        host=settings.host,
        port=settings.port,
        interceptors=[*telemetry.server_interceptors(), auth],
        # gRPC's default on Linux, stated because worker processes share the port through it.
        options=[("grpc.so_reuseport", 1)],
    )


async def main() -> None:
    settings = MeteringSettings.from_env()
    configure_logging(settings.telemetry.service_name, settings.telemetry.log_level)
    telemetry = setup_telemetry(settings.telemetry)
    database = Database(settings.database_url, pool_size=settings.database_pool_size)
    running = await start(settings, database, telemetry, SystemClock())
    # Modules, descriptors and engine objects live as long as the process: moved out of the
    # collector's reach, a full collection no longer walks ~100k of them (~40 ms per pause).
    gc.freeze()
    await serve_until_signal(
        running,
        grace=settings.shutdown_grace.total_seconds(),
        on_shutdown=[database.dispose, lambda: asyncio.to_thread(telemetry.shutdown)],
    )
