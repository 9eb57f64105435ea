"""One caller's bad input never fails, slows or changes another caller's request (SPEC §11):
ORG's valid calls (create, preview, list invoices, a billing run as operator) run while
another organisation's caller sends every kind of bad input of test_bad_input.py at once,
plus undecodable bytes and bad tokens; every valid call succeeds with the right numbers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from taskforge.common.v1 import common_pb2
from taskforge.subscriptions.v1 import invoice_pb2
from taskforge.subscriptions.v1 import subscription_service_pb2 as pb
from taskforge_subscriptions.transport.servicer import SERVICE_NAME
from tests.metering.strategies import SPEC_STATUSES
from tests.subscriptions.integration.calls import (
    ORG,
    OTHER_ORG,
    Code,
    outcome,
    raw_channel,
    subscribe,
)
from tests.subscriptions.integration.test_bad_input import CASES, World
from tests.subscriptions.service_client import Services

pytest_plugins = ["tests.subscriptions.integration.served"]

# A valid call that waits this long behind bad input has been slowed beyond reason.
DEADLINE = timedelta(seconds=30).total_seconds()


async def bad_calls(services: Services, world: World) -> list[Code]:
    """Every bad input of the table, from OTHER_ORG's operator and customer, all at once."""
    calls: list[Any] = []
    for name, case in CASES.items():
        if "paid invoice" in name:
            continue  # needs an invoice paid: here it would not be bad input
        request = case.request(world)
        if getattr(request, "organization_id", None) == ORG:
            request.organization_id = OTHER_ORG  # type: ignore[attr-defined]
        metadata = services.operator() if case.operator else services.customer(OTHER_ORG)
        calls.append(getattr(services.subscriptions, case.method)(request, metadata=metadata))
    for method in ("CreateSubscription", "ListInvoices", "PreviewInvoice", "RunBillingCycle"):
        raw = raw_channel(services).unary_unary(f"/{SERVICE_NAME}/{method}", None, None)
        calls += [
            raw(b"\x0a\x03\xff\xfe\xfd", metadata=services.operator()),
            raw(b"\x0a\x10abc", metadata=()),
        ]
        calls.append(
            getattr(services.subscriptions, method)(
                getattr(pb, f"{method}Request")(), metadata=services.platform(ORG)
            )
        )
    codes = []
    for answer, failure in await asyncio.gather(*(outcome(call) for call in calls)):
        assert failure is not None, f"a bad call succeeded: {answer}"
        codes.append(failure.code)
    return codes


async def test_valid_calls_succeed_while_another_organisation_sends_bad_input(
    services: Services,
) -> None:
    other = await subscribe(services, OTHER_ORG)
    world = World(other.invoice.id, other.invoice.id)
    customer = services.customer(ORG)

    async def valid() -> None:
        created = await asyncio.wait_for(subscribe(services, ORG), DEADLINE)
        assert created.invoice.total_amount == "31.90"
        services_calls: list[Any] = await asyncio.gather(
            *(
                services.subscriptions.PreviewInvoice(
                    pb.PreviewInvoiceRequest(organization_id=ORG),
                    metadata=customer,
                    timeout=DEADLINE,
                )
                for _ in range(5)
            ),
            *(
                services.subscriptions.ListInvoices(
                    pb.ListInvoicesRequest(organization_id=ORG),
                    metadata=customer,
                    timeout=DEADLINE,
                )
                for _ in range(5)
            ),
            services.subscriptions.RunBillingCycle(
                pb.RunBillingCycleRequest(), metadata=services.operator(), timeout=DEADLINE
            ),
            services.subscriptions.ChangeTier(
                pb.ChangeTierRequest(organization_id=ORG, tier=common_pb2.TIER_PRO),
                metadata=customer,
                timeout=DEADLINE,
            ),
        )
        previews = services_calls[:5]
        listings = services_calls[5:10]
        run, changed = services_calls[10], services_calls[11]
        for preview in previews:
            # The fee of the next period on the starter or the pro plan (the change races).
            assert preview.invoice.total_amount in ("31.90", "108.90"), preview
        for listing in listings:
            assert listing.total_count in (1, 2)
            assert all(i.organization_id == ORG for i in listing.invoices)
        assert run == pb.RunBillingCycleResponse()  # nothing is due on the first day
        assert changed.subscription.tier == common_pb2.TIER_PRO

    results = await asyncio.gather(valid(), bad_calls(services, world), valid_reads(services))
    codes = results[1]
    assert set(codes) <= SPEC_STATUSES, set(codes) - SPEC_STATUSES
    assert Code.INVALID_ARGUMENT in codes

    # In the end ORG holds exactly what its valid calls made, and OTHER_ORG nothing more.
    listed = await services.subscriptions.ListInvoices(
        pb.ListInvoicesRequest(organization_id=ORG), metadata=customer
    )
    assert [(i.kind, i.total_amount) for i in listed.invoices] == [
        (invoice_pb2.INVOICE_KIND_PRORATION, "77.00"),  # (99 − 29) × 1 + 10%: a whole month
        (invoice_pb2.INVOICE_KIND_SUBSCRIPTION_START, "31.90"),
    ]
    theirs = await services.subscriptions.ListInvoices(
        pb.ListInvoicesRequest(organization_id=OTHER_ORG), metadata=services.operator()
    )
    assert [i.id for i in theirs.invoices] == [other.invoice.id]
    rate = await services.subscriptions.GetSubscription(
        pb.GetSubscriptionRequest(organization_id=OTHER_ORG), metadata=services.operator()
    )
    assert rate.subscription.tier == common_pb2.TIER_STARTER


async def valid_reads(services: Services) -> None:
    """Reads of the price book, unaffected by the bad UpsertPlan and SetMeterPrice calls."""
    for _ in range(5):
        plans = await services.subscriptions.ListPlans(
            pb.ListPlansRequest(), metadata=services.customer(ORG), timeout=DEADLINE
        )
        fees = {plan.tier: plan.price_per_month for plan in plans.plans}
        assert fees == {1: "29.00", 2: "99.00", 3: "299.00", 4: ""}
