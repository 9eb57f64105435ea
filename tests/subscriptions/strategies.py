"""Hypothesis strategies for SubscriptionService requests full of hostile field values, the
SPEC §11 oracle saying which of them must be refused, and bytes that decode as no request.

The field values come from tests/metering/strategies.py (odd and huge strings, Timestamp
extremes, enum oddities, page sizes and crafted page tokens, `mostly`); what is here is
subscriptions-specific: the requests, decimal prices and tax rates, limits, plans and prices.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext
from typing import Any, cast

from google.protobuf import message_factory
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

from taskforge.common.v1 import common_pb2
from taskforge.subscriptions.v1 import plan_pb2
from taskforge.subscriptions.v1 import subscription_service_pb2 as pb
from tests.metering.strategies import (
    any_enums,
    any_quantities,
    any_timestamps,
    bad_instant,
    bad_key,
    bad_quantity,
    bad_uuid,
    keys,
    mostly,
    odd_text,
    page_sizes,
    page_tokens,
    quantities,
    short_text,
    timestamps,
    usage_types,
    uuid_text,
)

_BAD_UTF8 = {
    "lone continuation": b"\x80",
    "0xff": b"\xff",
    "overlong slash": b"\xc0\xaf",
    "surrogate": b"\xed\xa0\x80",
    "beyond U+10FFFF": b"\xf4\x90\x80\x80",
    "cut sequence": b"ab\xc3",
}


def utf8_breaking() -> dict[str, bytes]:
    """Byte strings that are not UTF-8, each a different way."""
    return dict(_BAD_UTF8)


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def length_delimited(number: int, data: bytes) -> bytes:
    """Field `number` of wire type 2 (strings, bytes, messages) holding `data`."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def string_paths(message: Message) -> list[tuple[int, ...]]:
    """The field-number paths of every string field of `message`, nested messages of the
    suite's own packages included (limits, plans, prices, bands)."""
    paths: list[tuple[int, ...]] = []
    for field in message.DESCRIPTOR.fields:
        if field.type == field.TYPE_STRING:
            paths.append((field.number,))
        elif field.message_type is not None and field.message_type.full_name.startswith(
            "taskforge."
        ):
            nested: Any = message_factory.GetMessageClass(cast(Any, field.message_type))()
            paths += [(field.number, *path) for path in string_paths(nested)]
    return paths


def with_nested_string(path: tuple[int, ...], data: bytes) -> bytes:
    """A message whose string at `path` holds the raw `data`."""
    for number in reversed(path):
        data = length_delimited(number, data)
    return data


# -- field values ----------------------------------------------------------------------------

# The organisations of tests/subscriptions/integration/calls.py: the fuzz subscribes ORG, so
# most requests reach the database; OTHER_ORG has nothing.
ORG = "3f0c8a52-6d1e-4b7a-9c2d-1a2b3c4d5e01"
OTHER_ORG = "8d4e2f10-9a3b-4c5d-8e6f-7a8b9c0d1e02"
# The fuzz's clock (calls.START, 2026-03-01T00:00Z) and a window around it: the instants a
# billing run or a back-dated start may take without billing decades of periods.
NOW = 1772323200
EARLIEST = 946684800  # SPEC §11's first instant, 2000-01-01: the seed's prices start there
_DAY = 86_400
# Stands for ORG's fee invoice, which the test knows and the strategy does not.
ORG_INVOICE = "<ORG's invoice>"

organization_ids = mostly(st.sampled_from([ORG, ORG, OTHER_ORG]), uuid_text)
# Mostly a new organisation: CreateSubscription must not be refused for ORG's subscription.
new_organization_ids = mostly(st.uuids().map(str), uuid_text)
invoice_ids = mostly(st.just(ORG_INVOICE), uuid_text)
payment_ids = mostly(st.uuids().map(str), uuid_text)
tiers = mostly(st.integers(1, 3), st.one_of(st.just(0), st.just(4), any_enums))
cycles = mostly(st.integers(1, 3), st.one_of(st.just(0), any_enums))
# A billing run's as_of and a subscription's start: near now, or out of range.
near_now = st.builds(Timestamp, seconds=st.integers(NOW - 40 * _DAY, NOW + 40 * _DAY))
bounded_timestamps = mostly(
    st.one_of(st.none(), near_now),
    any_timestamps.filter(lambda t: bad_instant(t)),
)
request_ids = st.one_of(st.just(""), keys)
good_money = st.decimals(min_value=0, max_value=10**6, places=2).map(lambda d: f"{d:f}")
money = mostly(st.one_of(st.just(""), good_money), st.one_of(any_quantities, odd_text))
tax_rates = mostly(
    st.decimals(min_value=0, max_value=1, places=4).map(lambda d: f"{d:f}"),
    st.one_of(any_quantities, odd_text),
)
unit_prices = mostly(
    st.decimals(min_value=0, max_value=10, places=6).map(lambda d: f"{d:f}"),
    st.one_of(any_quantities, odd_text),
)


