"""Typed errors raised by domain and application code.

Each error names the gRPC status it becomes; the mapping to gRPC happens once, at the transport edge
(`taskforge_common.grpc.errors`), so nothing here imports grpc.
"""

from __future__ import annotations


class BillingError(Exception):
    """Base of every expected error; `status` is the name of a `grpc.StatusCode` member."""

    status = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(BillingError):
    """Malformed, negative, unknown, too large or too many."""

    status = "INVALID_ARGUMENT"


class NotFound(BillingError):
    """The object does not exist, or the caller may not know that it does."""

    status = "NOT_FOUND"


class AlreadyExists(BillingError):
    """A unique thing again: an key reused with another payload; a second subscription."""

    status = "ALREADY_EXISTS"


class PreconditionFailed(BillingError):
    """The request is well formed but the state forbids it (closed period, wrong invoice state)."""

    status = "FAILED_PRECONDITION"


class PermissionDenied(BillingError):
    """The caller is known but lacks the scope or the organisation."""

    status = "PERMISSION_DENIED"


class Unauthenticated(BillingError):
    """No token, or an expired or forged one."""

    status = "UNAUTHENTICATED"


class ResourceExhausted(BillingError):
    """A rate limit was hit."""

    status = "RESOURCE_EXHAUSTED"


class Unavailable(BillingError):
    """A dependency (the database) cannot be reached right now; retrying later may succeed."""

    status = "UNAVAILABLE"
