"""The one place where typed errors become gRPC statuses (STYLE.md habit 7)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from taskforge_common.errors import BillingError

logger = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = "internal error"

_Servicer = TypeVar("_Servicer")
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
_Context = TypeVar("_Context", bound="grpc.aio.ServicerContext[Any, Any]")


def status_for(err: BillingError) -> grpc.StatusCode:
    return grpc.StatusCode[err.status]


def map_errors(
    method: Callable[[_Servicer, _Request, _Context], Awaitable[_Response]],
) -> Callable[[_Servicer, _Request, _Context], Awaitable[_Response]]:
    """Decorate an async unary servicer method so that errors abort the call with a status.

    A BillingError aborts with its own status and message. Anything else is logged (with the
    trace id, through the JSON log format) and answered INTERNAL with a generic message, so
    internals never reach the caller.
    """

    @functools.wraps(method)
    async def wrapper(self: _Servicer, request: _Request, context: _Context) -> _Response:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise  # the method aborted the call itself
        except BillingError as err:
            await context.abort(status_for(err), err.message)
        except Exception:
            logger.exception("unhandled error in %s", method.__qualname__)
            await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_ERROR_MESSAGE)

    return wrapper
