from __future__ import annotations

import ast
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from taskforge_common import errors
from taskforge_common.errors import ERROR_DOMAIN, REASON_STATUS, BillingError, Reason
from taskforge_common.grpc.errors import error_details, map_errors, rich_status, status_for

REPOSITORY = Path(__file__).resolve().parents[2]
DETAILS_KEY = "grpc-status-details-bin"


class AbortCalled(Exception):
    pass


class RecordingContext:
    """Stands in for grpc.aio.ServicerContext: abort() records and raises, like the real one."""

    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None
        self.trailing_metadata: tuple[tuple[str, bytes], ...] = ()

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: tuple[tuple[str, bytes], ...] = (),
    ) -> None:
        self.aborted = (code, details)
        self.trailing_metadata = trailing_metadata
        raise AbortCalled

    def status(self) -> status_pb2.Status:
        """The google.rpc.Status the call was aborted with."""
        [(key, value)] = self.trailing_metadata
        assert key == DETAILS_KEY
        return status_pb2.Status.FromString(value)


def context() -> tuple[RecordingContext, grpc.aio.ServicerContext[Any, Any]]:
    recorder = RecordingContext()
    return recorder, cast("grpc.aio.ServicerContext[Any, Any]", recorder)


class Servicer:
    def __init__(self, outcome: BaseException | None) -> None:
        self.outcome = outcome

    @map_errors
    async def Get(self, request: str, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        if self.outcome is not None:
            raise self.outcome
        return request.upper()


def billing_errors() -> list[type[BillingError]]:
    found = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, BillingError)
    ]
    assert len(found) >= 8, "errors.py defines BillingError and its seven subclasses"
    return found


ERROR_BY_STATUS = {error_type.status: error_type for error_type in billing_errors()}


def make(error_type: type[BillingError], message: str, **kwargs: Any) -> BillingError:
    if error_type is errors.ResourceExhausted:
        return errors.ResourceExhausted(message, retry_after=timedelta(seconds=1), **kwargs)
    return error_type(message, **kwargs)


def unpack(status: status_pb2.Status) -> dict[str, Any]:
    """The details of `status` by their type name, each unpacked."""
    kinds = {
        kind.DESCRIPTOR.full_name: kind
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
        )
    }
    found: dict[str, Any] = {}
    for detail in status.details:
        name = detail.TypeName()
        message = kinds[name]()
        assert detail.Unpack(message)
        assert name not in found, f"{name} sent twice"
        found[name] = message
    return found


# --- reasons and statuses -------------------------------------------------------------------


def test_every_reason_belongs_to_one_grpc_status() -> None:
    assert set(REASON_STATUS) == set(Reason)
    for reason, status in REASON_STATUS.items():
        assert status in grpc.StatusCode.__members__, reason
        assert reason.value == reason.name
        assert reason.value.isupper()


@pytest.mark.parametrize("error_type", billing_errors(), ids=lambda error: error.__name__)
def test_every_error_defaults_to_a_reason_of_its_own_status(
    error_type: type[BillingError],
) -> None:
    assert REASON_STATUS[error_type.default_reason] == error_type.status
    assert make(error_type, "x").reason is error_type.default_reason


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_every_reason_reaches_the_caller_with_its_status(reason: Reason) -> None:
    error_type = ERROR_BY_STATUS[REASON_STATUS[reason]]
    status = rich_status(make(error_type, "something is wrong", reason=reason))
    assert status.code == grpc.StatusCode[REASON_STATUS[reason]].value[0]
    info = unpack(status)["google.rpc.ErrorInfo"]
    assert (info.reason, info.domain) == (reason.value, ERROR_DOMAIN)


