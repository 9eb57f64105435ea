"""Typed errors raised by domain and application code.

Each error names the gRPC status it becomes and carries a stable machine-readable `reason`
(Google's error model, AIP-193): callers in any language tell "period closed" from "wrong
state" by the reason, never by parsing the English message. The mapping to gRPC happens once,
at the transport edge (`taskforge_common.grpc.errors`), so nothing here imports grpc.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import ClassVar, Self

# The domain of every ErrorInfo the suite sends (google.rpc.ErrorInfo.domain).
ERROR_DOMAIN = "billing.taskforge"
# All a caller hears of an unexpected fault; the log has the details, with the trace id.
INTERNAL_ERROR_MESSAGE = "internal error"


class Reason(StrEnum):
    """Every reason an error may carry: stable upper-case names, never renamed or reused.
    Each belongs to one gRPC status (`REASON_STATUS`)."""

    # INVALID_ARGUMENT
    INVALID_FIELD = "INVALID_FIELD"
    UNDECODABLE_REQUEST = "UNDECODABLE_REQUEST"
    # NOT_FOUND
    NOT_FOUND = "NOT_FOUND"
    # ALREADY_EXISTS
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    SUBSCRIPTION_EXISTS = "SUBSCRIPTION_EXISTS"
    PRICE_EXISTS = "PRICE_EXISTS"
    # FAILED_PRECONDITION
    USAGE_PERIOD_CLOSED = "USAGE_PERIOD_CLOSED"
    RESERVATION_NOT_ACTIVE = "RESERVATION_NOT_ACTIVE"
    RESERVATION_EXPIRED = "RESERVATION_EXPIRED"
    RESERVATION_COMMITTED = "RESERVATION_COMMITTED"
    INVALID_STATE_TRANSITION = "INVALID_STATE_TRANSITION"
    SUBSCRIPTION_CANCELED = "SUBSCRIPTION_CANCELED"
    CONCURRENT_UPDATE = "CONCURRENT_UPDATE"
    PAYMENT_MISMATCH = "PAYMENT_MISMATCH"
    # PERMISSION_DENIED
    SCOPE_MISSING = "SCOPE_MISSING"
    ORGANIZATION_FORBIDDEN = "ORGANIZATION_FORBIDDEN"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    # UNAUTHENTICATED
    TOKEN_MISSING = "TOKEN_MISSING"
    TOKEN_INVALID = "TOKEN_INVALID"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    # RESOURCE_EXHAUSTED
    RATE_LIMITED = "RATE_LIMITED"
    # UNAVAILABLE
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    # Another service of the suite this call needs (metering, for usage) does not answer.
    PEER_UNAVAILABLE = "PEER_UNAVAILABLE"
    # INTERNAL
    INTERNAL_ERROR = "INTERNAL_ERROR"


class BillingError(Exception):
    """Base of every expected error; `status` is the name of a `grpc.StatusCode` member.

    `field` names the offending request field by its path ("events[3].quantity") where one is
    to blame; `at(prefix)` places it inside an enclosing message."""

    status: ClassVar[str] = "INTERNAL"
    default_reason: ClassVar[Reason] = Reason.INTERNAL_ERROR

    def __init__(self, message: str, *, reason: Reason | None = None, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.field = field

    def at(self, prefix: str) -> Self:
        """This error with its field path inside `prefix` ("quantity" → "events[3].quantity")."""
        # Not copy.copy: it calls the constructor again, and some take required keywords.
        placed = self.__class__.__new__(self.__class__)
        placed.__dict__.update(self.__dict__)
        placed.args = self.args
        placed.field = f"{prefix}.{self.field}" if self.field else prefix
        return placed


class InvalidArgument(BillingError):
    """Malformed, negative, unknown, too large or too many."""

    status = "INVALID_ARGUMENT"
    default_reason = Reason.INVALID_FIELD


class NotFound(BillingError):
    """The object does not exist, or the caller may not know that it does."""

    status = "NOT_FOUND"
    default_reason = Reason.NOT_FOUND


class AlreadyExists(BillingError):
    """A unique thing again: an key reused with another payload; a second subscription."""

    status = "ALREADY_EXISTS"
    default_reason = Reason.IDEMPOTENCY_KEY_REUSED


class PreconditionFailed(BillingError):
    """The request is well formed but the state forbids it (closed period, wrong invoice state).
    Always raised with a specific reason."""

    status = "FAILED_PRECONDITION"
    default_reason = Reason.USAGE_PERIOD_CLOSED


class PermissionDenied(BillingError):
    """The caller is known but lacks the scope or the organisation."""

    status = "PERMISSION_DENIED"
    default_reason = Reason.ORGANIZATION_FORBIDDEN


class Unauthenticated(BillingError):
    """No token, or an expired or forged one."""

    status = "UNAUTHENTICATED"
    default_reason = Reason.TOKEN_INVALID


class ResourceExhausted(BillingError):
    """A rate limit was hit; `retry_after` says when trying again may succeed."""

    status = "RESOURCE_EXHAUSTED"
    default_reason = Reason.RATE_LIMITED

    def __init__(
        self, message: str, *, retry_after: timedelta, reason: Reason | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class Unavailable(BillingError):
    """A dependency (the database) cannot be reached right now; retrying later may succeed."""

    status = "UNAVAILABLE"
    default_reason = Reason.DATABASE_UNAVAILABLE


# The one mapping of reasons to statuses: an error whose reason belongs to another status is a
# programming error, caught by the tests.
REASON_STATUS: dict[Reason, str] = {
    Reason.INVALID_FIELD: InvalidArgument.status,
    Reason.UNDECODABLE_REQUEST: InvalidArgument.status,
    Reason.NOT_FOUND: NotFound.status,
    Reason.IDEMPOTENCY_KEY_REUSED: AlreadyExists.status,
    Reason.SUBSCRIPTION_EXISTS: AlreadyExists.status,
    Reason.PRICE_EXISTS: AlreadyExists.status,
    Reason.USAGE_PERIOD_CLOSED: PreconditionFailed.status,
    Reason.RESERVATION_NOT_ACTIVE: PreconditionFailed.status,
    Reason.RESERVATION_EXPIRED: PreconditionFailed.status,
    Reason.RESERVATION_COMMITTED: PreconditionFailed.status,
    Reason.INVALID_STATE_TRANSITION: PreconditionFailed.status,
    Reason.SUBSCRIPTION_CANCELED: PreconditionFailed.status,
    Reason.CONCURRENT_UPDATE: PreconditionFailed.status,
    Reason.PAYMENT_MISMATCH: PreconditionFailed.status,
    Reason.SCOPE_MISSING: PermissionDenied.status,
    Reason.ORGANIZATION_FORBIDDEN: PermissionDenied.status,
    Reason.METHOD_NOT_ALLOWED: PermissionDenied.status,
    Reason.TOKEN_MISSING: Unauthenticated.status,
    Reason.TOKEN_INVALID: Unauthenticated.status,
    Reason.TOKEN_EXPIRED: Unauthenticated.status,
    Reason.RATE_LIMITED: ResourceExhausted.status,
    Reason.DATABASE_UNAVAILABLE: Unavailable.status,
    Reason.PEER_UNAVAILABLE: Unavailable.status,
    Reason.INTERNAL_ERROR: BillingError.status,
}
