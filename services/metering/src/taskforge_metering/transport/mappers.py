"""Protobuf ↔ domain. Enums map by name, decimals are plain strings, times are UTC-aware."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import usage_pb2
from taskforge_common.decimals import format_decimal, parse_decimal
from taskforge_common.errors import InvalidArgument
from taskforge_metering.application.ingest import UsageEventInput
from taskforge_metering.application.ports import Reservation
from taskforge_metering.domain.entitlements import Entitlements, EntitlementStatus
from taskforge_metering.domain.limits import LimitStatus
from taskforge_metering.domain.meters import UsageType
from taskforge_metering.domain.usage import UsageRecord, parse_organization_id

_USAGE_TYPE_PREFIX = "USAGE_TYPE_"
USAGE_TYPES: dict[int, UsageType] = {
    number: UsageType(name.removeprefix(_USAGE_TYPE_PREFIX).lower())
    for name, number in common_pb2.UsageType.items()
    if number != common_pb2.USAGE_TYPE_UNSPECIFIED
}
USAGE_TYPE_NUMBERS = {usage_type: number for number, usage_type in USAGE_TYPES.items()}

_STATUSES = {
    usage_pb2.ENTITLEMENT_STATUS_ACTIVE: EntitlementStatus.ACTIVE,
    usage_pb2.ENTITLEMENT_STATUS_PAST_DUE: EntitlementStatus.PAST_DUE,
    usage_pb2.ENTITLEMENT_STATUS_NONE: EntitlementStatus.NONE,
}
_STATUS_NUMBERS = {status: number for number, status in _STATUSES.items()}


def usage_type_or_none(number: int, field: str = "usage_type") -> UsageType | None:
    """UNSPECIFIED → None; a number outside the enum → InvalidArgument."""
    if number == common_pb2.USAGE_TYPE_UNSPECIFIED:
        return None
    try:
        return USAGE_TYPES[number]
    except KeyError:
        raise InvalidArgument(f"{field} {number} is not a known usage type") from None


def timestamp_or_none(message: object, field: str) -> datetime | None:
    if not message.HasField(field):  # type: ignore[attr-defined]
        return None
    value: Timestamp = getattr(message, field)
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(f"{field} is not a valid timestamp") from None


def duration_or_none(message: object, field: str) -> timedelta | None:
    if not message.HasField(field):  # type: ignore[attr-defined]
        return None
    value: Duration = getattr(message, field)
    return value.ToTimedelta()


def to_timestamp(instant: datetime | None) -> Timestamp | None:
    if instant is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(instant)
    return stamp


def usage_event_input(event: usage_pb2.UsageEvent) -> UsageEventInput:
    # An event whose type is unknown still gets its own per-event error (not a failed batch).
    number = event.usage_type
    return UsageEventInput(
        organization_id=event.organization_id,
        usage_type=USAGE_TYPES.get(number),
        quantity=event.quantity,
        timestamp=timestamp_or_none(event, "timestamp"),
        idempotency_key=event.idempotency_key,
        metadata=dict(event.metadata),
    )


def usage_record(record: UsageRecord) -> usage_pb2.UsageRecord:
    return usage_pb2.UsageRecord(
        id=record.id,
        organization_id=record.organization_id,
        usage_type=USAGE_TYPE_NUMBERS[record.usage_type],  # type: ignore[arg-type]
        quantity=format_decimal(record.quantity),
        timestamp=to_timestamp(record.timestamp),
        idempotency_key=record.idempotency_key,
        metadata=dict(record.metadata),
        recorded_at=to_timestamp(record.recorded_at),
    )


def limit_status(status: LimitStatus) -> usage_pb2.LimitStatus:
    remaining = status.remaining
    return usage_pb2.LimitStatus(
        usage_type=USAGE_TYPE_NUMBERS[status.usage_type],  # type: ignore[arg-type]
        limit="" if status.limit is None else format_decimal(status.limit),
        current=format_decimal(status.current),
        remaining="" if remaining is None else format_decimal(remaining),
        exceeded=status.exceeded,
        reserved=format_decimal(status.reserved),
    )


def reservation(value: Reservation) -> usage_pb2.Reservation:
    return usage_pb2.Reservation(
        id=value.id,
        organization_id=value.organization_id,
        usage_type=USAGE_TYPE_NUMBERS[value.usage_type],  # type: ignore[arg-type]
        quantity=format_decimal(value.quantity),
        expires_at=to_timestamp(value.expires_at),
    )


def entitlements_from(organization_id: str, message: usage_pb2.Entitlements) -> Entitlements:
    org = parse_organization_id(organization_id)
    status = _STATUSES.get(message.status)
    if status is None:
        raise InvalidArgument("entitlements.status must be ACTIVE, PAST_DUE or NONE")
    if message.version < 0:
        raise InvalidArgument("entitlements.version must not be negative")
    limits: dict[UsageType, Decimal] = {}
    for index, limit in enumerate(message.limits):
        field = f"entitlements.limits[{index}]"
        usage_type = usage_type_or_none(limit.usage_type, f"{field}.usage_type")
        if usage_type is None:
            raise InvalidArgument(f"{field}.usage_type is required")
        if usage_type in limits:
            raise InvalidArgument(f"{field}: a second limit for {usage_type.value}")
        if limit.max:  # empty: unlimited
            limits[usage_type] = parse_decimal(limit.max, f"{field}.max", max_places=6)
    return Entitlements(
        organization_id=org,
        status=status,
        version=message.version,
        tier=_enum_text(common_pb2.Tier, message.tier, "TIER_"),
        billing_cycle=_enum_text(common_pb2.BillingCycle, message.billing_cycle, "BILLING_CYCLE_"),
        period_anchor=timestamp_or_none(message, "period_anchor"),
        current_period_start=timestamp_or_none(message, "current_period_start"),
        current_period_end=timestamp_or_none(message, "current_period_end"),
        limits=limits,
        usage_closed_before=timestamp_or_none(message, "usage_closed_before"),
    )


def entitlements_message(value: Entitlements) -> usage_pb2.Entitlements:
    return usage_pb2.Entitlements(
        status=_STATUS_NUMBERS[value.status],  # type: ignore[arg-type]
        tier=_enum_number(common_pb2.Tier, value.tier, "TIER_"),  # type: ignore[arg-type]
        billing_cycle=_enum_number(  # type: ignore[arg-type]
            common_pb2.BillingCycle, value.billing_cycle, "BILLING_CYCLE_"
        ),
        period_anchor=to_timestamp(value.period_anchor),
        current_period_start=to_timestamp(value.current_period_start),
        current_period_end=to_timestamp(value.current_period_end),
        limits=[
            common_pb2.Limit(
                usage_type=USAGE_TYPE_NUMBERS[usage_type],  # type: ignore[arg-type]
                max=format_decimal(maximum),
            )
            for usage_type, maximum in sorted(value.limits.items())
        ],
        usage_closed_before=to_timestamp(value.usage_closed_before),
        version=value.version,
    )


def _enum_text(enum: object, number: int, prefix: str) -> str:
    """ "pro" for TIER_PRO; "" for UNSPECIFIED."""
    values: Mapping[str, int] = dict(enum.items())  # type: ignore[attr-defined]
    names = {v: k for k, v in values.items()}
    if number not in names:
        raise InvalidArgument(f"{number} is not a known {prefix.rstrip('_').lower()}")
    name = names[number].removeprefix(prefix)
    return "" if name == "UNSPECIFIED" else name.lower()


def _enum_number(enum: object, text: str, prefix: str) -> int:
    if not text:
        return 0
    return int(enum.Value(prefix + text.upper()))  # type: ignore[attr-defined]
