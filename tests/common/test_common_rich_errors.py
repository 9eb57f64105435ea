"""What a client decodes from a failed call, against a real grpc.aio server on 127.0.0.1, set up
as the services are (tracing, then authentication): the google.rpc.Status details of typed
errors and of authentication refusals, and the answers to requests that cannot be decoded."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
import pytest
from google.protobuf import wrappers_pb2
from opentelemetry.sdk.trace import TracerProvider

from taskforge_common.config import AuthSettings, TelemetrySettings
from taskforge_common.errors import (
    ERROR_DOMAIN,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from taskforge_common.grpc.auth import (
    AuthInterceptor,
    JwtVerifier,
    Scope,
    current_principal,
    issue_token,
    require_organization,
)
from taskforge_common.grpc.errors import ErrorDetails, error_details, map_errors
from taskforge_common.grpc.server import RunningServer, ServiceRegistration, start_server
from taskforge_common.telemetry import setup_telemetry

SERVICE = "taskforge.test.v1.RichService"
SECRET = "rich-errors-test-secret-0123456789abcdef"
ORG = "0b7f5a52-2f6e-4c1e-9f4e-6f4d7c1b2a10"
OTHER_ORG = "6c1d9b1e-7a3f-4f43-8d0e-2b5a9c8e7f61"
METHOD_SCOPES = {f"/{SERVICE}/{name}": Scope.BILLING_READ for name in ("Get", "List", "Fail")}

Text = wrappers_pb2.StringValue
Context = grpc.aio.ServicerContext[Text, Text]


class RichServicer:
    """Protobuf in and out (google.protobuf.StringValue), so requests can fail to decode."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    async def Get(self, request: Text, context: Context) -> Text:
        self.requests.append(request.value)
        return Text(value=f"{request.value} for {current_principal().organization_id}")

    async def List(self, request: Text, context: Context) -> AsyncIterator[Text]:
        self.requests.append(request.value)
        for _ in range(2):
            yield Text(value=request.value)

    @map_errors
    async def Fail(self, request: Text, context: Context) -> Text:
        match request.value:
            case "not-found":
                raise NotFound("invoice inv-1 was not found")
            case "invalid":
                invalid = InvalidArgument("quantity must not be negative", field="quantity")
                raise invalid.at("events[3]")
            case "exhausted":
                raise ResourceExhausted("too many requests", retry_after=timedelta(seconds=1.5))
            case "other-organization":
                require_organization(current_principal(), OTHER_ORG)
        raise RuntimeError("connection to db://admin:hunter2@db failed")

    async def Unmapped(self, request: Text, context: Context) -> Text:
        return Text(value="should not be reachable")


@pytest.fixture(scope="module")
def servicer() -> RichServicer:
    return RichServicer()


@pytest.fixture(scope="module")
async def server(servicer: RichServicer) -> AsyncIterator[RunningServer]:
    def unary(behavior: Any) -> grpc.RpcMethodHandler[Text, Text]:
        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=Text.FromString,
            response_serializer=Text.SerializeToString,
        )

    handlers = {name: unary(getattr(servicer, name)) for name in ("Get", "Fail", "Unmapped")}
    handlers["List"] = grpc.unary_stream_rpc_method_handler(
        servicer.List,
        request_deserializer=Text.FromString,
        response_serializer=Text.SerializeToString,
    )
    generic = grpc.method_handlers_generic_handler(SERVICE, handlers)

    async def ready() -> bool:
        return True

    telemetry = setup_telemetry(TelemetrySettings("test"), tracer_provider=TracerProvider())
    auth = AuthInterceptor(JwtVerifier(AuthSettings(jwt_secret=SECRET)), METHOD_SCOPES)
    running = await start_server(
        services=[ServiceRegistration(SERVICE, lambda s: s.add_generic_rpc_handlers([generic]))],
        readiness=ready,
        port=0,
        interceptors=[*telemetry.server_interceptors(), auth],
    )
    yield running
    await running.stop(0)


@pytest.fixture(scope="module")
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel


def token(scopes: Sequence[str] = ("billing:read",), **kwargs: Any) -> str:
    return issue_token(SECRET, "user-1", scopes, now=datetime.now(UTC), **kwargs)


