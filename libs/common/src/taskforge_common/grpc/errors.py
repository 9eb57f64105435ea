"""The one place where typed errors become gRPC statuses (STYLE.md habit 7).

Every error is answered with Google's rich error model (AIP-193): besides the code and message,
the call's trailing metadata carries a `google.rpc.Status` whose details hold an `ErrorInfo` with
the error's stable reason and, where they apply, a `BadRequest` naming the offending field and a
`RetryInfo` saying when to try again. `error_details` decodes them on the client side.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, NoReturn, TypeVar, cast

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from taskforge_common.errors import (
    ERROR_DOMAIN,
    INTERNAL_ERROR_MESSAGE,
    BillingError,
    ResourceExhausted,
)

logger = logging.getLogger(__name__)


_Servicer = TypeVar("_Servicer")
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
_Context = TypeVar("_Context", bound="grpc.aio.ServicerContext[Any, Any]")
_Detail = TypeVar("_Detail", bound=Message)


def status_for(err: BillingError) -> grpc.StatusCode:
    return grpc.StatusCode[err.status]


def rich_status(err: BillingError) -> status_pb2.Status:
    """The `google.rpc.Status` that answers `err`."""
    code = status_for(err)
    status = status_pb2.Status(code=code.value[0], message=err.message)
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=err.reason, domain=ERROR_DOMAIN))
    if code is grpc.StatusCode.INVALID_ARGUMENT and err.field:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=err.field, description=err.message
        )
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    if isinstance(err, ResourceExhausted):
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromTimedelta(err.retry_after)
        status.details.add().Pack(retry)
    return status


async def abort(context: grpc.aio.ServicerContext[Any, Any], err: BillingError) -> NoReturn:
    """End the call with `err` as a rich status. This is what grpc.aio's `abort_with_status`
    does, spelled out because grpc-stubs does not declare that method."""
    status = rpc_status.to_status(rich_status(err))
    await context.abort(status.code, status.details, status.trailing_metadata)


class ErrorDetails(NamedTuple):
    """The rich details of a failed call; each is None when the status does not carry it."""

    info: error_details_pb2.ErrorInfo | None
    bad_request: error_details_pb2.BadRequest | None
    retry: error_details_pb2.RetryInfo | None


def error_details(error: grpc.aio.AioRpcError) -> ErrorDetails:
    """Decode what `abort` sent: `error_details(err).info.reason` is the stable reason to act on.
    Raises ValueError if the status details contradict the call's code or message."""
    # An AioRpcError answers code(), details() and trailing_metadata() as a grpc.Call does.
    status: status_pb2.Status | None = rpc_status.from_call(cast("grpc.Call", error))
    if status is None:
        return ErrorDetails(None, None, None)
    return ErrorDetails(
        _unpack(status, error_details_pb2.ErrorInfo),
        _unpack(status, error_details_pb2.BadRequest),
        _unpack(status, error_details_pb2.RetryInfo),
    )


def _unpack(status: status_pb2.Status, kind: type[_Detail]) -> _Detail | None:
    message = kind()
    for detail in status.details:
        if detail.Unpack(message):  # False, and nothing read, for another kind of detail
            return message
    return None


def map_errors(
    method: Callable[[_Servicer, _Request, _Context], Awaitable[_Response]],
) -> Callable[[_Servicer, _Request, _Context], Awaitable[_Response]]:
    """Decorate an async unary servicer method so that errors abort the call with a status.

    A BillingError aborts with its own status, message and details. Anything else is logged
    (with the trace id, through the JSON log format) and answered INTERNAL with a generic
    message and reason INTERNAL_ERROR, so internals never reach the caller.
    """

    @functools.wraps(method)
    async def wrapper(self: _Servicer, request: _Request, context: _Context) -> _Response:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise  # the method aborted the call itself
        except BillingError as err:
            await abort(context, err)
        except Exception:
            logger.exception("unhandled error in %s", method.__qualname__)
            await abort(context, BillingError(INTERNAL_ERROR_MESSAGE))

    return wrapper