@st.composite
def limit_lists(draw: st.DrawFn) -> list[common_pb2.Limit]:
    if draw(st.booleans()):
        types = draw(st.lists(st.integers(1, 9), unique=True, max_size=9))
    else:
        types = draw(st.lists(usage_types, max_size=40))
    return [
        common_pb2.Limit(
            usage_type=cast(Any, usage_type), max=draw(st.one_of(st.just(""), quantities))
        )
        for usage_type in types
    ]


_Enum = Any  # the stubs type enum fields as their own NewType; the fuzz sends any int32

# -- requests --------------------------------------------------------------------------------


@st.composite
def create_subscription(draw: st.DrawFn) -> pb.CreateSubscriptionRequest:
    custom = draw(st.integers(0, 3)) == 3
    return pb.CreateSubscriptionRequest(
        organization_id=draw(new_organization_ids),
        tier=cast(_Enum, 4 if custom else draw(tiers)),
        billing_cycle=cast(_Enum, draw(cycles)),
        auto_renew=draw(st.booleans()),
        start_time=draw(bounded_timestamps),
        custom_price_per_month=draw(money) if custom else draw(st.one_of(st.just(""), money)),
        custom_limits=draw(limit_lists()) if custom or draw(st.integers(0, 5)) == 5 else [],
        request_id=draw(request_ids),
    )


@st.composite
def change_tier(draw: st.DrawFn) -> pb.ChangeTierRequest:
    custom = draw(st.integers(0, 4)) == 4
    return pb.ChangeTierRequest(
        organization_id=draw(organization_ids),
        tier=cast(_Enum, 4 if custom else draw(tiers)),
        effective_time=draw(timestamps),
        custom_price_per_month=draw(money) if custom else "",
        custom_limits=draw(limit_lists()) if custom else [],
        request_id=draw(request_ids),
    )


@st.composite
def cancel_subscription(draw: st.DrawFn) -> pb.CancelSubscriptionRequest:
    return pb.CancelSubscriptionRequest(
        organization_id=draw(organization_ids),
        # Mostly at the period end: an immediate cancellation ends ORG's subscription.
        at_period_end=draw(mostly(st.just(True), st.booleans())),
        effective_time=draw(timestamps),
        request_id=draw(request_ids),
    )


def _by_org(message: type[Message]) -> st.SearchStrategy[Any]:
    return st.builds(message, organization_id=organization_ids)


def _by_invoice(message: type[Message]) -> st.SearchStrategy[Any]:
    return st.builds(message, invoice_id=invoice_ids)


@st.composite
def list_invoices(draw: st.DrawFn) -> pb.ListInvoicesRequest:
    return pb.ListInvoicesRequest(
        organization_id=draw(organization_ids),
        status=cast(_Enum, draw(mostly(st.integers(0, 6), any_enums))),
        page_size=draw(page_sizes),
        page_token=draw(page_tokens),
    )


@st.composite
def run_billing_cycle(draw: st.DrawFn) -> pb.RunBillingCycleRequest:
    return pb.RunBillingCycleRequest(as_of=draw(bounded_timestamps), request_id=draw(request_ids))


@st.composite
def void_invoice(draw: st.DrawFn) -> pb.VoidInvoiceRequest:
    # Mostly another invoice than ORG's: voiding it once leaves the rest of the fuzz nothing.
    return pb.VoidInvoiceRequest(
        invoice_id=draw(mostly(st.uuids().map(str), invoice_ids)),
        reason=draw(st.one_of(short_text, odd_text)),
    )


@st.composite
def apply_payment(draw: st.DrawFn) -> pb.ApplyPaymentRequest:
    return pb.ApplyPaymentRequest(
        invoice_id=draw(invoice_ids),
        payment_id=draw(payment_ids),
        amount=draw(mostly(st.sampled_from(["31.90", "31.9", "1.00"]), money)),
        paid_at=draw(timestamps),
    )