def signed(claims: dict[str, Any]) -> str:
    """A token signed with the right secret, with valid claims changed by `claims`."""
    valid = jwt.decode(token(), SECRET, algorithms=["HS256"], audience="taskforge-billing")
    return jwt.encode({**valid, **claims}, SECRET, algorithm="HS256")


def bearer(value: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {value}"),)


async def send(
    channel: grpc.aio.Channel, method: str, request: bytes, metadata: Sequence[tuple[str, str]]
) -> list[Text]:
    """The answers to a call of `method` with the raw `request` bytes, streaming or not."""
    path = f"/{SERVICE}/{method}"
    if method == "List":
        stream = channel.unary_stream(path, None, Text.FromString)
        return [answer async for answer in stream(request, metadata=metadata, timeout=5)]
    unary = channel.unary_unary(path, None, Text.FromString)
    return [await unary(request, metadata=metadata, timeout=5)]


async def failure(
    channel: grpc.aio.Channel,
    method: str,
    request: bytes,
    metadata: Sequence[tuple[str, str]] = (),
) -> grpc.aio.AioRpcError:
    """The error a call of `method` with the raw `request` bytes ends with."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await send(channel, method, request, metadata)
    return raised.value


def reason(error: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str, str]:
    """The code, ErrorInfo reason and domain of `error`."""
    info = error_details(error).info
    assert info is not None, f"{error.code()} {error.details()!r} carries no ErrorInfo"
    return error.code(), info.reason, info.domain


def text(value: str) -> bytes:
    return Text(value=value).SerializeToString()


# --- typed errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_value", "code", "expected_reason", "message"),
    [
        ("not-found", grpc.StatusCode.NOT_FOUND, "NOT_FOUND", "invoice inv-1 was not found"),
        (
            "invalid",
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_FIELD",
            "quantity must not be negative",
        ),
        ("exhausted", grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED", "too many requests"),
        (
            "other-organization",
            grpc.StatusCode.PERMISSION_DENIED,
            "ORGANIZATION_FORBIDDEN",
            "the token does not grant access to this organization",
        ),
        ("crash", grpc.StatusCode.INTERNAL, "INTERNAL_ERROR", "internal error"),
    ],
)
async def test_errors_carry_their_reason_in_the_billing_domain(
    channel: grpc.aio.Channel,
    request_value: str,
    code: grpc.StatusCode,
    expected_reason: str,
    message: str,
) -> None:
    error = await failure(channel, "Fail", text(request_value), bearer(token(organization_id=ORG)))
    assert reason(error) == (code, expected_reason, ERROR_DOMAIN)
    assert error.details() == message


async def test_an_invalid_field_is_named_by_its_path(channel: grpc.aio.Channel) -> None:
    error = await failure(channel, "Fail", text("invalid"), bearer(token()))
    details = error_details(error)
    assert details.bad_request is not None
    [violation] = details.bad_request.field_violations
    assert (violation.field, violation.description) == (
        "events[3].quantity",
        "quantity must not be negative",
    )
    assert details.retry is None


async def test_a_rate_limit_says_when_to_retry(channel: grpc.aio.Channel) -> None:
    details = error_details(await failure(channel, "Fail", text("exhausted"), bearer(token())))
    assert details.retry is not None
    assert details.retry.retry_delay.ToTimedelta() == timedelta(seconds=1.5)
    assert details.bad_request is None


async def test_an_unexpected_fault_reveals_nothing(channel: grpc.aio.Channel) -> None:
    error = await failure(channel, "Fail", text("crash"), bearer(token()))
    info, bad_request, retry = error_details(error)
    assert info is not None
    assert info.reason == "INTERNAL_ERROR"
    assert (bad_request, retry) == (None, None)
    assert "hunter2" not in repr(error.trailing_metadata())


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "code", "expected_reason"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING"),
        (
            (("authorization", "Basic dXNlcjpwYXNz"),),
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_MISSING",
        ),
        (
            bearer(token(ttl=timedelta(minutes=-5))),
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_EXPIRED",
        ),
        (
            bearer(
                issue_token(
                    "another-secret-0123456789abcdefghij",
                    "u",
                    ["billing:read"],
                    now=datetime.now(UTC),
                )
            ),
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_INVALID",
        ),
        (bearer("not-a-jwt"), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID"),
        (bearer(signed({"aud": "someone-else"})), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID"),
        (bearer(signed({"org_id": None})), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID"),
        (bearer(signed({"org_id": "acme"})), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID"),
        (bearer(token(["limits:read"])), grpc.StatusCode.PERMISSION_DENIED, "SCOPE_MISSING"),
    ],
    ids=[
        "no-token",
        "basic",
        "expired",
        "forged",
        "garbage",
        "audience",
        "org-id-null",
        "org-id-not-a-uuid",
        "scope",
    ],
)
@pytest.mark.parametrize("method", ["Get", "List"])
async def test_refusals_carry_a_specific_reason(
    channel: grpc.aio.Channel,
    servicer: RichServicer,
    method: str,
    metadata: Sequence[tuple[str, str]],
    code: grpc.StatusCode,
    expected_reason: str,
) -> None:
    seen = len(servicer.requests)
    error = await failure(channel, method, text("hello"), metadata)
    assert reason(error) == (code, expected_reason, ERROR_DOMAIN)
    assert len(servicer.requests) == seen, "a refused call never reaches the servicer"


async def test_a_method_without_a_scope_is_not_allowed(channel: grpc.aio.Channel) -> None:
    error = await failure(channel, "Unmapped", text("hello"), bearer(token(["billing:admin"])))
    assert reason(error) == (grpc.StatusCode.PERMISSION_DENIED, "METHOD_NOT_ALLOWED", ERROR_DOMAIN)


async def test_an_upper_case_org_id_reaches_the_servicer_in_canonical_form(
    channel: grpc.aio.Channel,
) -> None:
    metadata = bearer(signed({"org_id": ORG.upper()}))
    answer = await channel.unary_unary(f"/{SERVICE}/Get", Text.SerializeToString, Text.FromString)(
        Text(value="usage"), metadata=metadata, timeout=5
    )
    assert answer.value == f"usage for {ORG}"


async def test_decodable_requests_are_served(channel: grpc.aio.Channel) -> None:
    metadata = bearer(token())
    assert await send(channel, "List", text("x"), metadata) == [Text(value="x")] * 2
    assert await send(channel, "Get", text("y"), metadata) == [Text(value="y for None")]


# --- requests that cannot be decoded ----------------------------------------------------------

UNDECODABLE = {
    "random-bytes": b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    "truncated": text("hello, world")[:-3],
    "invalid-utf8": b"\x0a\x03a\xffz",  # field 1 (string), 3 bytes: "a", 0xFF, "z"
}


def test_the_undecodable_requests_do_not_decode() -> None:
    for data in UNDECODABLE.values():
        with pytest.raises(Exception, match="Error parsing message"):
            Text.FromString(data)


@pytest.mark.parametrize("data", UNDECODABLE.values(), ids=UNDECODABLE.keys())
@pytest.mark.parametrize("method", ["Get", "List"])
async def test_an_undecodable_request_without_a_token_is_unauthenticated(
    channel: grpc.aio.Channel, method: str, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        error = await failure(channel, method, data)
    assert reason(error) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING", ERROR_DOMAIN)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


@pytest.mark.parametrize("data", UNDECODABLE.values(), ids=UNDECODABLE.keys())
@pytest.mark.parametrize("method", ["Get", "List"])
async def test_an_undecodable_request_with_a_token_is_an_invalid_argument(
    channel: grpc.aio.Channel,
    servicer: RichServicer,
    method: str,
    data: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = len(servicer.requests)
    with caplog.at_level(logging.DEBUG):
        error = await failure(channel, method, data, bearer(token()))
    assert reason(error) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "UNDECODABLE_REQUEST",
        ERROR_DOMAIN,
    )
    assert error.details() == "the request could not be decoded"
    assert error_details(error) == ErrorDetails(error_details(error).info, None, None)
    assert len(servicer.requests) == seen
    # The caller's mistake: a warning at most, without a traceback.
    assert not [record for record in caplog.records if record.levelno > logging.WARNING]
    assert all(record.exc_info is None for record in caplog.records)
    assert any("could not be decoded" in record.getMessage() for record in caplog.records)
