"""Credit (SPEC §4, §5, §6): credit notes, and the credit balance they fill and invoices draw on.

Every cent of credit is a movement: issued by a credit note (+) or applied to an invoice (−).
The balance is their sum, never negative; a credit larger than the next invoice carries forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from taskforge_common.money import Money
from taskforge_subscriptions.domain.invoices import compute_totals


class CreditKind(StrEnum):
    DOWNGRADE = "downgrade"  # the unused share of a higher fee (SPEC §5)
    CANCELLATION = "cancellation"  # the unused share of the fee at an immediate cancel (§6)
    REFUND = "refund"  # issued by the payments service with a refund (§9)


@dataclass(frozen=True, slots=True)
class CreditNote:
    id: str
    number: str
    organization_id: str
    kind: CreditKind
    reason: str
    subtotal: Money
    tax_rate: Decimal
    tax: Money
    total: Money
    created_at: datetime
    subscription_id: str | None = None
    invoice_id: str | None = None


def credit_amounts(subtotal: Money, tax_rate: Decimal) -> tuple[Money, Money]:
    """(tax, total) of a credit of `subtotal`: the same arithmetic as an invoice's, so a
    downgrade credits exactly what the matching upgrade would have charged."""
    totals = compute_totals([subtotal], tax_rate, Money.zero(subtotal.currency))
    return totals.tax, totals.total


class CreditMovementKind(StrEnum):
    ISSUED = "issued"  # by a credit note
    APPLIED = "applied"  # to an invoice at its finalization
    RESTORED = "restored"  # given back when the invoice it was applied to is voided


@dataclass(frozen=True, slots=True)
class CreditMovement:
    """One change of an organisation's credit balance: `amount` > 0 when issued or restored,
    < 0 when applied; the balance is the sum of its movements."""

    id: str
    organization_id: str
    kind: CreditMovementKind
    amount: Money
    created_at: datetime
    credit_note_id: str | None = None
    invoice_id: str | None = None