@st.composite
def list_credit_notes(draw: st.DrawFn) -> pb.ListCreditNotesRequest:
    return pb.ListCreditNotesRequest(
        organization_id=draw(organization_ids),
        page_size=draw(page_sizes),
        page_token=draw(page_tokens),
    )


@st.composite
def set_tax_rate(draw: st.DrawFn) -> pb.SetTaxRateRequest:
    return pb.SetTaxRateRequest(
        organization_id=draw(mostly(st.uuids().map(str), uuid_text)), tax_rate=draw(tax_rates)
    )


event_types = mostly(
    st.sampled_from(["invoice.paid", "invoice.finalized", "subscription.created"]),
    st.one_of(odd_text, st.text(min_size=60, max_size=70)),
)


@st.composite
def list_events(draw: st.DrawFn) -> pb.ListEventsRequest:
    return pb.ListEventsRequest(
        organization_id=draw(organization_ids),
        types=draw(st.lists(event_types, max_size=draw(st.sampled_from([3, 25])))),
        page_size=draw(page_sizes),
        page_token=draw(page_tokens),
    )


@st.composite
def upsert_plan(draw: st.DrawFn) -> pb.UpsertPlanRequest:
    # Mostly the custom tier (no fee) or an odd one, so the seeded fees the fuzz's invoices
    # and the other tests' expectations rest on stay: a fee is only sent for unknown tiers.
    tier = draw(mostly(st.just(4), st.one_of(st.just(0), any_enums)))
    return pb.UpsertPlanRequest(
        plan=plan_pb2.Plan(
            tier=cast(_Enum, tier),
            price_per_month=draw(st.one_of(st.just(""), money)) if tier != 4 else "",
            currency_code=draw(mostly(st.just("USD"), st.one_of(short_text, odd_text))),
            limits=draw(limit_lists()),
            priority_support=draw(st.booleans()),
            custom_domains=draw(st.booleans()),
        )
    )


@st.composite
def plan_prices(draw: st.DrawFn) -> plan_pb2.PlanPrice:
    bands = draw(st.lists(st.builds(
        plan_pb2.PriceBand,
        up_to=st.one_of(st.just(""), quantities),
        unit_price=st.one_of(st.just(""), unit_prices),
        flat_fee=st.one_of(st.just(""), unit_prices),
    ), max_size=draw(st.sampled_from([3, 40]))))  # fmt: skip
    return plan_pb2.PlanPrice(
        usage_type=cast(_Enum, draw(usage_types)),
        unit_price=draw(st.one_of(st.just(""), unit_prices)),
        model=cast(_Enum, draw(mostly(st.integers(0, 3), any_enums))),
        bands=bands,
        included=draw(st.one_of(st.just(""), quantities)),
    )


@st.composite
def set_meter_price(draw: st.DrawFn) -> pb.SetMeterPriceRequest:
    # Effective from the far future (mostly), so usage the fuzz rates keeps its seeded price.
    return pb.SetMeterPriceRequest(
        tier=cast(_Enum, draw(tiers)),
        price=draw(plan_prices()),
        effective_time=draw(
            mostly(
                st.builds(Timestamp, seconds=st.integers(NOW + 3650 * _DAY, NOW + 7300 * _DAY)),
                any_timestamps,
            )
        ),
    )


@st.composite
def list_audit_entries(draw: st.DrawFn) -> pb.ListAuditEntriesRequest:
    return pb.ListAuditEntriesRequest(
        organization_id=draw(st.one_of(st.just(""), organization_ids)),
        entity_id=draw(st.one_of(st.just(""), uuid_text, st.sampled_from(["pro", "e" * 65]))),
        page_size=draw(page_sizes),
        page_token=draw(page_tokens),
    )


REQUESTS: dict[str, st.SearchStrategy[Any]] = {
    "ListPlans": st.just(pb.ListPlansRequest()),
    "CreateSubscription": create_subscription(),
    "GetSubscription": _by_org(pb.GetSubscriptionRequest),
    "ChangeTier": change_tier(),
    "CancelSubscription": cancel_subscription(),
    "ListInvoices": list_invoices(),
    "GetInvoice": _by_invoice(pb.GetInvoiceRequest),
    "GetInvoicePdf": _by_invoice(pb.GetInvoicePdfRequest),
    "PreviewInvoice": _by_org(pb.PreviewInvoiceRequest),
    "GetBillingSummary": _by_org(pb.GetBillingSummaryRequest),
    "RunBillingCycle": run_billing_cycle(),
    "VoidInvoice": void_invoice(),
    "ApplyPayment": apply_payment(),
    "GetCreditBalance": _by_org(pb.GetCreditBalanceRequest),
    "ListCreditNotes": list_credit_notes(),
    "SetTaxRate": set_tax_rate(),
    "ListEvents": list_events(),
    "UpsertPlan": upsert_plan(),
    "SetMeterPrice": set_meter_price(),
    "ListAuditEntries": list_audit_entries(),
}
# The RPCs that never write, whatever they answer.
READS = {
    "ListPlans", "GetSubscription", "ListInvoices", "GetInvoice", "GetInvoicePdf",
    "PreviewInvoice", "GetBillingSummary", "GetCreditBalance", "ListCreditNotes", "ListEvents",
    "ListAuditEntries",
}  # fmt: skip

