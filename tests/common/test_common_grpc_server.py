"""Integration tests of the gRPC plumbing against real grpc.aio servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from taskforge_common.config import AuthSettings, TelemetrySettings
from taskforge_common.errors import NotFound
from taskforge_common.grpc.auth import (
    AuthInterceptor,
    JwtVerifier,
    Scope,
    current_principal,
    issue_token,
)
from taskforge_common.grpc.channels import create_channel
from taskforge_common.grpc.errors import map_errors
from taskforge_common.grpc.server import (
    RunningServer,
    ServiceRegistration,
    serve_until_signal,
    start_server,
)
from taskforge_common.telemetry import Telemetry, setup_telemetry

SERVICE = "taskforge.test.v1.EchoService"
SECRET = "integration-test-secret-0123456789abcdef"
ORG = "0b7f5a52-2f6e-4c1e-9f4e-6f4d7c1b2a10"
METHOD_SCOPES = {
    f"/{SERVICE}/{name}": Scope.BILLING_READ
    for name in ("Echo", "WhoAmI", "WhoAmIStream", "Sleep", "Fail", "TraceId")
}
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

Context = grpc.aio.ServicerContext[bytes, bytes]


class EchoServicer:
    """A servicer with bytes in and out, so the tests need no generated code."""

    async def Echo(self, request: bytes, context: Context) -> bytes:
        return request

    async def WhoAmI(self, request: bytes, context: Context) -> bytes:
        await asyncio.sleep(float(request or b"0"))
        return describe_principal()

    async def WhoAmIStream(self, request: bytes, context: Context) -> AsyncIterator[bytes]:
        for _ in range(2):
            yield describe_principal()

    async def Sleep(self, request: bytes, context: Context) -> bytes:
        await asyncio.sleep(float(request))
        return b"awake"

    @map_errors
    async def Fail(self, request: bytes, context: Context) -> bytes:
        if request == b"not-found":
            raise NotFound("invoice inv-1 was not found")
        raise RuntimeError("connection to db://admin:hunter2@db failed")

    async def Unmapped(self, request: bytes, context: Context) -> bytes:
        return b"should not be reachable"

    async def TraceId(self, request: bytes, context: Context) -> bytes:
        span_context = trace.get_current_span().get_span_context()
        return trace.format_trace_id(span_context.trace_id).encode()


def describe_principal() -> bytes:
    principal = current_principal()
    return f"{principal.subject} {principal.organization_id} {sorted(principal.scopes)}".encode()


def echo_service() -> ServiceRegistration:
    servicer = EchoServicer()
    unary = ("Echo", "WhoAmI", "Sleep", "Fail", "Unmapped", "TraceId")
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(getattr(servicer, name)) for name in unary
    }
    handlers["WhoAmIStream"] = grpc.unary_stream_rpc_method_handler(servicer.WhoAmIStream)
    generic = grpc.method_handlers_generic_handler(SERVICE, handlers)
    return ServiceRegistration(SERVICE, lambda server: server.add_generic_rpc_handlers([generic]))


def token(scopes: Sequence[str] = ("billing:read",), subject: str = "user-1", **kwargs: Any) -> str:
    return issue_token(SECRET, subject, scopes, now=datetime.now(UTC), **kwargs)


def bearer(value: str) -> grpc.aio.Metadata:
    return grpc.aio.Metadata(("authorization", f"Bearer {value}"))


async def always_ready() -> bool:
    return True


Serve = Callable[..., Awaitable[RunningServer]]
Connect = Callable[..., grpc.aio.Channel]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Starts echo servers on free ports; stops them after the test."""
    started: list[RunningServer] = []

    async def serve(
        *,
        readiness: Callable[[], Awaitable[bool]] = always_ready,
        interceptors: Sequence[Any] = (),
        readiness_interval: float = 5.0,
    ) -> RunningServer:
        running = await start_server(
            services=[echo_service()],
            readiness=readiness,
            port=0,
            interceptors=interceptors,
            readiness_interval=readiness_interval,
        )
        started.append(running)
        return running

    yield serve
    for running in started:
        await running.stop(0)


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Opens channels with create_channel; closes them after the test."""
    opened: list[grpc.aio.Channel] = []

    def connect(running: RunningServer, default_timeout: float = 5.0, **kwargs: Any) -> Any:
        channel = create_channel(
            f"127.0.0.1:{running.port}", default_timeout=default_timeout, **kwargs
        )
        opened.append(channel)
        return channel

    yield connect
    for channel in opened:
        await channel.close(None)


@pytest.fixture
async def auth_server(serve: Serve) -> RunningServer:
    verifier = JwtVerifier(AuthSettings(jwt_secret=SECRET))
    return await serve(interceptors=[AuthInterceptor(verifier, METHOD_SCOPES)])


def call(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    return channel.unary_unary(f"/{SERVICE}/{method}", None, None)


async def health_status(channel: grpc.aio.Channel, service: str = "") -> Any:
    response = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service)
    )
    return response.status


async def wait_for_status(channel: grpc.aio.Channel, expected: Any) -> None:
    """Watch the service's health until it reports `expected` (within 3 s)."""
    watch = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=SERVICE), timeout=3
    )
    async for response in watch:
        if response.status == expected:
            watch.cancel()
            return


