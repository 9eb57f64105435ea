"""Rating (SPEC §2, §4): the billable quantity of each meter in each usage window, priced from the
price book in force, becomes one charge per meter.

A usage window is one month from the anchor (also inside quarterly and annual cycles), so
included allowances and graduated bands start again each month. A tier change inside a window
splits it into pieces, each priced by the plan in force during it: prices change at the instant of
the change (SPEC §5), and the bands and allowance of the window carry on across the pieces
instead of starting again. Amounts stay exact until the one rounding per line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from taskforge_common.meters import UsageType
from taskforge_common.money import EXACT, round_money
from taskforge_subscriptions.domain.plans import ChargeModel, MeterPrice

ZERO = Decimal(0)


def cost(price: MeterPrice, quantity: Decimal) -> Decimal:
    """The exact charge for `quantity` units used from the start of a usage window."""
    with localcontext(EXACT):
        return _cost(price, quantity)


def _cost(price: MeterPrice, quantity: Decimal) -> Decimal:
    billable = max(ZERO, quantity - price.included)
    if price.model is ChargeModel.PER_UNIT:
        return billable * price.unit_price
    if billable == 0:
        return ZERO
    if price.model is ChargeModel.VOLUME:
        band = next(b for b in price.bands if b.up_to is None or billable <= b.up_to)
        return billable * band.unit_price + band.flat_fee
    total = ZERO
    lower = ZERO
    for band in price.bands:
        if billable <= lower:
            break
        upper = billable if band.up_to is None else min(billable, band.up_to)
        total += (upper - lower) * band.unit_price + band.flat_fee
        lower = upper
    return total


@dataclass(frozen=True, slots=True)
class WindowUsage:
    """The billable quantity of one meter over [start, end), a piece of the usage window that
    starts at `window_start`, priced by `price` (the plan in force over the piece)."""

    usage_type: UsageType
    window_start: datetime
    start: datetime
    end: datetime
    quantity: Decimal
    price: MeterPrice


@dataclass(frozen=True, slots=True)
class RatedWindow:
    """A piece as rated: what an invoice line was built from, to explain it."""

    usage_type: UsageType
    start: datetime
    end: datetime
    quantity: Decimal
    # Exact, unrounded.
    amount: Decimal
    unit_price: Decimal | None


@dataclass(frozen=True, slots=True)
class UsageCharge:
    """One meter's charge for an invoice: the quantity over every window, the amount rounded
    once, and a unit price when one price applies to every unit."""

    usage_type: UsageType
    quantity: Decimal
    amount: Decimal
    unit_price: Decimal | None
    windows: tuple[RatedWindow, ...]


def _single_unit_price(price: MeterPrice) -> Decimal | None:
    if price.model is ChargeModel.PER_UNIT and price.included == 0:
        return price.unit_price
    return None


def rate_pieces(pieces: Iterable[WindowUsage]) -> list[RatedWindow]:
    """Rate each piece as the increment it adds to its window's cost under its own price, in
    the order the pieces happened."""
    used: dict[tuple[UsageType, datetime], Decimal] = {}
    rated = []
    for piece in sorted(pieces, key=lambda p: (p.usage_type, p.start)):
        if piece.quantity < 0:
            raise ValueError(f"negative usage of {piece.usage_type}")
        key = (piece.usage_type, piece.window_start)
        before = used.get(key, ZERO)
        after = before + piece.quantity
        used[key] = after
        with localcontext(EXACT):
            amount = cost(piece.price, after) - cost(piece.price, before)
        rated.append(
            RatedWindow(
                piece.usage_type,
                piece.start,
                piece.end,
                piece.quantity,
                amount,
                _single_unit_price(piece.price),
            )
        )
    return rated


def rate_usage(pieces: Sequence[WindowUsage], currency: str) -> list[UsageCharge]:
    """One charge per meter with a non-zero quantity, in usage type order."""
    by_meter: dict[UsageType, list[RatedWindow]] = {}
    for window in rate_pieces(pieces):
        if window.quantity:
            by_meter.setdefault(window.usage_type, []).append(window)
    charges = []
    for usage_type in (t for t in UsageType if t in by_meter):  # SPEC §2's order
        windows = by_meter[usage_type]
        prices = {w.unit_price for w in windows}
        with localcontext(EXACT):
            quantity = sum((w.quantity for w in windows), ZERO)
            amount = sum((w.amount for w in windows), ZERO)
        charges.append(
            UsageCharge(
                usage_type,
                quantity,
                round_money(amount, currency),
                prices.pop() if len(prices) == 1 else None,
                tuple(windows),
            )
        )
    return charges
