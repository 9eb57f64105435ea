"""The gRPC server factory and its lifecycle (STYLE.md habit 8).

Every server also serves server reflection and grpc.health.v1, SERVING only while `readiness()`
holds (the database answers). On SIGTERM it reports NOT_SERVING, stops with a grace period, then
runs the shutdown callbacks (dispose the engine, flush telemetry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# grpc-stubs only describes the sync health servicer.
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]

logger = logging.getLogger(__name__)

HEALTH_SERVICE = "grpc.health.v1.Health"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# Until the first success readiness is polled quickly, then every `readiness_interval` seconds.
FIRST_READINESS_POLL = 0.1


@dataclass(frozen=True, slots=True)
class ServiceRegistration:
    """A service to serve: its full name ("taskforge.metering.v1.MeteringService") and a function
    that adds its servicer to a server (usually a lambda around `add_XServicer_to_server`)."""

    name: str
    add_to_server: Callable[[grpc.aio.Server], None]


class RunningServer:
    """A started server; `stop()` shuts it down gracefully."""

    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        health_servicer: Any,
        service_names: Sequence[str],
        readiness: Callable[[], Awaitable[bool]],
        readiness_interval: float,
    ) -> None:
        self.server = server
        self.port = port
        self._health = health_servicer
        self._service_names = ("", *service_names)
        self._readiness = readiness
        self._interval = readiness_interval
        self._serving: bool | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def _check_readiness(self) -> bool:
        """Run one readiness check and publish its result; a check that fails or hangs counts
        as not ready."""
        try:
            async with asyncio.timeout(self._interval):
                ready = await self._readiness()
        except Exception:
            logger.warning("readiness check failed", exc_info=True)
            ready = False
        if ready != self._serving:
            logger.info("health status: %s", "SERVING" if ready else "NOT_SERVING")
            for name in self._service_names:
                await self._health.set(name, SERVING if ready else NOT_SERVING)
            self._serving = ready
        return ready

    async def _watch_readiness(self) -> None:
        delay = FIRST_READINESS_POLL
        ever_ready = False
        while True:
            ever_ready = await self._check_readiness() or ever_ready
            await asyncio.sleep(self._interval if ever_ready else delay)
            delay = min(delay * 2, self._interval)

    async def _start_watching(self) -> None:
        await self._check_readiness()
        self._watcher = asyncio.create_task(self._watch_readiness(), name="grpc-readiness")

    async def stop(self, grace: float) -> None:
        """Report NOT_SERVING (for good), then let in-flight calls finish for up to `grace` s."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self._health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def start_server(
    *,
    services: Sequence[ServiceRegistration],
    readiness: Callable[[], Awaitable[bool]],
    port: int,
    host: str = "127.0.0.1",
    interceptors: Sequence[_ServerInterceptor] = (),
    options: Sequence[tuple[str, Any]] = (),
    readiness_interval: float = 5.0,
) -> RunningServer:
    """Start a grpc.aio server with `services`, health checking and reflection.

    `port=0` binds any free port (tests); `RunningServer.port` is the bound one. Use host "0.0.0.0"
    in containers. The first readiness check runs before this returns.
    """
    server = grpc.aio.server(interceptors=interceptors, options=options)
    for service in services:
        service.add_to_server(server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [service.name for service in services]
    reflection.enable_server_reflection([*names, HEALTH_SERVICE, reflection.SERVICE_NAME], server)
    # The health servicer starts with "" SERVING: nothing may look ready before the first check.
    for name in ("", *names):
        await health_servicer.set(name, NOT_SERVING)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound_port = server.add_insecure_port(address)
    await server.start()
    running = RunningServer(
        server, bound_port, health_servicer, names, readiness, readiness_interval
    )
    logger.info("gRPC server listening on %s:%d", host, bound_port, extra={"services": names})
    await running._start_watching()
    return running


async def serve_until_signal(
    running: RunningServer,
    grace: float,
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully and run the `on_shutdown` callbacks
    in order; a failing callback is logged and the next one still runs."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop_requested.set)
    try:
        await stop_requested.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    logger.info("shutting down (grace %.1f s)", grace)
    await running.stop(grace)
    for callback in on_shutdown:
        try:
            await callback()
        except Exception:
            logger.exception("shutdown step %r failed", callback)
