"""ReserveUsage, CommitReservation, ReleaseReservation.

Invariant: usage plus live reservations never exceed a limit. Reservations of one organisation
and usage type are serialised by a lock held for the transaction; expired ones stop counting.
Every call is safe to retry: reserve by idempotency key, commit and release by reservation id.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from taskforge_common.clock import Clock
from taskforge_common.errors import AlreadyExists, InvalidArgument, NotFound, PreconditionFailed
from taskforge_common.ids import new_id
from taskforge_metering.application.caller import Caller
from taskforge_metering.application.ingest import write_usage
from taskforge_metering.application.limits import status_of
from taskforge_metering.application.ports import Reservation, UnitOfWork, UnitOfWorkFactory
from taskforge_metering.domain.entitlements import usage_window
from taskforge_metering.domain.limits import LimitDecision, LimitStatus, check_one
from taskforge_metering.domain.meters import UsageType
from taskforge_metering.domain.usage import (
    UsageRecord,
    new_usage_event,
    parse_organization_id,
    parse_quantity,
    validate_idempotency_key,
)

DEFAULT_TTL = timedelta(minutes=5)
MAX_TTL = timedelta(hours=24)
ACTIVE, COMMITTED, RELEASED = "active", "committed", "released"


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
            raise InvalidArgument("usage_type is required and must be a known usage type")
        amount = parse_quantity(quantity)
        if amount <= 0:
            raise InvalidArgument("quantity must be greater than zero")
        key = validate_idempotency_key(idempotency_key)
        lifetime = DEFAULT_TTL if ttl is None else ttl
        if not timedelta(seconds=1) <= lifetime <= MAX_TTL:
            raise InvalidArgument(f"ttl must be between 1 second and {MAX_TTL}")
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
    ) -> UsageRecord:
        """Turn the reservation into recorded usage (the actual quantity; default: reserved)."""
        rid = _parse_reservation_id(reservation_id)
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            reservation = await _get_for_update(uow, rid, caller)
            if reservation.status == COMMITTED and reservation.record_id is not None:
                found = await uow.store.find_records([_usage_key(reservation)])
                return found[_usage_key(reservation)].record
            _ensure_active(reservation, now)
            event = new_usage_event(
                organization_id=reservation.organization_id,
                usage_type=reservation.usage_type,
                quantity=quantity or f"{reservation.quantity:f}",
                timestamp=timestamp,
                idempotency_key=_usage_key(reservation)[1],
                metadata=metadata,
                now=now,
            )
            (result,) = (await write_usage(uow.store, [(0, event)], now)).values()
            if result.error is not None:
                raise result.error
            assert result.record is not None
            await uow.store.set_reservation_status(rid, COMMITTED, result.record.id)
            await uow.commit()
        return result.record

    async def release(self, reservation_id: str, caller: Caller) -> None:
        """Give the reserved quantity back; releasing twice is fine, after a commit it is not."""
        rid = _parse_reservation_id(reservation_id)
        async with self._unit_of_work() as uow:
            reservation = await _get_for_update(uow, rid, caller)
            if reservation.status == COMMITTED:
                raise PreconditionFailed(f"reservation {rid} is already committed")
            if reservation.status == ACTIVE:
                await uow.store.set_reservation_status(rid, RELEASED)
                await uow.commit()


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
        raise NotFound(f"reservation {reservation_id} not found")
    return reservation


def _ensure_active(reservation: Reservation, now: datetime) -> None:
    if reservation.status == RELEASED:
        raise PreconditionFailed(f"reservation {reservation.id} was released")
    if reservation.expires_at <= now:
        raise PreconditionFailed(
            f"reservation {reservation.id} expired at {reservation.expires_at.isoformat()}; "
            "record the usage with RecordUsage"
        )


def _usage_key(reservation: Reservation) -> tuple[str, str]:
    """The usage record of a committed reservation has a key derived from the reservation."""
    return (reservation.organization_id, f"reservation:{reservation.id}")


def _parse_reservation_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument(f"reservation_id must be a UUID, got {value!r}") from None


def _fingerprint(usage_type: UsageType, quantity: Decimal, ttl: timedelta) -> str:
    payload = f"{usage_type.value}|{quantity.normalize():f}|{ttl.total_seconds()}"
    return hashlib.sha256(payload.encode()).hexdigest()
