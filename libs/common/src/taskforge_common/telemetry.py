"""Tracing, wired once: a TracerProvider plus the explicit grpc.aio interceptors.

Only the explicit interceptors are used, never the gRPC auto-instrumentor: both together record
every call twice. Trace context travels in gRPC metadata with the globally configured propagator,
which is W3C tracecontext (+ baggage) unless OTEL_PROPAGATORS says otherwise.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from taskforge_common.config import TelemetrySettings

logger = logging.getLogger(__name__)

# Probes poll these every few seconds; tracing them would drown the real calls.
UNTRACED_SERVICE_PREFIXES = ("grpc.health.v1.Health", "grpc.reflection.")

_global_provider: TracerProvider | None = None


def _traced(details: Any) -> bool:
    """Interceptor filter: False for health and reflection calls (server or client side)."""
    method = details.method
    if isinstance(method, bytes):  # grpc.aio clients pass bytes (grpc/grpc#31092)
        method = method.decode()
    return not str(method).lstrip("/").startswith(UNTRACED_SERVICE_PREFIXES)


class Telemetry:
    """The tracer provider a process uses and the gRPC interceptors bound to it."""

    def __init__(self, tracer_provider: TracerProvider, *, owned: bool) -> None:
        self.tracer_provider = tracer_provider
        self._owned = owned

    def server_interceptors(self) -> list[grpc.aio.ServerInterceptor[Any, Any]]:
        """Put these first in the server's interceptors so spans cover auth failures too."""
        interceptor: grpc.aio.ServerInterceptor[Any, Any] = aio_server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self.tracer_provider, filter_=_traced
        )
        return [interceptor]

    def client_interceptors(self) -> list[grpc.aio.ClientInterceptor]:
        interceptors: list[grpc.aio.ClientInterceptor] = aio_client_interceptors(  # type: ignore[no-untyped-call]
            tracer_provider=self.tracer_provider, filter_=_traced
        )
        return interceptors

    def shutdown(self) -> None:
        """Export what is buffered; a provider set up here is also shut down."""
        self.tracer_provider.force_flush()
        if self._owned:
            self.tracer_provider.shutdown()


def setup_telemetry(
    settings: TelemetrySettings, *, tracer_provider: TracerProvider | None = None
) -> Telemetry:
    """Install the process-wide TracerProvider; a given `tracer_provider` (tests) is used as is.

    Spans are exported over OTLP only when an endpoint is configured; without one they still get
    ids, so logs carry trace ids and context still propagates to peers.
    """
    global _global_provider
    if tracer_provider is not None:
        return Telemetry(tracer_provider, owned=False)
    if _global_provider is not None:
        logger.warning("telemetry is already set up in this process; reusing it")
        return Telemetry(_global_provider, owned=False)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.service_name}))
    if settings.otlp_endpoint:
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint))
        )
    trace.set_tracer_provider(provider)
    _global_provider = provider
    return Telemetry(provider, owned=True)
