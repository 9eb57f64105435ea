"""Bad input to every SubscriptionService RPC (SPEC §11), through the real servers on both
databases: each case answers its exact status, ErrorInfo reason and BadRequest field path,
never INTERNAL, and writes no row.

The cases share one pair of running services per module and database (`shared_services`):
ORG holds a starter subscription with its unpaid fee invoice, PAID_ORG one whose fee invoice
is paid. Tests that need a state of their own make organisations of their own.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from taskforge.common.v1 import common_pb2
from taskforge.subscriptions.v1 import invoice_pb2, plan_pb2
from taskforge.subscriptions.v1 import subscription_service_pb2 as pb
from taskforge_subscriptions.transport.servicer import METHOD_SCOPES, SERVICE_NAME
from tests.subscriptions.integration.calls import (
    NOBODY,
    ORG,
    START,
    Code,
    changed_tables,
    fresh_org,
    outcome,
    raw_channel,
    refused,
    snapshot,
    subscribe,
)
from tests.subscriptions.service_client import Metadata, ServiceDatabases, Services
from tests.subscriptions.strategies import string_paths, utf8_breaking, with_nested_string

pytest_plugins = ["tests.subscriptions.integration.served"]

IA, NF, AE, FP = (
    Code.INVALID_ARGUMENT,
    Code.NOT_FOUND,
    Code.ALREADY_EXISTS,
    Code.FAILED_PRECONDITION,
)
STARTER, PRO, CUSTOM = common_pb2.TIER_STARTER, common_pb2.TIER_PRO, common_pb2.TIER_CUSTOM
MONTHLY = common_pb2.BILLING_CYCLE_MONTHLY
JOBS, API = common_pb2.USAGE_TYPE_JOB_EXECUTION, common_pb2.USAGE_TYPE_API_CALL
PAID_ORG = "0e5b7c3a-2d4f-4a6b-8c9d-0e1f2a3b4c05"
PAYMENT = "7b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d06"
ANY_UUID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c07"


def ts(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


# SPEC §11's Timestamp bounds and what lies beyond them.
YEAR_ONE = ts(-62135596800)
YEAR_9999 = ts(253402300799, 999_999_999)
YEAR_2100 = ts(4102444800)
BEFORE_2000 = ts(946684799)
NEGATIVE_NANOS = ts(1772323200, -1)
NANOS_TOO_MANY = ts(1772323200, 1_000_000_000)
BAD_INSTANTS = {
    "0001-01-01": YEAR_ONE,
    "9999-12-31": YEAR_9999,
    "2100-01-01": YEAR_2100,
    "1999-12-31": BEFORE_2000,
    "nanos -1": NEGATIVE_NANOS,
    "nanos 1e9": NANOS_TOO_MANY,
}
BAD_PRICES = {
    "3 decimals": "1.005",
    "41 characters": "0" * 37 + "1.00",
    "negative": "-1.00",
    "NaN": "NaN",
    "1e3": "1e3",
    "Infinity": "Infinity",
    "comma": "1,00",
    "beyond 1e9": "1000000000.01",
}
BAD_REQUEST_IDS = {
    "256 characters": "r" * 256,
    "NUL": "r\x00",
    "newline": "r\nx",
    "escape": "\x1b[31m",
    "blank": "   ",
}


@dataclass(frozen=True)
class World:
    invoice_id: str  # ORG's fee invoice: sent, 31.90 due
    paid_invoice_id: str  # PAID_ORG's fee invoice, paid


@dataclass(frozen=True)
class Case:
    method: str
    request: Callable[[World], Message]
    expected: tuple[Code, str, tuple[str, ...]]
    operator: bool = False  # sent with an operator's token (else ORG's customer's)
    defect: str = ""  # the service answers otherwise: a strict xfail with this text


def invalid(field: str) -> tuple[Code, str, tuple[str, ...]]:
    return IA, "INVALID_FIELD", (field,)


def create(**fields: Any) -> Callable[[World], Message]:
    values: dict[str, Any] = {
        "organization_id": NOBODY,
        "tier": STARTER,
        "billing_cycle": MONTHLY,
        "auto_renew": True,
    }
    values.update(fields)
    return lambda w: pb.CreateSubscriptionRequest(**values)


def custom_create(**fields: Any) -> Callable[[World], Message]:
    return create(tier=CUSTOM, custom_price_per_month="500.00", **fields)


def change(**fields: Any) -> Callable[[World], Message]:
    values: dict[str, Any] = {"organization_id": ORG, "tier": PRO}
    values.update(fields)
    return lambda w: pb.ChangeTierRequest(**values)


def limit(usage_type: int, maximum: str = "10") -> common_pb2.Limit:
    return common_pb2.Limit(usage_type=cast(Any, usage_type), max=maximum)


def plan(**fields: Any) -> Callable[[World], Message]:
    values: dict[str, Any] = {"tier": PRO, "price_per_month": "99.00", "currency_code": "USD"}
    values.update(fields)
    return lambda w: pb.UpsertPlanRequest(plan=plan_pb2.Plan(**values))


def meter_price(tier: int = PRO, effective_time: Timestamp | None = None, **price: Any) -> Any:
    values: dict[str, Any] = {"usage_type": API, "unit_price": "0.00002"}
    values.update(price)
    return lambda w: pb.SetMeterPriceRequest(
        tier=cast(Any, tier), price=plan_pb2.PlanPrice(**values), effective_time=effective_time
    )


def by_org(message: type[Message], **fields: Any) -> Callable[[World], Message]:
    values: dict[str, Any] = {"organization_id": ORG}
    values.update(fields)
    return lambda w: message(**values)


def payment(**fields: Any) -> Callable[[World], Message]:
    def build(w: World) -> Message:
        values: dict[str, Any] = {
            "invoice_id": w.invoice_id,
            "payment_id": PAYMENT,
            "amount": "31.90",
        }
        values.update(fields)
        return pb.ApplyPaymentRequest(**values)

    return build


ORG_ID_RPCS: dict[str, type[Message]] = {
    "GetSubscription": pb.GetSubscriptionRequest,
    "ChangeTier": pb.ChangeTierRequest,
    "CancelSubscription": pb.CancelSubscriptionRequest,
    "ListInvoices": pb.ListInvoicesRequest,
    "PreviewInvoice": pb.PreviewInvoiceRequest,
    "GetBillingSummary": pb.GetBillingSummaryRequest,
    "GetCreditBalance": pb.GetCreditBalanceRequest,
    "ListCreditNotes": pb.ListCreditNotesRequest,
    "SetTaxRate": pb.SetTaxRateRequest,
    "ListEvents": pb.ListEventsRequest,
}
ADMIN_RPCS = {
    path.rsplit("/", 1)[1] for path, scope in METHOD_SCOPES.items() if scope == "billing:admin"
}
NOT_UUIDS = {
    "empty": "",
    "not a uuid": "not-a-uuid",
    "hyphenless": ORG.replace("-", "") + "0000",
    "braces": "{" + ORG[1:-1] + "}",
    "NUL": ORG[:-1] + "\x00",
    "100k characters": "9" * 100_000,
}

CASES: dict[str, Case] = {}
# organization_id of every RPC that takes one, and the invoice ids.
for _method, _message in ORG_ID_RPCS.items():
    for _name, _value in NOT_UUIDS.items():
        _fields: dict[str, Any] = {"organization_id": _value}
        if _method == "ChangeTier":
            _fields["tier"] = PRO
        if _method == "SetTaxRate":
            _fields["tax_rate"] = "0.1"
        CASES[f"{_method}: organization_id {_name}"] = Case(
            _method,
            by_org(_message, **_fields),
            invalid("organization_id"),
            operator=_method in ADMIN_RPCS,
        )
for _method, _message in {
    "GetInvoice": pb.GetInvoiceRequest,
    "GetInvoicePdf": pb.GetInvoicePdfRequest,
    "VoidInvoice": pb.VoidInvoiceRequest,
}.items():
    for _name, _value in NOT_UUIDS.items():
        CASES[f"{_method}: invoice_id {_name}"] = Case(
            _method,
            (lambda m, v: lambda w: m(invoice_id=v))(_message, _value),
            invalid("invoice_id"),
            operator=_method in ADMIN_RPCS,
        )
    CASES[f"{_method}: no such invoice"] = Case(
        _method,
        (lambda m: lambda w: m(invoice_id=ANY_UUID))(_message),
        (NF, "NOT_FOUND", ()),
        operator=_method in ADMIN_RPCS,
    )
for _name, _stamp in BAD_INSTANTS.items():
    CASES[f"CreateSubscription: start_time {_name}"] = Case(
        "CreateSubscription", create(start_time=_stamp), invalid("start_time"), operator=True
    )
    CASES[f"ChangeTier: effective_time {_name}"] = Case(
        "ChangeTier", change(effective_time=_stamp), invalid("effective_time"), operator=True
    )
    CASES[f"CancelSubscription: effective_time {_name}"] = Case(
        "CancelSubscription",
        by_org(pb.CancelSubscriptionRequest, effective_time=_stamp),
        invalid("effective_time"),
        operator=True,
    )
    CASES[f"RunBillingCycle: as_of {_name}"] = Case(
        "RunBillingCycle",
        (lambda s: lambda w: pb.RunBillingCycleRequest(as_of=s))(_stamp),
        invalid("as_of"),
        operator=True,
    )
    CASES[f"ApplyPayment: paid_at {_name}"] = Case(
        "ApplyPayment", payment(paid_at=_stamp), invalid("paid_at"), operator=True
    )
    CASES[f"SetMeterPrice: effective_time {_name}"] = Case(
        "SetMeterPrice", meter_price(effective_time=_stamp), invalid("effective_time"), True
    )
for _name, _price in BAD_PRICES.items():
    CASES[f"CreateSubscription: custom_price_per_month {_name}"] = Case(
        "CreateSubscription",
        create(tier=CUSTOM, custom_price_per_month=_price),
        invalid("custom_price_per_month"),
        operator=True,
    )
    CASES[f"ChangeTier: custom_price_per_month {_name}"] = Case(
        "ChangeTier",
        change(tier=CUSTOM, custom_price_per_month=_price),
        invalid("custom_price_per_month"),
        operator=True,
    )
    CASES[f"UpsertPlan: price_per_month {_name}"] = Case(
        "UpsertPlan", plan(price_per_month=_price), invalid("plan.price_per_month"), True
    )
for _name, _request_id in BAD_REQUEST_IDS.items():
    CASES[f"CreateSubscription: request_id {_name}"] = Case(
        "CreateSubscription", create(request_id=_request_id), invalid("request_id")
    )
    CASES[f"ChangeTier: request_id {_name}"] = Case(
        "ChangeTier", change(request_id=_request_id), invalid("request_id")
    )
    CASES[f"CancelSubscription: request_id {_name}"] = Case(
        "CancelSubscription",
        by_org(pb.CancelSubscriptionRequest, at_period_end=True, request_id=_request_id),
        invalid("request_id"),
    )
    CASES[f"RunBillingCycle: request_id {_name}"] = Case(
        "RunBillingCycle",
        (lambda r: lambda w: pb.RunBillingCycleRequest(request_id=r))(_request_id),
        invalid("request_id"),
        operator=True,
    )
for _method, _message in {
    "ListInvoices": pb.ListInvoicesRequest,
    "ListCreditNotes": pb.ListCreditNotesRequest,
    "ListEvents": pb.ListEventsRequest,
    "ListAuditEntries": pb.ListAuditEntriesRequest,
}.items():
    _admin = _method in ADMIN_RPCS
    for _size in (-1, 1001, -(2**31), 2**31 - 1):
        CASES[f"{_method}: page_size {_size}"] = Case(
            _method, by_org(_message, page_size=_size), invalid("page_size"), _admin
        )
    for _name, _token in {
        "garbage": "garbage",
        "right length": "A" * 44,
        "not base64": "~" * 44,
        "100k characters": "A" * 100_000,
        "NUL": "\x00" * 44,
    }.items():
        CASES[f"{_method}: page_token {_name}"] = Case(
            _method, by_org(_message, page_token=_token), invalid("page_token"), _admin
        )

CASES.update(
    {
        # CreateSubscription
        "CreateSubscription: tier unspecified": Case(
            "CreateSubscription", create(tier=0), invalid("tier")
        ),
        "CreateSubscription: unknown tier": Case(
            "CreateSubscription", create(tier=99), invalid("tier")
        ),
        "CreateSubscription: negative tier": Case(
            "CreateSubscription", create(tier=-1), invalid("tier")
        ),
        "CreateSubscription: billing_cycle unspecified": Case(
            "CreateSubscription", create(billing_cycle=0), invalid("billing_cycle")
        ),
        "CreateSubscription: unknown billing_cycle": Case(
            "CreateSubscription", create(billing_cycle=4), invalid("billing_cycle")
        ),
        "CreateSubscription: custom tier without a price": Case(
            "CreateSubscription", create(tier=CUSTOM), invalid("custom_price_per_month"), True
        ),
        "CreateSubscription: a custom price on a starter tier": Case(
            "CreateSubscription",
            create(custom_price_per_month="10.00"),
            invalid("custom_price_per_month"),
            True,
        ),
        "CreateSubscription: custom limits on a starter tier": Case(
            "CreateSubscription",
            create(custom_limits=[limit(JOBS)]),
            invalid("custom_limits"),
            True,
        ),
        "CreateSubscription: a duplicate limit": Case(
            "CreateSubscription",
            custom_create(custom_limits=[limit(JOBS), limit(API), limit(JOBS, "5")]),
            invalid("custom_limits[2].usage_type"),
            True,
        ),
        "CreateSubscription: a duplicate unlimited limit": Case(
            "CreateSubscription",
            custom_create(custom_limits=[limit(JOBS, ""), limit(JOBS, "")]),
            invalid("custom_limits[1].usage_type"),
            True,
        ),
        "CreateSubscription: an unknown usage type": Case(
            "CreateSubscription",
            custom_create(custom_limits=[limit(99)]),
            invalid("custom_limits[0].usage_type"),
            True,
        ),
        "CreateSubscription: a limit of no usage type": Case(
            "CreateSubscription",
            custom_create(custom_limits=[limit(0)]),
            invalid("custom_limits[0].usage_type"),
            True,
        ),
        "CreateSubscription: a limit NaN": Case(
            "CreateSubscription",
            custom_create(custom_limits=[limit(JOBS, "NaN")]),
            invalid("custom_limits[0].max"),
            True,
        ),
        "CreateSubscription: a negative limit": Case(
            "CreateSubscription",
            custom_create(custom_limits=[limit(API, "-1")]),
            invalid("custom_limits[0].max"),
            True,
        ),
        "CreateSubscription: 33 limits": Case(
            "CreateSubscription",
            custom_create(custom_limits=[limit(JOBS)] * 33),
            invalid("custom_limits"),
            True,
        ),
        "CreateSubscription: a second live subscription": Case(
            "CreateSubscription",
            create(organization_id=ORG),
            (AE, "SUBSCRIPTION_EXISTS", ()),
        ),
        # ChangeTier
        "ChangeTier: tier unspecified": Case("ChangeTier", change(tier=0), invalid("tier")),
        "ChangeTier: unknown tier": Case("ChangeTier", change(tier=5), invalid("tier")),
        "ChangeTier: the same tier": Case(
            "ChangeTier", change(tier=STARTER), (FP, "INVALID_STATE_TRANSITION", ())
        ),
        "ChangeTier: no subscription": Case(
            "ChangeTier", change(organization_id=NOBODY), (NF, "NOT_FOUND", ())
        ),
        "ChangeTier: a custom price on pro": Case(
            "ChangeTier",
            change(custom_price_per_month="10.00"),
            invalid("custom_price_per_month"),
            True,
        ),
        "ChangeTier: a duplicate limit": Case(
            "ChangeTier",
            change(
                tier=CUSTOM,
                custom_price_per_month="10.00",
                custom_limits=[limit(API), limit(API)],
            ),
            invalid("custom_limits[1].usage_type"),
            True,
        ),
        "ChangeTier: effective_time before the period": Case(
            "ChangeTier",
            change(effective_time=ts(int((START - timedelta(days=1)).timestamp()))),
            invalid("effective_time"),
            True,
        ),
        "ChangeTier: effective_time after the period": Case(
            "ChangeTier",
            change(effective_time=ts(int(datetime(2026, 4, 2, tzinfo=UTC).timestamp()))),
            (FP, "INVALID_STATE_TRANSITION", ()),
            True,
        ),
        # CancelSubscription
        "CancelSubscription: effective_time at period end": Case(
            "CancelSubscription",
            by_org(
                pb.CancelSubscriptionRequest,
                at_period_end=True,
                effective_time=ts(int(START.timestamp())),
            ),
            invalid("effective_time"),
            True,
        ),
        "CancelSubscription: no subscription": Case(
            "CancelSubscription",
            by_org(pb.CancelSubscriptionRequest, organization_id=NOBODY, at_period_end=True),
            (NF, "NOT_FOUND", ()),
        ),
        # ListInvoices
        "ListInvoices: unknown status": Case(
            "ListInvoices", by_org(pb.ListInvoicesRequest, status=99), invalid("status")
        ),
        "ListInvoices: negative status": Case(
            "ListInvoices", by_org(pb.ListInvoicesRequest, status=-1), invalid("status")
        ),
        # Reads of an organisation without a subscription
        "GetSubscription: no subscription": Case(
            "GetSubscription",
            by_org(pb.GetSubscriptionRequest, organization_id=NOBODY),
            (NF, "NOT_FOUND", ()),
        ),
        "PreviewInvoice: no subscription": Case(
            "PreviewInvoice",
            by_org(pb.PreviewInvoiceRequest, organization_id=NOBODY),
            (NF, "NOT_FOUND", ()),
        ),
        "GetBillingSummary: no subscription": Case(
            "GetBillingSummary",
            by_org(pb.GetBillingSummaryRequest, organization_id=NOBODY),
            (NF, "NOT_FOUND", ()),
        ),
        # VoidInvoice
        "VoidInvoice: a paid invoice": Case(
            "VoidInvoice",
            lambda w: pb.VoidInvoiceRequest(invoice_id=w.paid_invoice_id),
            (FP, "INVALID_STATE_TRANSITION", ()),
            True,
        ),
        "VoidInvoice: a reason of 501 characters": Case(
            "VoidInvoice",
            lambda w: pb.VoidInvoiceRequest(invoice_id=w.invoice_id, reason="r" * 501),
            invalid("reason"),
            True,
        ),
        # ApplyPayment
        "ApplyPayment: an amount short of the amount due": Case(
            "ApplyPayment", payment(amount="31.89"), (FP, "PAYMENT_MISMATCH", ()), True
        ),
        "ApplyPayment: an amount above the amount due": Case(
            "ApplyPayment", payment(amount="31.91"), (FP, "PAYMENT_MISMATCH", ()), True
        ),
        "ApplyPayment: amount NaN": Case(
            "ApplyPayment", payment(amount="NaN"), invalid("amount"), True
        ),
        "ApplyPayment: amount negative": Case(
            "ApplyPayment", payment(amount="-31.90"), invalid("amount"), True
        ),
        "ApplyPayment: amount empty": Case(
            "ApplyPayment", payment(amount=""), invalid("amount"), True
        ),
        "ApplyPayment: amount 41 characters": Case(
            "ApplyPayment", payment(amount="0" * 36 + "31.90"), invalid("amount"), True
        ),
        "ApplyPayment: payment_id not a uuid": Case(
            "ApplyPayment", payment(payment_id="pay-1"), invalid("payment_id"), True
        ),
        "ApplyPayment: invoice_id not a uuid": Case(
            "ApplyPayment", payment(invoice_id="INV-2026-000001"), invalid("invoice_id"), True
        ),
        "ApplyPayment: no such invoice": Case(
            "ApplyPayment", payment(invoice_id=ANY_UUID), (NF, "NOT_FOUND", ()), True
        ),
        "ApplyPayment: a paid invoice, another payment": Case(
            "ApplyPayment",
            lambda w: pb.ApplyPaymentRequest(
                invoice_id=w.paid_invoice_id, payment_id=ANY_UUID, amount="31.90"
            ),
            (FP, "INVALID_STATE_TRANSITION", ()),
            True,
        ),
        # SetTaxRate
        **{
            f"SetTaxRate: tax_rate {text!r}": Case(
                "SetTaxRate",
                by_org(pb.SetTaxRateRequest, tax_rate=text),
                invalid("tax_rate"),
                True,
            )
            for text in ["1.5", "-0.1", "NaN", "", "0.12345", "1.0001", "1e-1", "9" * 41]
        },
        # ListEvents
        "ListEvents: 21 types": Case(
            "ListEvents",
            by_org(pb.ListEventsRequest, types=[f"t{i}" for i in range(21)]),
            invalid("types"),
        ),
        "ListEvents: an empty type": Case(
            "ListEvents",
            by_org(pb.ListEventsRequest, types=["invoice.paid", ""]),
            invalid("types[1]"),
        ),
        "ListEvents: a type of 65 characters": Case(
            "ListEvents", by_org(pb.ListEventsRequest, types=["t" * 65]), invalid("types[0]")
        ),
        "ListEvents: a type with a control character": Case(
            "ListEvents", by_org(pb.ListEventsRequest, types=["invoice\x00"]), invalid("types[0]")
        ),
        # UpsertPlan
        "UpsertPlan: tier unspecified": Case(
            "UpsertPlan", plan(tier=0), invalid("plan.tier"), True
        ),
        "UpsertPlan: unknown tier": Case("UpsertPlan", plan(tier=9), invalid("plan.tier"), True),
        "UpsertPlan: unknown currency": Case(
            "UpsertPlan", plan(currency_code="XXX"), invalid("plan.currency_code"), True
        ),
        "UpsertPlan: pro without a price": Case(
            "UpsertPlan", plan(price_per_month=""), invalid("plan.price_per_month"), True
        ),
        "UpsertPlan: custom with a price": Case(
            "UpsertPlan", plan(tier=CUSTOM), invalid("plan.price_per_month"), True
        ),
        "UpsertPlan: a duplicate limit": Case(
            "UpsertPlan",
            plan(limits=[limit(JOBS), limit(JOBS, "")]),
            invalid("plan.limits[1].usage_type"),
            True,
        ),
        "UpsertPlan: an unknown usage type": Case(
            "UpsertPlan", plan(limits=[limit(10)]), invalid("plan.limits[0].usage_type"), True
        ),
        "UpsertPlan: a limit of 7 decimals": Case(
            "UpsertPlan",
            plan(limits=[limit(JOBS, "1.0000001")]),
            invalid("plan.limits[0].max"),
            True,
        ),
        # SetMeterPrice
        "SetMeterPrice: tier unspecified": Case(
            "SetMeterPrice", meter_price(tier=0), invalid("tier"), True
        ),
        "SetMeterPrice: unknown tier": Case(
            "SetMeterPrice", meter_price(tier=99), invalid("tier"), True
        ),
        "SetMeterPrice: no usage type": Case(
            "SetMeterPrice", meter_price(usage_type=0), invalid("price.usage_type"), True
        ),
        "SetMeterPrice: unknown usage type": Case(
            "SetMeterPrice", meter_price(usage_type=42), invalid("price.usage_type"), True
        ),
        "SetMeterPrice: unknown charge model": Case(
            "SetMeterPrice", meter_price(model=7), invalid("price.model"), True
        ),
        "SetMeterPrice: negative unit price": Case(
            "SetMeterPrice", meter_price(unit_price="-0.1"), invalid("price.unit_price"), True
        ),
        "SetMeterPrice: unit price NaN": Case(
            "SetMeterPrice", meter_price(unit_price="NaN"), invalid("price.unit_price"), True
        ),
        "SetMeterPrice: unit price of 13 decimals": Case(
            "SetMeterPrice",
            meter_price(unit_price="0.0000000000001"),
            invalid("price.unit_price"),
            True,
        ),
        "SetMeterPrice: included negative": Case(
            "SetMeterPrice", meter_price(included="-1"), invalid("price.included"), True
        ),
        "SetMeterPrice: 33 bands": Case(
            "SetMeterPrice",
            meter_price(bands=[plan_pb2.PriceBand(unit_price="0.1")] * 33),
            invalid("price.bands"),
            True,
        ),
        "SetMeterPrice: a band's up_to NaN": Case(
            "SetMeterPrice",
            meter_price(
                model=plan_pb2.CHARGE_MODEL_GRADUATED,
                bands=[plan_pb2.PriceBand(up_to="NaN", unit_price="0.1")],
            ),
            invalid("price.bands[0].up_to"),
            True,
        ),
        # ListAuditEntries
        "ListAuditEntries: organization_id not a uuid": Case(
            "ListAuditEntries",
            lambda w: pb.ListAuditEntriesRequest(organization_id="org-1"),
            invalid("organization_id"),
            True,
        ),
        "ListAuditEntries: entity_id of 65 characters": Case(
            "ListAuditEntries",
            lambda w: pb.ListAuditEntriesRequest(entity_id="e" * 65),
            invalid("entity_id"),
            True,
        ),
        "ListAuditEntries: entity_id with a control character": Case(
            "ListAuditEntries",
            lambda w: pb.ListAuditEntriesRequest(entity_id="e\n"),
            invalid("entity_id"),
            True,
        ),
    }
)


def test_the_table_has_bad_input_for_every_rpc_but_list_plans() -> None:
    """ListPlans takes no field; every other RPC has cases here."""
    methods = {m.name for m in pb.DESCRIPTOR.services_by_name["SubscriptionService"].methods}
    assert {case.method for case in CASES.values()} == methods - {"ListPlans"}


@pytest.fixture(scope="module")
async def world(shared_services: Services) -> World:
    services = shared_services
    mine = await subscribe(services, ORG)
    paid = await subscribe(services, PAID_ORG)
    await services.subscriptions.ApplyPayment(
        pb.ApplyPaymentRequest(
            invoice_id=paid.invoice.id, payment_id=PAYMENT, amount=paid.invoice.amount_due
        ),
        metadata=services.operator(),
    )
    await services.relay()
    return World(mine.invoice.id, paid.invoice.id)


def caller(services: Services, case: Case, request: Message) -> Metadata:
    """An operator, or the customer of the organisation the request is about (ORG when its
    organization_id is not one)."""
    if case.operator:
        return services.operator()
    about = getattr(request, "organization_id", ORG)
    return services.customer(NOBODY if about == NOBODY else ORG)


def _params() -> list[Any]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=case.defect))
        if case.defect
        else name
        for name, case in CASES.items()
    ]


@pytest.mark.parametrize("name", _params())
async def test_bad_input_answers_its_status_reason_and_field_and_writes_nothing(
    shared_services: Services, databases: ServiceDatabases, world: World, name: str
) -> None:
    case = CASES[name]
    services = shared_services
    before = await snapshot(databases.subscriptions)
    stub_method = getattr(services.subscriptions, case.method)
    request = case.request(world)
    answer = await refused(stub_method(request, metadata=caller(services, case, request)))
    assert answer.summary == case.expected, answer.details
    assert answer.details, "a message a person can act on"
    assert changed_tables(before, await snapshot(databases.subscriptions)) == []


# -- what needs a state of its own -----------------------------------------------------------


async def test_a_request_id_reused_with_another_payload_is_already_exists(
    shared_services: Services, databases: ServiceDatabases
) -> None:
    services = shared_services
    organization = fresh_org()
    first = await subscribe(services, organization, request_id="create-1")
    again = await subscribe(services, organization, request_id="create-1")
    assert again == first  # a retry answers the same result
    before = await snapshot(databases.subscriptions)
    answer = await refused(subscribe(services, organization, tier=PRO, request_id="create-1"))
    assert answer.summary == (AE, "IDEMPOTENCY_KEY_REUSED", ())
    assert changed_tables(before, await snapshot(databases.subscriptions)) == []

    request = pb.ChangeTierRequest(organization_id=organization, tier=PRO, request_id="up-1")
    token = services.customer(organization)
    await services.subscriptions.ChangeTier(request, metadata=token)
    before = await snapshot(databases.subscriptions)
    other = pb.ChangeTierRequest(
        organization_id=organization, tier=common_pb2.TIER_ENTERPRISE, request_id="up-1"
    )
    answer = await refused(services.subscriptions.ChangeTier(other, metadata=token))
    assert answer.summary == (AE, "IDEMPOTENCY_KEY_REUSED", ())
    assert changed_tables(before, await snapshot(databases.subscriptions)) == []


async def test_a_tampered_or_foreign_page_token_is_invalid_argument(
    shared_services: Services, databases: ServiceDatabases, world: World
) -> None:
    services = shared_services
    token = services.customer(ORG)
    first = await services.subscriptions.ListEvents(
        pb.ListEventsRequest(organization_id=ORG, page_size=1), metadata=token
    )
    issued = first.next_page_token
    assert issued
    raw = bytearray(base64.urlsafe_b64decode(issued))
    tampered = []
    for index in (0, 1, 8, 20, len(raw) - 1):
        edited = bytearray(raw)
        edited[index] ^= 0x01
        tampered.append(base64.urlsafe_b64encode(bytes(edited)).decode())
    requests = [pb.ListEventsRequest(organization_id=ORG, page_token=t) for t in tampered]
    requests += [
        # A token pages only the query that issued it: another filter, another RPC.
        pb.ListEventsRequest(organization_id=ORG, types=["invoice.paid"], page_token=issued),
    ]
    before = await snapshot(databases.subscriptions)
    for request in requests:
        answer = await refused(services.subscriptions.ListEvents(request, metadata=token))
        assert answer.summary == invalid("page_token"), request
    for call in (
        services.subscriptions.ListInvoices(
            pb.ListInvoicesRequest(organization_id=ORG, page_token=issued), metadata=token
        ),
        services.subscriptions.ListCreditNotes(
            pb.ListCreditNotesRequest(organization_id=ORG, page_token=issued), metadata=token
        ),
        services.subscriptions.ListAuditEntries(
            pb.ListAuditEntriesRequest(organization_id=ORG, page_token=issued),
            metadata=services.operator(),
        ),
    ):
        assert (await refused(call)).summary == invalid("page_token")
    assert changed_tables(before, await snapshot(databases.subscriptions)) == []


async def test_a_payment_applied_twice_pays_once_and_a_second_one_is_refused(
    shared_services: Services, databases: ServiceDatabases
) -> None:
    services = shared_services
    created = await subscribe(services, fresh_org())
    request = pb.ApplyPaymentRequest(
        invoice_id=created.invoice.id, payment_id=str(fresh_org()), amount="31.90"
    )
    paid = await services.subscriptions.ApplyPayment(request, metadata=services.operator())
    before = await snapshot(databases.subscriptions)
    again = await services.subscriptions.ApplyPayment(request, metadata=services.operator())
    assert again.invoice == paid.invoice
    assert changed_tables(before, await snapshot(databases.subscriptions)) == []
    second = pb.ApplyPaymentRequest(
        invoice_id=created.invoice.id, payment_id=str(fresh_org()), amount="31.90"
    )
    answer = await refused(
        services.subscriptions.ApplyPayment(second, metadata=services.operator())
    )
    assert answer.summary == (FP, "INVALID_STATE_TRANSITION", ())
    assert changed_tables(before, await snapshot(databases.subscriptions)) == []


# -- undecodable requests --------------------------------------------------------------------

RESPONSES = {
    m.name: m.output_type.name
    for m in pb.DESCRIPTOR.services_by_name["SubscriptionService"].methods
}


def undecodable(method: str) -> dict[str, bytes]:
    """Bytes that are no `method` request: a truncated field, a length beyond the end, and
    (for the requests with a string field) invalid UTF-8 in each string field."""
    request_type = getattr(pb, f"{method}Request")
    found = {
        "truncated": b"\x0a\x10abc",
        "length beyond the end": b"\x12\xff\xff\xff\xff\x07",
        "a lone tag": b"\x0a",
    }
    for path in string_paths(request_type()):
        for name, bad in utf8_breaking().items():
            found[f"{name} at {path}"] = with_nested_string(path, bad)
    return found


@pytest.mark.parametrize("method", list(RESPONSES))
async def test_undecodable_bytes_are_invalid_argument_with_a_token_else_unauthenticated(
    shared_services: Services, databases: ServiceDatabases, method: str
) -> None:
    services = shared_services
    raw = raw_channel(services).unary_unary(f"/{SERVICE_NAME}/{method}", None, None)
    rightful = services.operator() if method in ADMIN_RPCS else services.customer(ORG)
    before = await snapshot(databases.subscriptions)
    for name, payload in undecodable(method).items():
        _, with_token = await outcome(raw(payload, metadata=rightful))
        assert with_token is not None, name
        assert with_token.summary[:2] == (IA, "UNDECODABLE_REQUEST"), (name, with_token)
        _, without = await outcome(raw(payload, metadata=()))
        assert without is not None, name
        assert without.code == Code.UNAUTHENTICATED, (name, without)
    assert changed_tables(before, await snapshot(databases.subscriptions)) == []


async def test_invoices_in_the_wrong_state_are_failed_precondition(
    shared_services: Services, databases: ServiceDatabases
) -> None:
    """Void twice, pay a void invoice, void or pay a period-end draft (SPEC §4's lifecycle)."""
    services = shared_services
    operator = services.operator()
    voided = (await subscribe(services, fresh_org())).invoice
    await services.subscriptions.VoidInvoice(
        pb.VoidInvoiceRequest(invoice_id=voided.id), metadata=operator
    )
    organization = fresh_org()
    await subscribe(services, organization)
    await services.relay()
    await services.subscriptions.CancelSubscription(
        pb.CancelSubscriptionRequest(organization_id=organization, at_period_end=False),
        metadata=operator,
    )
    listed = await services.subscriptions.ListInvoices(
        pb.ListInvoicesRequest(
            organization_id=organization, status=invoice_pb2.INVOICE_STATUS_DRAFT
        ),
        metadata=operator,
    )
    [draft] = listed.invoices  # the period-end invoice of the immediate cancellation
    before = await snapshot(databases.subscriptions)
    for call in (
        services.subscriptions.VoidInvoice(
            pb.VoidInvoiceRequest(invoice_id=voided.id), metadata=operator
        ),
        services.subscriptions.ApplyPayment(
            pb.ApplyPaymentRequest(invoice_id=voided.id, payment_id=ANY_UUID, amount="31.90"),
            metadata=operator,
        ),
        services.subscriptions.VoidInvoice(
            pb.VoidInvoiceRequest(invoice_id=draft.id), metadata=operator
        ),
        services.subscriptions.ApplyPayment(
            pb.ApplyPaymentRequest(
                invoice_id=draft.id, payment_id=ANY_UUID, amount=draft.amount_due
            ),
            metadata=operator,
        ),
    ):
        assert (await refused(call)).summary == (FP, "INVALID_STATE_TRANSITION", ())
    # A canceled subscription is no longer there to change or cancel.
    for gone in (
        services.subscriptions.CancelSubscription(
            pb.CancelSubscriptionRequest(organization_id=organization, at_period_end=False),
            metadata=operator,
        ),
        services.subscriptions.ChangeTier(
            pb.ChangeTierRequest(organization_id=organization, tier=PRO), metadata=operator
        ),
    ):
        assert (await refused(gone)).summary == (NF, "NOT_FOUND", ())
    assert changed_tables(before, await snapshot(databases.subscriptions)) == []


async def test_a_second_meter_price_at_the_same_instant_is_refused_not_internal(
    shared_services: Services, databases: ServiceDatabases
) -> None:
    """SetMeterPrice: at most one price per (tier, meter, instant)."""
    services = shared_services
    at = ts(int(datetime(2026, 6, 1, tzinfo=UTC).timestamp()))
    first = meter_price(tier=common_pb2.TIER_ENTERPRISE, effective_time=at, usage_type=JOBS)
    await services.subscriptions.SetMeterPrice(first(World("", "")), metadata=services.operator())
    before = await snapshot(databases.subscriptions)
    again = meter_price(
        tier=common_pb2.TIER_ENTERPRISE, effective_time=at, usage_type=JOBS, unit_price="0.5"
    )
    answer = await refused(
        services.subscriptions.SetMeterPrice(again(World("", "")), metadata=services.operator())
    )
    assert (answer.code, answer.reason) == (AE, "PRICE_EXISTS"), answer
    assert changed_tables(before, await snapshot(databases.subscriptions)) == []


async def test_values_at_the_bounds_are_accepted(shared_services: Services) -> None:
    """The other side of each bound: 255-character request ids, page_size 1,000, tax rates 0
    and 1, the first and last instants of SPEC §11's range, 40-character decimals."""
    services = shared_services
    organization = fresh_org()
    operator = services.operator()
    await services.subscriptions.SetTaxRate(
        pb.SetTaxRateRequest(organization_id=organization, tax_rate="1"), metadata=operator
    )
    await services.subscriptions.SetTaxRate(
        pb.SetTaxRateRequest(organization_id=organization, tax_rate="0.0000"), metadata=operator
    )
    created = await subscribe(
        services, organization, request_id="r" * 255, tier=CUSTOM,
        custom_price_per_month="0" * 35 + "10.00", metadata=operator,
    )  # fmt: skip
    assert created.invoice.total_amount == "10.00"  # exempt
    for request in (
        pb.ListInvoicesRequest(organization_id=organization, page_size=1000),
        pb.ListCreditNotesRequest(organization_id=organization, page_size=1000),
        pb.ListEventsRequest(organization_id=organization, page_size=1000, types=["t" * 64]),
    ):
        method = type(request).__name__.removesuffix("Request")
        await getattr(services.subscriptions, method)(request, metadata=operator)
    # The seed prices every meter from 2000-01-01 (see the xfail above): a back-dated start.
    first = await subscribe(services, fresh_org(), start_time=ts(946684800), metadata=operator)
    assert first.subscription.period_anchor == ts(946684800)
    await services.subscriptions.SetMeterPrice(
        meter_price(effective_time=ts(4102444799, 999_999_999))(World("", "")),
        metadata=operator,
    )
