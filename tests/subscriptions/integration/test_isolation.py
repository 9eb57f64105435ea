"""Who may do what (SPEC §10), for every SubscriptionService RPC, through the real servers on
both databases: no token is UNAUTHENTICATED; a token without the RPC's scope is
PERMISSION_DENIED (SCOPE_MISSING); a token bound to one organisation never reaches another's
data, by organisation id or by invoice id (NOT_FOUND or PERMISSION_DENIED, never data);
admin-only fields with a customer's token are PERMISSION_DENIED; and a refused call writes no
row. The same request with the right token then succeeds, so each refusal is the token's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from taskforge.common.v1 import common_pb2
from taskforge.subscriptions.v1 import plan_pb2
from taskforge.subscriptions.v1 import subscription_service_pb2 as pb
from taskforge_common.grpc.auth import Scope, issue_token
from taskforge_subscriptions.transport.servicer import METHOD_SCOPES, SERVICE_NAME
from tests.metering.service_client import SECRET
from tests.subscriptions.integration.calls import (
    NOBODY,
    ORG,
    OTHER_ORG,
    START,
    Code,
    changed_tables,
    fresh_org,
    outcome,
    refused,
    snapshot,
    subscribe,
)
from tests.subscriptions.service_client import Metadata, ServiceDatabases, Services

pytest_plugins = ["tests.subscriptions.integration.served"]

PRO = common_pb2.TIER_PRO
CUSTOM = common_pb2.TIER_CUSTOM
PAYMENT = "5a0e8f7c-1b2d-4e3f-9a8b-7c6d5e4f3a21"
ALL_BUT_ADMIN = [Scope.BILLING_READ, Scope.BILLING_WRITE, Scope.USAGE_WRITE, Scope.LIMITS_READ]


@dataclass(frozen=True)
class World:
    """ORG and OTHER_ORG each subscribed (starter, monthly), each with its fee invoice."""

    invoice_id: str
    other_invoice_id: str


def _stamp(instant: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(instant)
    return value


# Per RPC: a request about ORG's data that the right caller (ORG's customer, or an operator
# for billing:admin RPCs) may send; the scope-less and cross-organisation tokens must not.
REQUESTS: dict[str, Callable[[World], Message]] = {
    "ListPlans": lambda w: pb.ListPlansRequest(),
    "CreateSubscription": lambda w: pb.CreateSubscriptionRequest(
        organization_id=NOBODY,
        tier=common_pb2.TIER_STARTER,
        billing_cycle=common_pb2.BILLING_CYCLE_MONTHLY,
    ),
    "GetSubscription": lambda w: pb.GetSubscriptionRequest(organization_id=ORG),
    "ChangeTier": lambda w: pb.ChangeTierRequest(organization_id=ORG, tier=PRO),
    "CancelSubscription": lambda w: pb.CancelSubscriptionRequest(
        organization_id=ORG, at_period_end=True
    ),
    "ListInvoices": lambda w: pb.ListInvoicesRequest(organization_id=ORG),
    "GetInvoice": lambda w: pb.GetInvoiceRequest(invoice_id=w.invoice_id),
    "GetInvoicePdf": lambda w: pb.GetInvoicePdfRequest(invoice_id=w.invoice_id),
    "PreviewInvoice": lambda w: pb.PreviewInvoiceRequest(organization_id=ORG),
    "GetBillingSummary": lambda w: pb.GetBillingSummaryRequest(organization_id=ORG),
    "RunBillingCycle": lambda w: pb.RunBillingCycleRequest(),
    "VoidInvoice": lambda w: pb.VoidInvoiceRequest(invoice_id=w.invoice_id, reason="test"),
    "ApplyPayment": lambda w: pb.ApplyPaymentRequest(
        invoice_id=w.invoice_id, payment_id=PAYMENT, amount="31.90"
    ),
    "GetCreditBalance": lambda w: pb.GetCreditBalanceRequest(organization_id=ORG),
    "ListCreditNotes": lambda w: pb.ListCreditNotesRequest(organization_id=ORG),
    "SetTaxRate": lambda w: pb.SetTaxRateRequest(organization_id=ORG, tax_rate="0.05"),
    "ListEvents": lambda w: pb.ListEventsRequest(organization_id=ORG),
    "UpsertPlan": lambda w: pb.UpsertPlanRequest(
        plan=plan_pb2.Plan(tier=PRO, price_per_month="109.00", currency_code="USD")
    ),
    "SetMeterPrice": lambda w: pb.SetMeterPriceRequest(
        tier=PRO,
        price=plan_pb2.PlanPrice(usage_type=common_pb2.USAGE_TYPE_API_CALL, unit_price="0.00002"),
    ),
    "ListAuditEntries": lambda w: pb.ListAuditEntriesRequest(organization_id=ORG),
}
# RPCs that touch no organisation's data: the price book, and (for now) the billing run,
# which is checked on its own below.
NO_ORGANISATION = {"ListPlans", "UpsertPlan", "SetMeterPrice", "RunBillingCycle"}


def test_the_table_covers_every_rpc() -> None:
    methods = {m.name for m in pb.DESCRIPTOR.services_by_name["SubscriptionService"].methods}
    assert set(REQUESTS) == methods
    assert set(METHOD_SCOPES) == {f"/{SERVICE_NAME}/{method}" for method in methods}


async def world(services: Services) -> World:
    mine = await subscribe(services, ORG)
    other = await subscribe(services, OTHER_ORG)
    await services.relay()
    return World(mine.invoice.id, other.invoice.id)


def call(services: Services, method: str, request: Message, metadata: Metadata) -> Any:
    return getattr(services.subscriptions, method)(request, metadata=metadata)


def scope_of(method: str) -> Scope:
    return METHOD_SCOPES[f"/{SERVICE_NAME}/{method}"]


def rightful(services: Services, method: str) -> Metadata:
    if scope_of(method) is Scope.BILLING_ADMIN:
        return services.operator()
    return services.customer(NOBODY if method == "CreateSubscription" else ORG)


def without_scope(services: Services, method: str) -> Metadata:
    """Every scope but the RPC's (and billing:admin, which implies all)."""
    others = [scope for scope in ALL_BUT_ADMIN if scope is not scope_of(method)]
    return services.auth(others, ORG, "customer")