async def rpc_error(awaitable: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await awaitable
    return raised.value


# --- server, health, reflection -------------------------------------------------------------


async def test_a_ready_server_reports_serving(serve: Serve, connect: Connect) -> None:
    running = await serve()
    channel = connect(running)
    assert running.port > 0
    assert await health_status(channel) == SERVING
    assert await health_status(channel, SERVICE) == SERVING
    assert await call(channel, "Echo")(b"ping") == b"ping"


async def test_unknown_services_are_not_found_by_health(serve: Serve, connect: Connect) -> None:
    channel = connect(await serve())
    error = await rpc_error(health_status(channel, "taskforge.nope.v1.Nope"))
    assert error.code() is grpc.StatusCode.NOT_FOUND


async def test_health_follows_readiness(serve: Serve, connect: Connect) -> None:
    database_up = False

    async def readiness() -> bool:
        if database_up is None:
            raise ConnectionError("database unreachable")
        return database_up

    channel = connect(await serve(readiness=readiness, readiness_interval=0.05))
    assert await health_status(channel) == NOT_SERVING
    assert await health_status(channel, SERVICE) == NOT_SERVING
    database_up = True
    await wait_for_status(channel, SERVING)
    assert await health_status(channel) == SERVING
    database_up = False
    await wait_for_status(channel, NOT_SERVING)
    database_up = True
    await wait_for_status(channel, SERVING)
    database_up = None  # type: ignore[assignment]  # the readiness check raises
    await wait_for_status(channel, NOT_SERVING)


async def test_a_hanging_readiness_check_counts_as_not_ready(
    serve: Serve, connect: Connect
) -> None:
    async def readiness() -> bool:
        await asyncio.sleep(10)
        return True

    started = time.monotonic()
    channel = connect(await serve(readiness=readiness, readiness_interval=0.1))
    assert time.monotonic() - started < 2
    assert await health_status(channel) == NOT_SERVING


async def test_stopping_reports_not_serving_before_the_server_goes(
    serve: Serve, connect: Connect
) -> None:
    running = await serve()
    watch = health_pb2_grpc.HealthStub(connect(running)).Watch(
        health_pb2.HealthCheckRequest(service=SERVICE)
    )
    assert (await watch.read()).status == SERVING
    stopping = asyncio.create_task(running.stop(grace=5))
    assert (await watch.read()).status == NOT_SERVING
    watch.cancel()
    await asyncio.wait_for(stopping, timeout=5)
    error = await rpc_error(call(connect(running, default_timeout=1), "Echo")(b"ping"))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


async def test_reflection_lists_every_service(serve: Serve, connect: Connect) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(connect(await serve()))
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    response = await responses.read()
    names = {service.name for service in response.list_services_response.service}
    assert names == {
        SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_serve_until_signal_stops_on_sigterm_then_runs_shutdown_steps(
    serve: Serve, connect: Connect
) -> None:
    running = await serve()
    steps: list[str] = []

    async def dispose_engine() -> None:
        steps.append("dispose engine")
        raise RuntimeError("already disposed")  # logged; the next step still runs

    async def flush_telemetry() -> None:
        steps.append("flush telemetry")

    default_handler = signal.getsignal(signal.SIGTERM)
    serving = asyncio.create_task(
        serve_until_signal(running, grace=1, on_shutdown=[dispose_engine, flush_telemetry])
    )
    await asyncio.sleep(0)  # the task runs up to its wait, with the handlers installed
    # Never send the signal without the loop's handler: it would end the test run.
    assert signal.getsignal(signal.SIGTERM) != default_handler
    assert not serving.done()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(serving, timeout=5)
    assert steps == ["dispose engine", "flush telemetry"]
    assert signal.getsignal(signal.SIGTERM) == default_handler
    error = await rpc_error(call(connect(running, default_timeout=1), "Echo")(b"ping"))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


# --- authentication ---------------------------------------------------------------------------


async def test_calls_without_a_token_are_unauthenticated(
    auth_server: RunningServer, connect: Connect
) -> None:
    error = await rpc_error(call(connect(auth_server), "Echo")(b"ping"))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "missing bearer token" in (error.details() or "")


@pytest.mark.parametrize(
    "metadata",
    [
        bearer(
            issue_token(
                "a-different-secret-0123456789abcdef",
                "user-1",
                ["billing:read"],
                now=datetime.now(UTC),
            )
        ),
        bearer(token(ttl=timedelta(minutes=-5))),
        grpc.aio.Metadata(("authorization", "Basic dXNlcjpwYXNz")),
        bearer("not-a-jwt"),
    ],
    ids=["forged", "expired", "basic", "garbage"],
)
async def test_bad_tokens_are_unauthenticated(
    auth_server: RunningServer, connect: Connect, metadata: grpc.aio.Metadata
) -> None:
    error = await rpc_error(call(connect(auth_server), "Echo")(b"ping", metadata=metadata))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_a_missing_scope_is_permission_denied(
    auth_server: RunningServer, connect: Connect
) -> None:
    metadata = bearer(token(["limits:read", "usage:write"]))
    error = await rpc_error(call(connect(auth_server), "Echo")(b"ping", metadata=metadata))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "billing:read" in (error.details() or "")


async def test_methods_without_a_configured_scope_are_refused(
    auth_server: RunningServer, connect: Connect
) -> None:
    metadata = bearer(token(["billing:admin"]))
    error = await rpc_error(call(connect(auth_server), "Unmapped")(b"ping", metadata=metadata))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_the_servicer_sees_the_verified_principal(
    auth_server: RunningServer, connect: Connect
) -> None:
    channel = connect(auth_server)
    metadata = bearer(token(["billing:read", "usage:write"], organization_id=ORG))
    answer = await call(channel, "WhoAmI")(b"", metadata=metadata)
    assert answer == f"user-1 {ORG} ['billing:read', 'usage:write']".encode()
    admin = await call(channel, "WhoAmI")(b"", metadata=bearer(token(["billing:admin"], "ops")))
    assert admin == b"ops None ['billing:admin']"


async def test_concurrent_calls_each_see_their_own_principal(
    auth_server: RunningServer, connect: Connect
) -> None:
    who_am_i = call(connect(auth_server), "WhoAmI")
    answers = await asyncio.gather(
        *(who_am_i(b"0.05", metadata=bearer(token(subject=f"user-{n}"))) for n in range(5))
    )
    assert [answer.split()[0] for answer in answers] == [f"user-{n}".encode() for n in range(5)]


async def test_streaming_methods_are_guarded_too(
    auth_server: RunningServer, connect: Connect
) -> None:
    stream = connect(auth_server).unary_stream(f"/{SERVICE}/WhoAmIStream", None, None)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in stream(b""):
            pass
    assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
    answers = [answer async for answer in stream(b"", metadata=bearer(token()))]
    assert answers == [b"user-1 None ['billing:read']"] * 2


async def test_health_and_reflection_need_no_token(
    auth_server: RunningServer, connect: Connect
) -> None:
    assert await health_status(connect(auth_server)) == SERVING


# --- channels ---------------------------------------------------------------------------------


async def test_calls_get_the_default_deadline(serve: Serve, connect: Connect) -> None:
    channel = connect(await serve(), default_timeout=0.2)
    started = time.monotonic()
    error = await rpc_error(call(channel, "Sleep")(b"2"))
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 1.5


async def test_an_explicit_timeout_wins_over_the_default(serve: Serve, connect: Connect) -> None:
    channel = connect(await serve(), default_timeout=0.1)
    assert await call(channel, "Sleep")(b"0.3", timeout=3) == b"awake"


async def test_the_token_provider_authenticates_every_call(
    auth_server: RunningServer, connect: Connect
) -> None:
    issued: list[str] = []

    def provider() -> str:
        issued.append(token(subject="svc-subscriptions"))
        return issued[-1]

    channel = connect(auth_server, token_provider=provider)
    assert (await call(channel, "WhoAmI")(b"")).startswith(b"svc-subscriptions ")
    stream = channel.unary_stream(f"/{SERVICE}/WhoAmIStream", None, None)
    assert len([answer async for answer in stream(b"")]) == 2
    assert len(issued) == 2
    # A call's own authorization metadata is kept.
    own = await call(channel, "WhoAmI")(b"", metadata=bearer(token(subject="user-2")))
    assert own.startswith(b"user-2 ")


# --- errors -----------------------------------------------------------------------------------


async def test_billing_errors_reach_the_caller_with_their_status(
    auth_server: RunningServer, connect: Connect
) -> None:
    fail = call(connect(auth_server, token_provider=token), "Fail")
    error = await rpc_error(fail(b"not-found"))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "invoice inv-1 was not found",
    )
    error = await rpc_error(fail(b"crash"))
    assert (error.code(), error.details()) == (grpc.StatusCode.INTERNAL, "internal error")


# --- tracing ----------------------------------------------------------------------------------


async def traced_server(serve: Serve) -> tuple[InMemorySpanExporter, Telemetry, RunningServer]:
    """An echo server with tracing (spans kept in memory) and authentication, as services
    run them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = setup_telemetry(TelemetrySettings("test"), tracer_provider=provider)
    verifier = JwtVerifier(AuthSettings(jwt_secret=SECRET))
    running = await serve(
        interceptors=[*telemetry.server_interceptors(), AuthInterceptor(verifier, METHOD_SCOPES)]
    )
    return exporter, telemetry, running


async def test_trace_context_flows_from_client_to_server(serve: Serve, connect: Connect) -> None:
    exporter, telemetry, running = await traced_server(serve)
    channel = connect(running, interceptors=telemetry.client_interceptors(), token_provider=token)

    servicer_trace_id = await call(channel, "TraceId")(b"")
    assert await health_status(channel) == SERVING  # probes are not traced
    telemetry.shutdown()

    spans = exporter.get_finished_spans()
    [client] = [span for span in spans if span.kind is trace.SpanKind.CLIENT]
    [server] = [span for span in spans if span.kind is trace.SpanKind.SERVER]
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    assert server.context.trace_id == client.context.trace_id
    assert servicer_trace_id.decode() == trace.format_trace_id(client.context.trace_id)
    assert server.attributes is not None
    assert server.attributes["rpc.method"] == "TraceId"


async def test_server_spans_carry_the_final_status_and_only_faults_are_errors(
    serve: Serve, connect: Connect
) -> None:
    exporter, _, running = await traced_server(serve)
    channel = connect(running, token_provider=token)
    fail = call(channel, "Fail")
    assert await call(channel, "Echo")(b"hi") == b"hi"
    await rpc_error(fail(b"not-found"))
    await rpc_error(fail(b"crash"))
    await rpc_error(call(connect(running), "Echo")(b""))  # no token: refused before the servicer
    stream = channel.unary_stream(f"/{SERVICE}/WhoAmIStream", None, None)
    assert len([answer async for answer in stream(b"")]) == 2

    spans = [(span.name.rsplit("/", 1)[1], span) for span in exporter.get_finished_spans()]
    assert [name for name, _ in spans] == ["Echo", "Fail", "Fail", "Echo", "WhoAmIStream"]
    codes = [span.attributes["rpc.grpc.status_code"] for _, span in spans if span.attributes]
    assert codes == [0, 5, 13, 16, 0]  # OK, NOT_FOUND, INTERNAL, UNAUTHENTICATED, OK
    statuses = [span.status.status_code for _, span in spans]
    # Only the server's own fault is an error; the caller's mistakes are not.
    assert statuses == [
        trace.StatusCode.UNSET,
        trace.StatusCode.UNSET,
        trace.StatusCode.ERROR,
        trace.StatusCode.UNSET,
        trace.StatusCode.UNSET,
    ]
    assert all(span.kind is trace.SpanKind.SERVER for _, span in spans)
    assert all(span.attributes and span.attributes["rpc.system"] == "grpc" for _, span in spans)