# -- the SPEC §11 oracle ---------------------------------------------------------------------

_UUID_FIELDS = ("organization_id", "invoice_id", "payment_id")
_TIME_FIELDS = ("start_time", "effective_time", "as_of", "paid_at")


def bad_decimal(text: str, places: int, *, required: bool = False, maximum: int = 10**9) -> bool:
    """A decimal string SPEC §11 refuses: over 40 characters, not a number, negative, too many
    places, too large. Text it leaves open (" 1", "1e3") is not judged."""
    if not text:
        return required
    if len(text) > 40 or "\x00" in text:
        return True
    try:
        number = Decimal(text)
    except InvalidOperation:
        return True
    if not number.is_finite() or number < 0:
        return True
    with localcontext() as exact:
        exact.prec = 100  # normalize() rounds to the context's precision
        exponent = number.normalize(exact).as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent > places or number > maximum


def refusals(method: str, request: Message) -> list[str]:
    """The fields of `request` SPEC §11 refuses whatever the state; non-empty means the
    request must fail. Deliberately partial (the tables of test_bad_input.py are exact)."""
    fields = {name: value for name, value in _set_fields(request)}
    found = [name for name in _UUID_FIELDS if name in fields and _bad_id(method, fields[name])]
    found += [name for name in _TIME_FIELDS if name in fields and bad_instant(fields[name])]
    if not 0 <= fields.get("page_size", 0) <= 1000:
        found.append("page_size")
    if fields.get("page_token"):
        found.append("page_token")  # no token the fuzz sends was issued by the service
    if fields.get("request_id") and bad_key(fields["request_id"]):
        found.append("request_id")
    if "tier" in fields and not 1 <= fields["tier"] <= 4:
        found.append("tier")
    if "billing_cycle" in fields and not 1 <= fields["billing_cycle"] <= 3:
        found.append("billing_cycle")
    if bad_decimal(fields.get("custom_price_per_month", ""), 2):
        found.append("custom_price_per_month")
    found += _limit_refusals(fields.get("custom_limits", []))
    if "tax_rate" in fields and bad_decimal(fields["tax_rate"], 4, required=True, maximum=1):
        found.append("tax_rate")
    if "amount" in fields and bad_decimal(fields["amount"], 3, required=True, maximum=10**12):
        found.append("amount")
    types = fields.get("types", [])
    if len(types) > 20 or any(not 0 < len(t) <= 64 for t in types):
        found.append("types")
    if "plan" in fields:
        plan = fields["plan"]
        if not 1 <= plan.tier <= 4:
            found.append("plan.tier")
        found += _limit_refusals(plan.limits)
    if isinstance(request, pb.UpsertPlanRequest) and "plan" not in fields:
        found.append("plan")
    return found


def _set_fields(request: Message) -> list[tuple[str, Any]]:
    """Every scalar and repeated field, and the message fields that are set."""
    found = []
    for field in request.DESCRIPTOR.fields:
        try:
            present = field.message_type is None or request.HasField(field.name)
        except ValueError:  # a repeated field: always there, maybe empty
            present = True
        if present:
            found.append((field.name, getattr(request, field.name)))
    return found


def _bad_id(method: str, value: str) -> bool:
    if value == ORG_INVOICE or (method == "ListAuditEntries" and not value):
        return False
    return bad_uuid(value)


def _limit_refusals(limits: Any) -> list[str]:
    found: list[str] = []
    seen: set[int] = set()
    if len(limits) > 32:
        found.append("limits")
    for limit in limits:
        if not 1 <= limit.usage_type <= 9 or limit.usage_type in seen:
            found.append("limits.usage_type")
        seen.add(limit.usage_type)
        if bad_quantity(limit.max, empty_ok=True):
            found.append("limits.max")
    return found