def other_organisation(services: Services, method: str) -> Metadata:
    """The RPC's scope, bound to OTHER_ORG."""
    return services.auth([scope_of(method)], OTHER_ORG, "intruder")


def unauthenticated(services: Services) -> dict[str, Metadata]:
    now = services.clock.now()
    everything = [scope.value for scope in Scope]
    expired = issue_token(SECRET, "late", everything, now=now - timedelta(hours=2))
    forged = issue_token("another-secret-that-is-long-enough-for-hs256", "x", everything, now=now)
    return {
        "none": (),
        "expired": (("authorization", f"Bearer {expired}"),),
        "forged": (("authorization", f"Bearer {forged}"),),
        "not bearer": (("authorization", "Basic dXNlcjpwYXNz"),),
    }


@pytest.mark.parametrize("method", list(REQUESTS))
async def test_every_rpc_refuses_the_wrong_caller_and_writes_nothing(
    services: Services, databases: ServiceDatabases, method: str
) -> None:
    w = await world(services)
    request = REQUESTS[method](w)
    before = await snapshot(databases.subscriptions)

    for name, metadata in unauthenticated(services).items():
        answer = await refused(call(services, method, request, metadata))
        assert answer.code == Code.UNAUTHENTICATED, (name, answer)
        expected = "TOKEN_MISSING" if name in ("none", "not bearer") else None
        assert expected is None or answer.reason == expected, (name, answer)

    answer = await refused(call(services, method, request, without_scope(services, method)))
    assert (answer.code, answer.reason) == (Code.PERMISSION_DENIED, "SCOPE_MISSING")

    if method not in NO_ORGANISATION:
        answer = await refused(
            call(services, method, request, other_organisation(services, method))
        )
        assert answer.code in (Code.NOT_FOUND, Code.PERMISSION_DENIED), answer
        assert ORG not in answer.details
        assert w.invoice_id not in answer.details

    assert changed_tables(before, await snapshot(databases.subscriptions)) == []
    _, failure = await outcome(call(services, method, request, rightful(services, method)))
    assert failure is None, failure


INVOICE_RPCS = ["GetInvoice", "GetInvoicePdf", "VoidInvoice", "ApplyPayment"]