def _raised_with_reasons(path: Path) -> list[tuple[str, str, str]]:
    """(location, error class, reason) of every `SomeError(..., reason=Reason.X)` in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        for keyword in node.keywords:
            value = keyword.value
            if (
                keyword.arg == "reason"
                and isinstance(value, ast.Attribute)
                and isinstance(value.value, ast.Name)
                and value.value.id == "Reason"
                and name is not None
            ):
                found.append((f"{path.relative_to(REPOSITORY)}:{node.lineno}", name, value.attr))
    return found


def test_every_error_raised_with_a_reason_raises_one_of_its_own_status() -> None:
    sources = [
        *(REPOSITORY / "libs/common/src/taskforge_common").rglob("*.py"),
        *(REPOSITORY / "services").glob("*/src/**/*.py"),
    ]
    errors_by_name = {error_type.__name__: error_type for error_type in billing_errors()}
    raised = [found for path in sources for found in _raised_with_reasons(path)]
    assert len(raised) >= 8, "the auth errors name their reasons"
    for location, name, reason in raised:
        if name in errors_by_name:
            status = errors_by_name[name].status
            assert REASON_STATUS[Reason[reason]] == status, f"{location}: {name} with {reason}"


def test_status_for_known_errors() -> None:
    assert status_for(errors.NotFound("x")) is grpc.StatusCode.NOT_FOUND
    assert status_for(errors.PreconditionFailed("x")) is grpc.StatusCode.FAILED_PRECONDITION
    assert status_for(errors.Unauthenticated("x")) is grpc.StatusCode.UNAUTHENTICATED


# --- the rich status --------------------------------------------------------------------------


def test_an_invalid_field_is_named_in_a_bad_request() -> None:
    error = errors.InvalidArgument("quantity must not be negative", field="quantity")
    status = rich_status(error.at("events[3]"))
    assert (status.code, status.message) == (3, "quantity must not be negative")
    details = unpack(status)
    assert details["google.rpc.ErrorInfo"].reason == "INVALID_FIELD"
    [violation] = details["google.rpc.BadRequest"].field_violations
    assert (violation.field, violation.description) == (
        "events[3].quantity",
        "quantity must not be negative",
    )


def test_only_invalid_arguments_with_a_field_carry_a_bad_request() -> None:
    no_field = unpack(rich_status(errors.InvalidArgument("the batch is empty")))
    assert set(no_field) == {"google.rpc.ErrorInfo"}
    # A field on another kind of error names no violation of the request's format.
    not_found = unpack(rich_status(errors.NotFound("no such reservation", field="reservation_id")))
    assert set(not_found) == {"google.rpc.ErrorInfo"}


def test_a_rate_limit_says_when_to_retry() -> None:
    error = errors.ResourceExhausted("slow down", retry_after=timedelta(milliseconds=1500))
    details = unpack(rich_status(error))
    assert set(details) == {"google.rpc.ErrorInfo", "google.rpc.RetryInfo"}
    assert details["google.rpc.ErrorInfo"].reason == "RATE_LIMITED"
    assert details["google.rpc.RetryInfo"].retry_delay.ToTimedelta() == timedelta(seconds=1.5)


def test_error_details_decodes_what_was_sent() -> None:
    status = rich_status(errors.InvalidArgument("bad quantity", field="quantity"))
    error = grpc.aio.AioRpcError(
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.aio.Metadata(),
        grpc.aio.Metadata((DETAILS_KEY, status.SerializeToString())),
        "bad quantity",
        None,
    )
    info, bad_request, retry = error_details(error)
    assert info is not None
    assert info.reason == "INVALID_FIELD"
    assert bad_request is not None
    assert bad_request.field_violations[0].field == "quantity"
    assert retry is None


def test_error_details_of_a_plain_status_are_empty() -> None:
    error = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        "connection reset",
        None,
    )
    assert error_details(error) == (None, None, None)


# --- map_errors -------------------------------------------------------------------------------


async def test_results_pass_through() -> None:
    recorder, ctx = context()
    assert await Servicer(None).Get("abc", ctx) == "ABC"
    assert recorder.aborted is None


@pytest.mark.parametrize("error_type", billing_errors(), ids=lambda error: error.__name__)
async def test_billing_errors_abort_with_their_status_message_and_reason(
    error_type: type[BillingError],
) -> None:
    recorder, ctx = context()
    with pytest.raises(AbortCalled):
        await Servicer(make(error_type, "invoice 42 is not open")).Get("abc", ctx)
    assert recorder.aborted == (grpc.StatusCode[error_type.status], "invoice 42 is not open")
    status = recorder.status()
    assert (status.code, status.message) == (
        grpc.StatusCode[error_type.status].value[0],
        "invoice 42 is not open",
    )
    assert unpack(status)["google.rpc.ErrorInfo"].reason == error_type.default_reason


async def test_unknown_errors_become_internal_without_their_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder, ctx = context()
    with (
        caplog.at_level(logging.ERROR, logger="taskforge_common.grpc.errors"),
        pytest.raises(AbortCalled),
    ):
        await Servicer(KeyError("password=hunter2")).Get("abc", ctx)
    assert recorder.aborted == (grpc.StatusCode.INTERNAL, "internal error")
    info = unpack(recorder.status())["google.rpc.ErrorInfo"]
    assert (info.reason, info.domain) == ("INTERNAL_ERROR", ERROR_DOMAIN)
    assert b"hunter2" not in recorder.trailing_metadata[0][1]
    [record] = caplog.records
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], KeyError)
    assert "Servicer.Get" in record.getMessage()


async def test_an_abort_by_the_method_itself_is_left_alone() -> None:
    recorder, ctx = context()
    own_abort = grpc.aio.AbortError("aborted by the servicer")
    with pytest.raises(grpc.aio.AbortError):
        await Servicer(own_abort).Get("abc", ctx)
    assert recorder.aborted is None


def test_the_decorator_keeps_the_method_name() -> None:
    assert Servicer.Get.__name__ == "Get"
    assert Servicer.Get.__qualname__ == "Servicer.Get"
