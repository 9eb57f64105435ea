"""Every SubscriptionService RPC once, on its happy path, through the real grpc.aio servers
(subscriptions pointed at a real metering) on SQLite and PostgreSQL: the numbers of SPEC §1–§6
come back over the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as metering_pb
from taskforge.metering.v1 import usage_pb2
from taskforge.subscriptions.v1 import invoice_pb2, plan_pb2, subscription_pb2
from taskforge.subscriptions.v1 import subscription_service_pb2 as pb
from taskforge_subscriptions.transport.servicer import METHOD_SCOPES, SERVICE_NAME
from tests.subscriptions.integration.calls import (
    ORG,
    START,
    Code,
    fresh_org,
    refused,
    subscribe,
)
from tests.subscriptions.service_client import Services

pytest_plugins = ["tests.subscriptions.integration.served"]

STARTER, PRO, ENTERPRISE, CUSTOM = (
    common_pb2.TIER_STARTER,
    common_pb2.TIER_PRO,
    common_pb2.TIER_ENTERPRISE,
    common_pb2.TIER_CUSTOM,
)
U = common_pb2
# SPEC §1: the fee, the limits and the features of each tier (limits by usage type).
SPEC_PLANS = {
    STARTER: ("29.00", ["10000", "5", "10", "10", "100000", "100"], False),
    PRO: ("99.00", ["100000", "20", "50", "100", "1000000", "1000"], True),
    ENTERPRISE: ("299.00", ["1000000", "100", "200", "1000", "10000000", "10000"], True),
    CUSTOM: ("", [], True),
}
LIMIT_TYPES = [
    U.USAGE_TYPE_JOB_EXECUTION,
    U.USAGE_TYPE_ACTIVE_WORKERS,
    U.USAGE_TYPE_QUEUES,
    U.USAGE_TYPE_STORAGE,
    U.USAGE_TYPE_API_CALL,
    U.USAGE_TYPE_DATA_TRANSFER,
]
# SPEC §2: the default unit price of each billed meter, the same on every plan.
SPEC_PRICES = {
    U.USAGE_TYPE_JOB_EXECUTION: "0.001",
    U.USAGE_TYPE_JOB_PROCESSING_TIME: "0.00001",
    U.USAGE_TYPE_WORKER_HOURS: "0.02",
    U.USAGE_TYPE_API_CALL: "0.00001",
    U.USAGE_TYPE_DATA_TRANSFER: "0.05",
    U.USAGE_TYPE_QUEUE_STORAGE: "0.0001",
    U.USAGE_TYPE_STORAGE: "0.0002",
}
# SPEC §5's worked example: half of March 2026 is left.
HALFWAY = datetime(2026, 3, 16, 12, tzinfo=UTC)


def stamp(instant: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(instant)
    return value


def instant(value: Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=UTC)


async def record_jobs(services: Services, quantity: str, key: str) -> None:
    """Usage reported to metering as the platform does (the entitlements relayed first)."""
    await services.relay()
    await services.metering.RecordUsage(
        metering_pb.RecordUsageRequest(
            event=usage_pb2.UsageEvent(
                organization_id=ORG,
                usage_type=U.USAGE_TYPE_JOB_EXECUTION,
                quantity=quantity,
                idempotency_key=key,
            )
        ),
        metadata=services.platform(ORG),
    )


async def change_tier(services: Services, tier: int) -> pb.ChangeTierResponse:
    answer: pb.ChangeTierResponse = await services.subscriptions.ChangeTier(
        pb.ChangeTierRequest(organization_id=ORG, tier=tier),  # type: ignore[arg-type]
        metadata=services.customer(ORG),
    )
    return answer


def test_the_happy_paths_cover_every_rpc() -> None:
    """A new RPC needs its happy path here: the tests below name the RPCs they call."""
    named = {name for name in globals() if name.startswith("test_")}
    methods = {path.rsplit("/", 1)[1] for path in METHOD_SCOPES}
    assert {f"/{SERVICE_NAME}/{method}" for method in methods} == set(METHOD_SCOPES)
    snake = {m: "".join(f"_{c.lower()}" if c.isupper() else c for c in m)[1:] for m in methods}
    missing = [m for m, name in snake.items() if not any(name in test for test in named)]
    assert not missing, f"no happy-path test names {missing}"


async def test_list_plans_shows_spec_fees_limits_and_prices(services: Services) -> None:
    answer = await services.subscriptions.ListPlans(
        pb.ListPlansRequest(), metadata=services.customer(ORG)
    )
    plans = {plan.tier: plan for plan in answer.plans}
    assert set(plans) == set(SPEC_PLANS)
    for tier, (fee, maxima, features) in SPEC_PLANS.items():
        plan = plans[tier]
        assert (plan.price_per_month, plan.currency_code) == (fee, "USD")
        limits = {limit.usage_type: limit.max for limit in plan.limits}
        assert limits == dict(zip(LIMIT_TYPES, maxima, strict=False))
        assert (plan.priority_support, plan.custom_domains) == (features, features)
        prices = {price.usage_type: price for price in plan.prices}
        assert {t: p.unit_price for t, p in prices.items()} == SPEC_PRICES
        assert {p.model for p in prices.values()} == {plan_pb2.CHARGE_MODEL_PER_UNIT}


async def test_create_subscription_issues_the_first_fee_invoice_numbered(
    services: Services,
) -> None:
    created = await subscribe(services)
    subscription, invoice = created.subscription, created.invoice
    assert (subscription.organization_id, subscription.tier) == (ORG, STARTER)
    assert subscription.status == subscription_pb2.SUBSCRIPTION_STATUS_ACTIVE
    assert subscription.price_per_month == "29.00"
    assert instant(subscription.current_period_start) == START
    assert instant(subscription.current_period_end) == datetime(2026, 4, 1, tzinfo=UTC)
    assert invoice.invoice_number == "INV-2026-000001"
    assert invoice.status == invoice_pb2.INVOICE_STATUS_SENT
    assert invoice.kind == invoice_pb2.INVOICE_KIND_SUBSCRIPTION_START
    assert (invoice.subtotal, invoice.tax_rate, invoice.tax_amount) == ("29.00", "0.1", "2.90")
    assert (invoice.total_amount, invoice.amount_due) == ("31.90", "31.90")
    assert instant(invoice.due_date) == START + timedelta(days=30)
    assert [line.amount for line in invoice.line_items] == ["29.00"]


async def test_get_subscription_answers_the_current_one(services: Services) -> None:
    created = await subscribe(services, cycle=common_pb2.BILLING_CYCLE_QUARTERLY)
    answer = await services.subscriptions.GetSubscription(
        pb.GetSubscriptionRequest(organization_id=ORG), metadata=services.customer(ORG)
    )
    assert answer.subscription == created.subscription
    assert instant(answer.subscription.current_period_end) == datetime(2026, 6, 1, tzinfo=UTC)
    assert created.invoice.total_amount == "95.70"  # 3 × 29.00 + 10%


async def test_change_tier_up_invoices_and_down_credits_the_prorated_difference(
    services: Services,
) -> None:
    await subscribe(services)
    services.clock.set(HALFWAY)
    up = await change_tier(services, PRO)
    assert up.subscription.tier == PRO
    assert not up.HasField("credit_note")
    invoice = up.proration_invoice
    assert invoice.kind == invoice_pb2.INVOICE_KIND_PRORATION
    assert (invoice.subtotal, invoice.tax_amount, invoice.total_amount) == (
        "35.00",
        "3.50",
        "38.50",
    )
    assert invoice.invoice_number == "INV-2026-000002"
    assert instant(invoice.due_date) == datetime(2026, 3, 23, 12, tzinfo=UTC)

    down = await change_tier(services, STARTER)
    assert down.subscription.tier == STARTER
    assert not down.HasField("proration_invoice")
    note = down.credit_note
    assert (note.subtotal, note.tax_amount, note.total_amount) == ("35.00", "3.50", "38.50")
    assert note.credit_note_number == "CN-2026-000001"


async def test_cancel_subscription_at_period_end_ends_it_in_the_billing_run(
    services: Services,
) -> None:
    await subscribe(services)
    cancel = await services.subscriptions.CancelSubscription(
        pb.CancelSubscriptionRequest(organization_id=ORG, at_period_end=True),
        metadata=services.customer(ORG),
    )
    assert cancel.subscription.cancel_at_period_end
    assert cancel.subscription.status == subscription_pb2.SUBSCRIPTION_STATUS_ACTIVE
    services.clock.set(datetime(2026, 4, 1, 0, 1, tzinfo=UTC))
    run = await services.subscriptions.RunBillingCycle(
        pb.RunBillingCycleRequest(), metadata=services.operator()
    )
    assert (run.invoices_created, run.subscriptions_canceled, run.subscriptions_renewed) == (
        1,
        1,
        0,
    )
    current = await services.subscriptions.GetSubscription(
        pb.GetSubscriptionRequest(organization_id=ORG), metadata=services.customer(ORG)
    )
    assert current.subscription.status == subscription_pb2.SUBSCRIPTION_STATUS_CANCELED


async def test_list_invoices_pages_newest_first_with_total_count(services: Services) -> None:
    await subscribe(services)
    services.clock.set(HALFWAY)
    await change_tier(services, PRO)
    services.clock.advance(timedelta(hours=1))
    await change_tier(services, ENTERPRISE)
    seen: list[str] = []
    token, pages = "", 0
    while True:
        page = await services.subscriptions.ListInvoices(
            pb.ListInvoicesRequest(organization_id=ORG, page_size=2, page_token=token),
            metadata=services.customer(ORG),
        )
        pages += 1
        assert page.total_count == 3
        seen += [invoice.invoice_number for invoice in page.invoices]
        token = page.next_page_token
        if not token:
            break
    assert pages == 2
    assert seen == ["INV-2026-000003", "INV-2026-000002", "INV-2026-000001"]
    sent = await services.subscriptions.ListInvoices(
        pb.ListInvoicesRequest(organization_id=ORG, status=invoice_pb2.INVOICE_STATUS_PAID),
        metadata=services.customer(ORG),
    )
    assert (sent.total_count, list(sent.invoices), sent.next_page_token) == (0, [], "")


async def test_get_invoice_and_get_invoice_pdf(services: Services) -> None:
    created = await subscribe(services)
    request_id = created.invoice.id
    got = await services.subscriptions.GetInvoice(
        pb.GetInvoiceRequest(invoice_id=request_id), metadata=services.customer(ORG)
    )
    assert got.invoice == created.invoice
    pdf = await services.subscriptions.GetInvoicePdf(
        pb.GetInvoicePdfRequest(invoice_id=request_id.upper()), metadata=services.customer(ORG)
    )
    assert pdf.pdf.startswith(b"%PDF")
    assert pdf.filename == "INV-2026-000001.pdf"


async def test_preview_invoice_and_get_billing_summary_read_usage_from_metering(
    services: Services,
) -> None:
    await subscribe(services)
    services.clock.set(START + timedelta(days=1))
    await record_jobs(services, "1000", "jobs-1")
    services.clock.advance(timedelta(minutes=1))
    preview = await services.subscriptions.PreviewInvoice(
        pb.PreviewInvoiceRequest(organization_id=ORG), metadata=services.customer(ORG)
    )
    invoice = preview.invoice
    assert (invoice.status, invoice.invoice_number) == (invoice_pb2.INVOICE_STATUS_DRAFT, "")
    assert sorted(line.amount for line in invoice.line_items) == ["1.00", "29.00"]
    assert (invoice.subtotal, invoice.tax_amount, invoice.total_amount) == (
        "30.00",
        "3.00",
        "33.00",
    )

    summary = await services.subscriptions.GetBillingSummary(
        pb.GetBillingSummaryRequest(organization_id=ORG), metadata=services.customer(ORG)
    )
    assert summary.current_usage.jobs_executed == "1000"
    limits = {limit.usage_type: limit for limit in summary.limits}
    jobs = limits[U.USAGE_TYPE_JOB_EXECUTION]
    assert (jobs.limit, jobs.current, jobs.remaining, jobs.exceeded) == (
        "10000",
        "1000",
        "9000",
        False,
    )
    assert set(limits) == set(LIMIT_TYPES)
    assert summary.upcoming_invoice_amount == "33.00"
    assert summary.credit_balance == "0.00"
    assert instant(summary.next_billing_date) == datetime(2026, 4, 1, tzinfo=UTC)
    # Nothing the preview showed was stored.
    listed = await services.subscriptions.ListInvoices(
        pb.ListInvoicesRequest(organization_id=ORG), metadata=services.customer(ORG)
    )
    assert listed.total_count == 1


async def test_run_billing_cycle_counts_what_it_did(services: Services) -> None:
    await subscribe(services)
    services.clock.set(START + timedelta(days=2))
    await record_jobs(services, "2000", "jobs-2")
    services.clock.set(datetime(2026, 4, 1, 0, 1, tzinfo=UTC))
    first = await services.subscriptions.RunBillingCycle(
        pb.RunBillingCycleRequest(request_id="run-1"), metadata=services.operator()
    )
    # The period's invoice (draft for the grace hour), the renewal, the first fee overdue.
    assert (first.invoices_created, first.subscriptions_renewed, first.invoices_overdue) == (
        1,
        1,
        1,
    )
    assert (first.invoices_finalized, first.invoices_held, first.subscriptions_suspended) == (
        0,
        0,
        0,
    )
    services.clock.advance(timedelta(hours=1))
    second = await services.subscriptions.RunBillingCycle(
        pb.RunBillingCycleRequest(), metadata=services.operator()
    )
    assert (second.invoices_created, second.invoices_finalized) == (0, 1)
    listed = await services.subscriptions.ListInvoices(
        pb.ListInvoicesRequest(organization_id=ORG), metadata=services.customer(ORG)
    )
    newest = listed.invoices[0]
    assert newest.kind == invoice_pb2.INVOICE_KIND_PERIOD_END
    assert newest.invoice_number == "INV-2026-000002"
    assert (newest.subtotal, newest.total_amount) == ("31.00", "34.10")  # 2.00 + 29.00, +10%


async def test_void_invoice_voids_a_sent_invoice(services: Services) -> None:
    created = await subscribe(services)
    voided = await services.subscriptions.VoidInvoice(
        pb.VoidInvoiceRequest(invoice_id=created.invoice.id, reason="issued by mistake"),
        metadata=services.operator(),
    )
    assert voided.invoice.status == invoice_pb2.INVOICE_STATUS_VOID
    assert voided.invoice.invoice_number == created.invoice.invoice_number


async def test_apply_payment_pays_once_per_payment_id(services: Services) -> None:
    created = await subscribe(services)
    services.clock.advance(timedelta(hours=2))
    payment = pb.ApplyPaymentRequest(
        invoice_id=created.invoice.id,
        payment_id="5a0e8f7c-1b2d-4e3f-9a8b-7c6d5e4f3a21",
        amount="31.90",
        paid_at=stamp(START + timedelta(hours=1)),
    )
    paid = await services.subscriptions.ApplyPayment(payment, metadata=services.operator())
    assert paid.invoice.status == invoice_pb2.INVOICE_STATUS_PAID
    assert instant(paid.invoice.paid_at) == START + timedelta(hours=1)
    again = await services.subscriptions.ApplyPayment(payment, metadata=services.operator())
    assert again.invoice == paid.invoice
    events = await services.subscriptions.ListEvents(
        pb.ListEventsRequest(organization_id=ORG, types=["invoice.paid"]),
        metadata=services.customer(ORG),
    )
    assert len(events.events) == 1


async def test_get_credit_balance_and_list_credit_notes_after_a_downgrade(
    services: Services,
) -> None:
    await subscribe(services, tier=PRO)
    services.clock.set(HALFWAY)
    down = await change_tier(services, STARTER)
    balance = await services.subscriptions.GetCreditBalance(
        pb.GetCreditBalanceRequest(organization_id=ORG), metadata=services.customer(ORG)
    )
    assert (balance.balance, balance.currency_code) == ("38.50", "USD")
    notes = await services.subscriptions.ListCreditNotes(
        pb.ListCreditNotesRequest(organization_id=ORG), metadata=services.customer(ORG)
    )
    assert [note.id for note in notes.credit_notes] == [down.credit_note.id]
    assert (notes.total_count, notes.next_page_token) == (1, "")


async def test_set_tax_rate_applies_to_the_next_invoice(services: Services) -> None:
    answer = await services.subscriptions.SetTaxRate(
        pb.SetTaxRateRequest(organization_id=ORG, tax_rate="0.20"), metadata=services.operator()
    )
    assert answer.tax_rate == "0.2"
    created = await subscribe(services)
    assert (created.invoice.tax_rate, created.invoice.tax_amount) == ("0.2", "5.80")
    assert created.invoice.total_amount == "34.80"


async def test_list_events_filters_by_type_newest_first(services: Services) -> None:
    await subscribe(services)
    services.clock.set(HALFWAY)
    await change_tier(services, PRO)
    every = await services.subscriptions.ListEvents(
        pb.ListEventsRequest(organization_id=ORG), metadata=services.customer(ORG)
    )
    stamps = [(e.created_at.seconds, e.created_at.nanos) for e in every.events]
    assert stamps == sorted(stamps, reverse=True)
    assert {e.type for e in every.events} >= {
        "subscription.created",
        "subscription.updated",
        "invoice.finalized",
    }
    finalized = await services.subscriptions.ListEvents(
        pb.ListEventsRequest(organization_id=ORG, types=["invoice.finalized"], page_size=1),
        metadata=services.customer(ORG),
    )
    assert [e.type for e in finalized.events] == ["invoice.finalized"]
    assert '"INV-2026-000002"' in finalized.events[0].payload  # the upgrade's, newest
    rest = await services.subscriptions.ListEvents(
        pb.ListEventsRequest(
            organization_id=ORG,
            types=["invoice.finalized"],
            page_size=1,
            page_token=finalized.next_page_token,
        ),
        metadata=services.customer(ORG),
    )
    assert '"INV-2026-000001"' in rest.events[0].payload


async def test_upsert_plan_and_set_meter_price_show_in_list_plans(services: Services) -> None:
    pro = plan_pb2.Plan(
        tier=PRO,
        price_per_month="109.00",
        currency_code="USD",
        limits=[common_pb2.Limit(usage_type=U.USAGE_TYPE_JOB_EXECUTION, max="150000")],
        priority_support=True,
        custom_domains=False,
    )
    upserted = await services.subscriptions.UpsertPlan(
        pb.UpsertPlanRequest(plan=pro), metadata=services.operator()
    )
    assert (upserted.plan.price_per_month, upserted.plan.custom_domains) == ("109.00", False)
    priced = await services.subscriptions.SetMeterPrice(
        pb.SetMeterPriceRequest(
            tier=PRO,
            price=plan_pb2.PlanPrice(usage_type=U.USAGE_TYPE_API_CALL, unit_price="0.00002"),
        ),
        metadata=services.operator(),
    )
    assert {p.usage_type: p.unit_price for p in priced.plan.prices}[U.USAGE_TYPE_API_CALL] == (
        "0.00002"
    )
    plans = await services.subscriptions.ListPlans(
        pb.ListPlansRequest(), metadata=services.customer(ORG)
    )
    listed = {plan.tier: plan for plan in plans.plans}[PRO]
    assert listed.price_per_month == "109.00"
    assert [(limit.usage_type, limit.max) for limit in listed.limits] == [
        (U.USAGE_TYPE_JOB_EXECUTION, "150000")
    ]
    prices = {p.usage_type: p.unit_price for p in listed.prices}
    assert prices == {**SPEC_PRICES, U.USAGE_TYPE_API_CALL: "0.00002"}
    created = await subscribe(services, tier=PRO)
    assert created.invoice.subtotal == "109.00"


async def test_list_audit_entries_is_for_operators_newest_first(services: Services) -> None:
    organization = fresh_org()  # the audit trail outlives the tests' resets
    await subscribe(services, organization)
    services.clock.set(HALFWAY)
    await services.subscriptions.ChangeTier(
        pb.ChangeTierRequest(organization_id=organization, tier=PRO),
        metadata=services.customer(organization),
    )
    entries = await services.subscriptions.ListAuditEntries(
        pb.ListAuditEntriesRequest(organization_id=organization), metadata=services.operator()
    )
    assert entries.entries
    assert {entry.organization_id for entry in entries.entries} == {organization}
    stamps = [(e.occurred_at.seconds, e.occurred_at.nanos) for e in entries.entries]
    assert stamps == sorted(stamps, reverse=True)
    assert entries.entries[0].actor == "customer"
    assert instant(entries.entries[0].occurred_at) == HALFWAY
    assert {"subscription.created", "subscription.tier_changed"} <= {
        entry.action for entry in entries.entries
    }
    denied = await refused(
        services.subscriptions.ListAuditEntries(
            pb.ListAuditEntriesRequest(organization_id=organization),
            metadata=services.customer(organization),
        )
    )
    assert (denied.code, denied.reason) == (Code.PERMISSION_DENIED, "SCOPE_MISSING")


async def test_list_plans_needs_billing_read_but_no_organisation(services: Services) -> None:
    """A platform token (usage:write, limits:read) reads no plans; any billing:read does."""
    denied = await refused(
        services.subscriptions.ListPlans(pb.ListPlansRequest(), metadata=services.platform(ORG))
    )
    assert denied.code == Code.PERMISSION_DENIED
    unbound = await services.subscriptions.ListPlans(
        pb.ListPlansRequest(), metadata=services.auth(["billing:read"])
    )
    assert len(unbound.plans) == 4