@pytest.mark.parametrize("method", INVOICE_RPCS)
async def test_another_organisations_invoice_is_answered_as_if_it_did_not_exist(
    services: Services, databases: ServiceDatabases, method: str
) -> None:
    """Even with billing:admin: a bound token reaches only its own organisation."""
    w = await world(services)
    intruder = services.auth([scope_of(method), Scope.BILLING_ADMIN], OTHER_ORG, "intruder")
    before = await snapshot(databases.subscriptions)
    theirs = await refused(call(services, method, REQUESTS[method](w), intruder))
    missing_request = REQUESTS[method](World(str(fresh_org()), w.other_invoice_id))
    missing = await refused(call(services, method, missing_request, intruder))
    assert theirs.summary == missing.summary == (Code.NOT_FOUND, "NOT_FOUND", ())
    assert theirs.details == missing.details
    assert changed_tables(before, await snapshot(databases.subscriptions)) == []


# Admin-only fields and tiers (SPEC §10) sent with ORG's customer token (billing:read+write).
ADMIN_ONLY: dict[str, tuple[str, Message]] = {
    "start_time": (
        "CreateSubscription",
        pb.CreateSubscriptionRequest(
            organization_id=ORG,
            tier=common_pb2.TIER_STARTER,
            billing_cycle=common_pb2.BILLING_CYCLE_MONTHLY,
            start_time=_stamp(START - timedelta(days=3)),
        ),
    ),
    "custom tier on create": (
        "CreateSubscription",
        pb.CreateSubscriptionRequest(
            organization_id=ORG,
            tier=CUSTOM,
            billing_cycle=common_pb2.BILLING_CYCLE_MONTHLY,
            custom_price_per_month="1.00",
        ),
    ),
    "effective_time": (
        "ChangeTier",
        pb.ChangeTierRequest(organization_id=ORG, tier=PRO, effective_time=_stamp(START)),
    ),
    "custom tier on change": (
        "ChangeTier",
        pb.ChangeTierRequest(organization_id=ORG, tier=CUSTOM, custom_price_per_month="1.00"),
    ),
    "immediate cancel": (
        "CancelSubscription",
        pb.CancelSubscriptionRequest(organization_id=ORG, at_period_end=False),
    ),
    "immediate cancel at a time": (
        "CancelSubscription",
        pb.CancelSubscriptionRequest(
            organization_id=ORG, at_period_end=False, effective_time=_stamp(START)
        ),
    ),
    "as_of": ("RunBillingCycle", pb.RunBillingCycleRequest(as_of=_stamp(START))),
}


@pytest.mark.parametrize("case", list(ADMIN_ONLY))
async def test_admin_only_fields_with_a_customer_token_are_permission_denied(
    services: Services, databases: ServiceDatabases, case: str
) -> None:
    await subscribe(services, OTHER_ORG)
    method, request = ADMIN_ONLY[case]
    if method != "CreateSubscription":
        await subscribe(services, ORG)
    before = await snapshot(databases.subscriptions)
    answer = await refused(call(services, method, request, services.customer(ORG)))
    assert (answer.code, answer.reason) == (Code.PERMISSION_DENIED, "SCOPE_MISSING")
    assert changed_tables(before, await snapshot(databases.subscriptions)) == []


async def test_a_bound_operator_token_lists_only_its_own_audit_entries(
    services: Services,
) -> None:
    mine, theirs = fresh_org(), fresh_org()
    await subscribe(services, mine)
    await subscribe(services, theirs)
    bound = services.auth([Scope.BILLING_ADMIN], theirs, "intruder")
    answer, failure = await outcome(
        services.subscriptions.ListAuditEntries(
            pb.ListAuditEntriesRequest(page_size=1000), metadata=bound
        )
    )
    if failure is None:
        assert {entry.organization_id for entry in answer.entries} <= {theirs, ""}
    else:
        assert failure.code in (Code.NOT_FOUND, Code.PERMISSION_DENIED)


async def test_a_bound_operator_token_bills_no_other_organisation(
    services: Services, databases: ServiceDatabases
) -> None:
    await subscribe(services, ORG)
    services.clock.set(datetime(2026, 4, 1, 0, 1, tzinfo=UTC))
    before = await snapshot(databases.subscriptions)
    bound = services.auth([Scope.BILLING_ADMIN], OTHER_ORG, "intruder")
    answer, failure = await outcome(
        services.subscriptions.RunBillingCycle(pb.RunBillingCycleRequest(), metadata=bound)
    )
    if failure is None:
        assert answer == pb.RunBillingCycleResponse()
        assert changed_tables(before, await snapshot(databases.subscriptions)) == []
    else:
        assert failure.code in (Code.NOT_FOUND, Code.PERMISSION_DENIED)
