"""Protobuf ↔ domain. Enums map by name, decimals are plain strings, times are UTC-aware."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from decimal import Decimal

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.timestamp_pb2 import Timestamp

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import usage_pb2
from taskforge_common.decimals import canonical, format_decimal
from taskforge_common.errors import InvalidArgument
from taskforge_common.meters import UsageType
from taskforge_common.protobuf import USAGE_TYPE, ProtoEnum, timestamp_field
from taskforge_metering.application.ingest import UsageEventInput
from taskforge_metering.application.ports import Reservation
from taskforge_metering.domain.entitlements import Entitlements, EntitlementStatus
from taskforge_metering.domain.limits import LimitStatus
from taskforge_metering.domain.usage import (
    UsageRecord,
    parse_organization_id,
    parse_quantity,
)

ENTITLEMENT_STATUS = ProtoEnum(
    usage_pb2.EntitlementStatus, EntitlementStatus, "ENTITLEMENT_STATUS_"
)
# Number → usage type, for the ingest path's plain dict lookup.
USAGE_TYPES = USAGE_TYPE.by_number
usage_type_number = USAGE_TYPE.number


def usage_type_or_none(number: int, field: str = "usage_type") -> UsageType | None:
    """UNSPECIFIED → None; a number outside the enum → InvalidArgument."""
    return USAGE_TYPE.optional(number, field)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_timestamp(instant: datetime | None) -> Timestamp | None:
    if instant is None:
        return None
    timestamp = Timestamp()
    set_timestamp(timestamp, instant)
    return timestamp


def set_timestamp(message: Timestamp, instant: datetime) -> None:
    """Integer arithmetic on the offset from the epoch: Timestamp.FromDatetime is slow, and
    every ingested record is answered with two timestamps."""
    message.seconds, message.nanos = _timestamp_parts(instant)


# A batch's records share their recorded_at (and, sent without one, their timestamp): the same
# instant is converted once.
@functools.lru_cache(maxsize=1024)
def _timestamp_parts(instant: datetime) -> tuple[int, int]:
    offset = instant - _EPOCH
    return offset.days * 86_400 + offset.seconds, offset.microseconds * 1000


@functools.lru_cache(maxsize=4096)  # every ingested record is answered; most quantities repeat
def quantity_text(quantity: Decimal) -> str:
    return format_decimal(canonical(quantity))


def usage_event_input(event: usage_pb2.UsageEvent) -> UsageEventInput:
    # An event whose type is unknown still gets its own per-event error (not a failed batch).
    # Positional arguments, in the order of the fields: ~0.4 µs less per event than keywords.
    return UsageEventInput(
        event.organization_id,
        USAGE_TYPES.get(event.usage_type),
        event.quantity,
        (event.timestamp.seconds, event.timestamp.nanos) if event.HasField("timestamp") else None,
        event.idempotency_key,
        dict(event.metadata),
    )


def usage_record(record: UsageRecord) -> usage_pb2.UsageRecord:
    message = usage_pb2.UsageRecord()
    fill_usage_record(message, record)
    return message


def fill_usage_record(message: usage_pb2.UsageRecord, record: UsageRecord) -> None:
    """Set `message` (a fresh one, or a field of a response) from `record`. Filling in place
    spares a batch answer a message and a copy per record."""
    message.id = record.id
    message.organization_id = record.organization_id
    message.usage_type = usage_type_number(record.usage_type)
    message.quantity = quantity_text(record.quantity)
    message.idempotency_key = record.idempotency_key
    if record.metadata:
        # Item by item: the map's update() is MutableMapping's, with its abc checks.
        target = message.metadata
        for key, value in record.metadata.items():
            target[key] = value
    set_timestamp(message.timestamp, record.timestamp)
    if record.recorded_at is not None:
        set_timestamp(message.recorded_at, record.recorded_at)


def limit_status(status: LimitStatus) -> usage_pb2.LimitStatus:
    remaining = status.remaining
    return usage_pb2.LimitStatus(
        usage_type=usage_type_number(status.usage_type),
        limit="" if status.limit is None else quantity_text(status.limit),
        current=quantity_text(status.current),
        remaining="" if remaining is None else quantity_text(remaining),
        exceeded=status.exceeded,
        reserved=quantity_text(status.reserved),
    )


def reservation(value: Reservation) -> usage_pb2.Reservation:
    return usage_pb2.Reservation(
        id=value.id,
        organization_id=value.organization_id,
        usage_type=usage_type_number(value.usage_type),
        quantity=quantity_text(value.quantity),
        expires_at=to_timestamp(value.expires_at),
    )


def entitlements_from(organization_id: str, message: usage_pb2.Entitlements) -> Entitlements:
    org = parse_organization_id(organization_id)
    status = ENTITLEMENT_STATUS.by_number.get(message.status)
    if status is None:
        raise InvalidArgument(
            "entitlements.status must be ACTIVE, PAST_DUE or NONE", field="entitlements.status"
        )
    if message.version < 0:
        raise InvalidArgument(
            "entitlements.version must not be negative", field="entitlements.version"
        )
    limits: dict[UsageType, Decimal] = {}
    listed: set[UsageType] = set()  # unlimited ones too: they hold no entry in `limits`
    for index, limit in enumerate(message.limits):
        field = f"entitlements.limits[{index}]"
        usage_type = usage_type_or_none(limit.usage_type, f"{field}.usage_type")
        if usage_type is None:
            raise InvalidArgument(f"{field}.usage_type is required", field=f"{field}.usage_type")
        if usage_type in listed:
            raise InvalidArgument(
                f"{field}: a second limit for {usage_type.value}", field=f"{field}.usage_type"
            )
        listed.add(usage_type)
        if limit.max:  # empty: unlimited
            limits[usage_type] = parse_quantity(limit.max, f"{field}.max")

    def instant(name: str) -> datetime | None:
        return timestamp_field(message, name, f"entitlements.{name}")

    return Entitlements(
        organization_id=org,
        status=status,
        version=message.version,
        tier=_enum_text(common_pb2.Tier, message.tier, "entitlements.tier", "TIER_"),
        billing_cycle=_enum_text(
            common_pb2.BillingCycle,
            message.billing_cycle,
            "entitlements.billing_cycle",
            "BILLING_CYCLE_",
        ),
        period_anchor=instant("period_anchor"),
        current_period_start=instant("current_period_start"),
        current_period_end=instant("current_period_end"),
        limits=limits,
        usage_closed_before=instant("usage_closed_before"),
    )


def entitlements_message(value: Entitlements) -> usage_pb2.Entitlements:
    return usage_pb2.Entitlements(
        status=f"ENTITLEMENT_STATUS_{value.status.name}",
        tier=f"TIER_{value.tier.upper()}" if value.tier else None,
        billing_cycle=f"BILLING_CYCLE_{value.billing_cycle.upper()}"
        if value.billing_cycle
        else None,
        period_anchor=to_timestamp(value.period_anchor),
        current_period_start=to_timestamp(value.current_period_start),
        current_period_end=to_timestamp(value.current_period_end),
        limits=[
            common_pb2.Limit(
                usage_type=usage_type_number(usage_type),
                max=quantity_text(maximum),
            )
            for usage_type, maximum in sorted(value.limits.items())
        ],
        usage_closed_before=to_timestamp(value.usage_closed_before),
        version=value.version,
    )


def _enum_text(enum: EnumTypeWrapper, number: int, field: str, prefix: str) -> str:
    """ "pro" for TIER_PRO; "" for UNSPECIFIED."""
    try:
        name = enum.Name(number)
    except ValueError:
        raise InvalidArgument(f"{field} {number} is not a known value", field=field) from None
    return "" if number == 0 else name.removeprefix(prefix).lower()
