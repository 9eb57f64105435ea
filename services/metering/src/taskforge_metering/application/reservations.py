"""ReserveUsage, CommitReservation, ReleaseReservation.

What is guaranteed: a reservation is granted only if, at that moment, recorded usage plus live
reservations plus its own quantity stay within the limit. Reservations of one organisation and
usage type are serialised by a lock held for the transaction, so concurrent reservations never
together take more than the limit leaves; expired ones stop counting. Usage itself is never
refused for being over a limit: usage recorded with RecordUsage, or a commit above the
reserved quantity, is counted as it happened (usage that happened is never dropped), so usage
may exceed a limit, after which no reservation is granted until the window resets.

Every call is safe to retry: reserve by idempotency key, commit and release by reservation id.
A commit retried with the quantity it was committed with answers the original record; with
another quantity it is refused (FAILED_PRECONDITION naming the committed quantity).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from taskforge_common.clock import Clock
from taskforge_common.decimals import canonical, format_decimal
from taskforge_common.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PreconditionFailed,
    Reason,
)
from taskforge_common.ids import new_id
from taskforge_common.meters import UsageType
from taskforge_common.validation import LONGEST_DURATION, SHORTEST_DURATION, parse_uuid
from taskforge_metering.application.caller import Caller
from taskforge_metering.application.ingest import write_usage
from taskforge_metering.application.limits import status_of
from taskforge_metering.application.ports import Reservation, UnitOfWork, UnitOfWorkFactory
from taskforge_metering.domain.entitlements import usage_window
from taskforge_metering.domain.limits import LimitDecision, LimitStatus, check_one
from taskforge_metering.domain.usage import (
    UsageRecord,
    new_usage_event,
    parse_organization_id,
    parse_quantity,
    validate_idempotency_key,
)

DEFAULT_TTL = timedelta(minutes=5)
ACTIVE, COMMITTED, RELEASED = "active", "committed", "released"


@dataclass(frozen=True, slots=True)
class CommittedUsage:
    """The usage record of a committed reservation and where its limit stands with it."""

    record: UsageRecord
    status: LimitStatus


@dataclass(frozen=True, slots=True)
class ReservationOutcome:
    decision: LimitDecision
    reservation: Reservation | None
    status: LimitStatus | None


class Reservations:
    def __init__(self, unit_of_work: UnitOfWorkFactory, clock: Clock) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock

    async def reserve(
        self,
        organization_id: str,
        usage_type: UsageType | None,
        quantity: str,
        idempotency_key: str,
        ttl: timedelta | None,
        caller: Caller,
    ) -> ReservationOutcome:
        org = parse_organization_id(organization_id)
        if usage_type is None:
            raise InvalidArgument(
                "usage_type is required and must be a known usage type", field="usage_type"
            )
        amount = parse_quantity(quantity)
        if amount <= 0:
            raise InvalidArgument("quantity must be greater than zero", field="quantity")
        key = validate_idempotency_key(idempotency_key)
        lifetime = DEFAULT_TTL if ttl is None else ttl
        if not SHORTEST_DURATION <= lifetime <= LONGEST_DURATION:
            raise InvalidArgument(
                f"ttl must be from {SHORTEST_DURATION} to {LONGEST_DURATION}", field="ttl"
            )
        caller.ensure_access(org)
        fingerprint = _fingerprint(usage_type, amount, lifetime)
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            store = uow.store
            await store.lock_limit(org, usage_type)
            granted = (await store.get_entitlements([org])).get(org)
            window = usage_window(granted, now)
            snapshot = await store.snapshot(org, now, usage_type)
            status = status_of(granted, snapshot, usage_type)
            earlier = await store.get_reservation_by_key(org, key)
            if earlier is not None:
                return _replayed(earlier, fingerprint, status)
            decision = check_one(granted, status, amount)
            if not decision.allowed:
                return ReservationOutcome(decision, None, status)
            reservation = Reservation(
                id=new_id(now),
                organization_id=org,
                usage_type=usage_type,
                quantity=amount,
                idempotency_key=key,
                fingerprint=fingerprint,
                status=ACTIVE,
                window_start=window.start,
                expires_at=now + lifetime,
                created_at=now,
            )
            if not await store.insert_reservation(reservation):
                # A concurrent call with the same key (another usage type, so another lock)
                # stored its reservation first: that one decides.
                stored = await store.get_reservation_by_key(org, key)
                assert stored is not None, "a conflicting reservation is committed"
                return _replayed(stored, fingerprint, status)
            await uow.commit()
        held = LimitStatus(usage_type, status.limit, status.current, status.reserved + amount)
        return ReservationOutcome(decision, reservation, held)

    async def commit(
        self,
        reservation_id: str,
        quantity: str,
        timestamp: datetime | None,
        metadata: Mapping[str, str],
        caller: Caller,
    ) -> CommittedUsage:
        """Turn the reservation into recorded usage (the actual quantity; default: reserved)."""
        rid = _parse_reservation_id(reservation_id)
        requested = parse_quantity(quantity) if quantity else None
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            reservation = await _get_for_update(uow, rid, caller)
            if reservation.status == COMMITTED and reservation.record_id is not None:
                record = (await uow.store.find_records([_usage_key(reservation)]))[
                    _usage_key(reservation)
                ].record
                _ensure_same_quantity(reservation, record, requested)
            else:
                _ensure_active(reservation, now)
                record = await _record_commit(uow, reservation, requested, timestamp, metadata, now)
                await uow.store.set_reservation_status(rid, COMMITTED, record.id)
            status = await _limit_status(uow, reservation, now)
            await uow.commit()
        return CommittedUsage(record, status)

    async def release(self, reservation_id: str, caller: Caller) -> None:
        """Give the reserved quantity back; releasing twice is fine, after a commit it is not."""
        rid = _parse_reservation_id(reservation_id)
        async with self._unit_of_work() as uow:
            reservation = await _get_for_update(uow, rid, caller)
            if reservation.status == COMMITTED:
                raise PreconditionFailed(
                    f"reservation {rid} is already committed", reason=Reason.RESERVATION_COMMITTED
                )
            if reservation.status == ACTIVE:
                await uow.store.set_reservation_status(rid, RELEASED)
                await uow.commit()


async def _record_commit(
    uow: UnitOfWork,
    reservation: Reservation,
    requested: Decimal | None,
    timestamp: datetime | None,
    metadata: Mapping[str, str],
    now: datetime,
) -> UsageRecord:
    """Record the committed usage as it happened, above the reserved quantity or not."""
    quantity = reservation.quantity if requested is None else requested
    event = new_usage_event(
        organization_id=reservation.organization_id,
        usage_type=reservation.usage_type,
        quantity=format_decimal(quantity),
        timestamp=timestamp,
        idempotency_key=_usage_key(reservation)[1],
        metadata=metadata,
        now=now,
    )
    (result,) = (await write_usage(uow.store, [(0, event)], now)).values()
    if result.error is not None:
        raise result.error
    assert result.record is not None
    return result.record


async def _limit_status(uow: UnitOfWork, reservation: Reservation, now: datetime) -> LimitStatus:
    org, usage_type = reservation.organization_id, reservation.usage_type
    granted = (await uow.store.get_entitlements([org])).get(org)
    return status_of(granted, await uow.store.snapshot(org, now, usage_type), usage_type)


def _ensure_same_quantity(
    reservation: Reservation, record: UsageRecord, requested: Decimal | None
) -> None:
    """A retried commit must ask for what was committed (no quantity: the reserved one)."""
    asked = reservation.quantity if requested is None else requested
    if asked != record.quantity:  # Decimal equality: 3 == 3.000000
        raise PreconditionFailed(
            f"reservation {reservation.id} is already committed with quantity "
            f"{format_decimal(canonical(record.quantity))}, not {format_decimal(canonical(asked))}",
            reason=Reason.RESERVATION_COMMITTED,
            field="quantity",
        )


def _replayed(earlier: Reservation, fingerprint: str, status: LimitStatus) -> ReservationOutcome:
    """A retried reserve: the original reservation for the same payload, else a conflict."""
    if earlier.fingerprint != fingerprint:
        raise AlreadyExists(
            f"idempotency_key {earlier.idempotency_key!r} was already used for a different "
            "reservation",
            field="idempotency_key",
        )
    return ReservationOutcome(LimitDecision(True, "", (status,)), earlier, status)


async def _get_for_update(uow: UnitOfWork, reservation_id: str, caller: Caller) -> Reservation:
    reservation = await uow.store.get_reservation(reservation_id, for_update=True)
    if reservation is None or not caller.may_access(reservation.organization_id):
        raise NotFound(f"reservation {reservation_id} not found", field="reservation_id")
    return reservation


def _ensure_active(reservation: Reservation, now: datetime) -> None:
    if reservation.status == RELEASED:
        raise PreconditionFailed(
            f"reservation {reservation.id} was released", reason=Reason.RESERVATION_NOT_ACTIVE
        )
    if reservation.expires_at <= now:
        raise PreconditionFailed(
            f"reservation {reservation.id} expired at {reservation.expires_at.isoformat()}; "
            "record the usage with RecordUsage",
            reason=Reason.RESERVATION_EXPIRED,
        )


def _usage_key(reservation: Reservation) -> tuple[str, str]:
    """The usage record of a committed reservation has a key derived from the reservation."""
    return (reservation.organization_id, f"reservation:{reservation.id}")


def _parse_reservation_id(value: str) -> str:
    return parse_uuid(value, "reservation_id")


def _fingerprint(usage_type: UsageType, quantity: Decimal, ttl: timedelta) -> str:
    payload = f"{usage_type.value}|{quantity:f}|{ttl.total_seconds()}"  # quantity: canonical
    return hashlib.sha256(payload.encode()).hexdigest()
