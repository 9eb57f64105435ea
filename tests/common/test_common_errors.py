from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, cast

import grpc
import pytest

from taskforge_common import errors
from taskforge_common.errors import BillingError
from taskforge_common.grpc.errors import map_errors, status_for


class AbortCalled(Exception):
    pass


class RecordingContext:
    """Stands in for grpc.aio.ServicerContext: abort() records and raises, like the real one."""

    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        self.aborted = (code, details)
        raise AbortCalled


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


def make(error_type: type[BillingError], message: str) -> BillingError:
    if error_type is errors.ResourceExhausted:
        return errors.ResourceExhausted(message, retry_after=timedelta(seconds=1))
    return error_type(message)


@pytest.mark.parametrize("error_type", billing_errors(), ids=lambda error: error.__name__)
def test_status_for_every_billing_error(error_type: type[BillingError]) -> None:
    assert status_for(make(error_type, "x")) is grpc.StatusCode[error_type.status]


def test_status_for_known_errors() -> None:
    assert status_for(errors.NotFound("x")) is grpc.StatusCode.NOT_FOUND
    assert status_for(errors.PreconditionFailed("x")) is grpc.StatusCode.FAILED_PRECONDITION
    assert status_for(errors.Unauthenticated("x")) is grpc.StatusCode.UNAUTHENTICATED


async def test_results_pass_through() -> None:
    recorder, ctx = context()
    assert await Servicer(None).Get("abc", ctx) == "ABC"
    assert recorder.aborted is None


@pytest.mark.parametrize("error_type", billing_errors(), ids=lambda error: error.__name__)
async def test_billing_errors_abort_with_their_status_and_message(
    error_type: type[BillingError],
) -> None:
    recorder, ctx = context()
    with pytest.raises(AbortCalled):
        await Servicer(make(error_type, "invoice 42 is not open")).Get("abc", ctx)
    assert recorder.aborted == (grpc.StatusCode[error_type.status], "invoice 42 is not open")


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
