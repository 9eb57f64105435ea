"""SubscriptionService over gRPC: map the request, await the use case, map the result."""

from __future__ import annotations

from typing import Any

import grpc

from taskforge.metering.v1 import usage_pb2
from taskforge.subscriptions.v1 import subscription_service_pb2 as pb
from taskforge.subscriptions.v1 import subscription_service_pb2_grpc
from taskforge_common.caller import Caller
from taskforge_common.grpc.auth import Scope, current_principal
from taskforge_common.grpc.errors import map_errors
from taskforge_common.meters import UsageType
from taskforge_common.protobuf import USAGE_TYPE, timestamp_field
from taskforge_common.validation import parse_uuid
from taskforge_subscriptions.application.commands import (
    CancelSubscription,
    ChangeTier,
    CreateSubscription,
)
from taskforge_subscriptions.application.use_cases import UseCases
from taskforge_subscriptions.rendering.invoice_pdf import (
    DEFAULT_ISSUER,
    Issuer,
    invoice_pdf_filename,
    render_invoice_pdf,
)
from taskforge_subscriptions.transport import mappers as m

SERVICE_NAME = "taskforge.subscriptions.v1.SubscriptionService"

# The scope each RPC requires (SPEC §10); use cases check admin-only fields and tiers.
METHOD_SCOPES = {
    f"/{SERVICE_NAME}/{method}": scope
    for method, scope in {
        "ListPlans": Scope.BILLING_READ,
        "CreateSubscription": Scope.BILLING_WRITE,
        "GetSubscription": Scope.BILLING_READ,
        "ChangeTier": Scope.BILLING_WRITE,
        "CancelSubscription": Scope.BILLING_WRITE,
        "ListInvoices": Scope.BILLING_READ,
        "GetInvoice": Scope.BILLING_READ,
        "GetInvoicePdf": Scope.BILLING_READ,
        "PreviewInvoice": Scope.BILLING_READ,
        "GetBillingSummary": Scope.BILLING_READ,
        "RunBillingCycle": Scope.BILLING_ADMIN,
        "VoidInvoice": Scope.BILLING_ADMIN,
        "ApplyPayment": Scope.BILLING_ADMIN,
        "GetCreditBalance": Scope.BILLING_READ,
        "ListCreditNotes": Scope.BILLING_READ,
        "SetTaxRate": Scope.BILLING_ADMIN,
        "ListEvents": Scope.BILLING_READ,
        "UpsertPlan": Scope.BILLING_ADMIN,
        "SetMeterPrice": Scope.BILLING_ADMIN,
        "ListAuditEntries": Scope.BILLING_ADMIN,
    }.items()
}

Context = grpc.aio.ServicerContext[Any, Any]


def _caller() -> Caller:
    principal = current_principal()
    return Caller(principal.subject, principal.organization_id, principal.is_admin)


class SubscriptionServicer(subscription_service_pb2_grpc.SubscriptionServiceServicer):
    def __init__(self, use_cases: UseCases, issuer: Issuer = DEFAULT_ISSUER) -> None:
        self._uc = use_cases
        self._issuer = issuer

    @map_errors
    async def ListPlans(
        self, request: pb.ListPlansRequest, context: Context
    ) -> pb.ListPlansResponse:
        plans = await self._uc.queries.plans()
        return pb.ListPlansResponse(plans=[m.plan_message(plan) for plan in plans])

    @map_errors
    async def CreateSubscription(
        self, request: pb.CreateSubscriptionRequest, context: Context
    ) -> pb.CreateSubscriptionResponse:
        command = CreateSubscription(
            organization_id=m.organization_id(request.organization_id),
            tier=m.TIERS.required(request.tier, "tier"),
            cycle=m.CYCLES.required(request.billing_cycle, "billing_cycle"),
            auto_renew=request.auto_renew,
            start_time=timestamp_field(request, "start_time"),
            custom_price_per_month=m.monthly_price(
                request.custom_price_per_month, "custom_price_per_month"
            ),
            custom_limits=m.limits(request.custom_limits, "custom_limits"),
            request_id=m.request_id(request.request_id),
        )
        subscription, invoice = await self._uc.subscriptions.create(command, _caller())
        return pb.CreateSubscriptionResponse(
            subscription=m.subscription_message(subscription),
            invoice=m.invoice_message(invoice),
        )

    @map_errors
    async def GetSubscription(
        self, request: pb.GetSubscriptionRequest, context: Context
    ) -> pb.GetSubscriptionResponse:
        subscription = await self._uc.queries.subscription(
            m.organization_id(request.organization_id), _caller()
        )
        return pb.GetSubscriptionResponse(subscription=m.subscription_message(subscription))

    @map_errors
    async def ChangeTier(
        self, request: pb.ChangeTierRequest, context: Context
    ) -> pb.ChangeTierResponse:
        command = ChangeTier(
            organization_id=m.organization_id(request.organization_id),
            tier=m.TIERS.required(request.tier, "tier"),
            effective_time=timestamp_field(request, "effective_time"),
            custom_price_per_month=m.monthly_price(
                request.custom_price_per_month, "custom_price_per_month"
            ),
            custom_limits=m.limits(request.custom_limits, "custom_limits"),
            request_id=m.request_id(request.request_id),
        )
        changed = await self._uc.subscriptions.change_tier(command, _caller())
        response = pb.ChangeTierResponse(subscription=m.subscription_message(changed.subscription))
        if changed.proration_invoice is not None:
            response.proration_invoice.CopyFrom(m.invoice_message(changed.proration_invoice))
        if changed.credit_note is not None:
            response.credit_note.CopyFrom(m.credit_note_message(changed.credit_note))
        return response

    @map_errors
    async def CancelSubscription(
        self, request: pb.CancelSubscriptionRequest, context: Context
    ) -> pb.CancelSubscriptionResponse:
        command = CancelSubscription(
            organization_id=m.organization_id(request.organization_id),
            at_period_end=request.at_period_end,
            effective_time=timestamp_field(request, "effective_time"),
            request_id=m.request_id(request.request_id),
        )
        subscription = await self._uc.subscriptions.cancel(command, _caller())
        return pb.CancelSubscriptionResponse(subscription=m.subscription_message(subscription))

    @map_errors
    async def ListInvoices(
        self, request: pb.ListInvoicesRequest, context: Context
    ) -> pb.ListInvoicesResponse:
        page = await self._uc.queries.invoices(
            m.organization_id(request.organization_id),
            m.INVOICE_STATUSES.optional(request.status, "status"),
            request.page_size,
            request.page_token,
            _caller(),
        )
        return pb.ListInvoicesResponse(
            invoices=[m.invoice_message(invoice) for invoice in page.items],
            total_count=page.total_count,
            next_page_token=page.next_page_token,
        )

    @map_errors
    async def GetInvoice(
        self, request: pb.GetInvoiceRequest, context: Context
    ) -> pb.GetInvoiceResponse:
        invoice = await self._uc.queries.invoice(
            parse_uuid(request.invoice_id, "invoice_id"), _caller()
        )
        return pb.GetInvoiceResponse(invoice=m.invoice_message(invoice))

    @map_errors
    async def GetInvoicePdf(
        self, request: pb.GetInvoicePdfRequest, context: Context
    ) -> pb.GetInvoicePdfResponse:
        invoice = await self._uc.queries.invoice(
            parse_uuid(request.invoice_id, "invoice_id"), _caller()
        )
        return pb.GetInvoicePdfResponse(
            pdf=render_invoice_pdf(invoice, self._issuer),
            filename=invoice_pdf_filename(invoice),
        )

    @map_errors
    async def PreviewInvoice(
        self, request: pb.PreviewInvoiceRequest, context: Context
    ) -> pb.PreviewInvoiceResponse:
        invoice = await self._uc.queries.preview(
            m.organization_id(request.organization_id), _caller()
        )
        return pb.PreviewInvoiceResponse(invoice=m.invoice_message(invoice))

    @map_errors
    async def GetBillingSummary(
        self, request: pb.GetBillingSummaryRequest, context: Context
    ) -> pb.GetBillingSummaryResponse:
        summary = await self._uc.queries.billing_summary(
            m.organization_id(request.organization_id), _caller()
        )
        usage = summary.usage
        current = {usage_type: m.text(quantity) for usage_type, quantity in usage.current.items()}
        return pb.GetBillingSummaryResponse(
            subscription=m.subscription_message(summary.subscription),
            current_usage=usage_pb2.CurrentUsage(
                jobs_executed=current.get(UsageType.JOB_EXECUTION, "0"),
                active_workers=current.get(UsageType.ACTIVE_WORKERS, "0"),
                queues=current.get(UsageType.QUEUES, "0"),
                storage_used_gb=current.get(UsageType.STORAGE, "0"),
                api_calls_made=current.get(UsageType.API_CALL, "0"),
                data_transferred_gb=current.get(UsageType.DATA_TRANSFER, "0"),
                period_start=m.timestamp(usage.window_start),
                period_end=m.timestamp(usage.window_end),
            ),
            limits=[
                usage_pb2.LimitStatus(
                    usage_type=USAGE_TYPE.number(limit.usage_type),
                    limit=m.text(limit.limit),
                    current=m.text(limit.current),
                    remaining=m.text(limit.remaining),
                    exceeded=limit.exceeded,
                )
                for limit in usage.limits
            ],
            upcoming_invoice_amount=m.money_text(summary.upcoming.totals.amount_due),
            next_billing_date=m.timestamp(summary.next_billing_date),
            credit_balance=m.money_text(summary.credit_balance),
        )

    @map_errors
    async def RunBillingCycle(
        self, request: pb.RunBillingCycleRequest, context: Context
    ) -> pb.RunBillingCycleResponse:
        m.request_id(request.request_id)  # checked; a billing run is safe to repeat anyway
        summary = await self._uc.billing.run_as_of(timestamp_field(request, "as_of"), _caller())
        return pb.RunBillingCycleResponse(
            invoices_created=summary.invoices_created,
            invoices_finalized=summary.invoices_finalized,
            subscriptions_renewed=summary.subscriptions_renewed,
            subscriptions_canceled=summary.subscriptions_canceled,
            invoices_overdue=summary.invoices_overdue,
            invoices_held=summary.invoices_held,
            subscriptions_suspended=summary.subscriptions_suspended,
            steps_failed=summary.steps_failed,
        )

    @map_errors
    async def VoidInvoice(
        self, request: pb.VoidInvoiceRequest, context: Context
    ) -> pb.VoidInvoiceResponse:
        invoice = await self._uc.invoices.void(
            parse_uuid(request.invoice_id, "invoice_id"), request.reason, _caller()
        )
        return pb.VoidInvoiceResponse(invoice=m.invoice_message(invoice))

    @map_errors
    async def ApplyPayment(
        self, request: pb.ApplyPaymentRequest, context: Context
    ) -> pb.ApplyPaymentResponse:
        invoice = await self._uc.invoices.apply_payment(
            parse_uuid(request.invoice_id, "invoice_id"),
            parse_uuid(request.payment_id, "payment_id"),
            m.decimal_amount(request.amount),
            timestamp_field(request, "paid_at"),
            _caller(),
        )
        return pb.ApplyPaymentResponse(invoice=m.invoice_message(invoice))

    @map_errors
    async def GetCreditBalance(
        self, request: pb.GetCreditBalanceRequest, context: Context
    ) -> pb.GetCreditBalanceResponse:
        balance = await self._uc.queries.credit_balance(
            m.organization_id(request.organization_id), _caller()
        )
        return pb.GetCreditBalanceResponse(
            balance=m.money_text(balance), currency_code=balance.currency
        )

    @map_errors
    async def ListCreditNotes(
        self, request: pb.ListCreditNotesRequest, context: Context
    ) -> pb.ListCreditNotesResponse:
        page = await self._uc.queries.credit_notes(
            m.organization_id(request.organization_id),
            request.page_size,
            request.page_token,
            _caller(),
        )
        return pb.ListCreditNotesResponse(
            credit_notes=[m.credit_note_message(note) for note in page.items],
            total_count=page.total_count,
            next_page_token=page.next_page_token,
        )

    @map_errors
    async def SetTaxRate(
        self, request: pb.SetTaxRateRequest, context: Context
    ) -> pb.SetTaxRateResponse:
        rate = await self._uc.invoices.set_tax_rate(
            m.organization_id(request.organization_id), m.tax_rate(request.tax_rate), _caller()
        )
        return pb.SetTaxRateResponse(tax_rate=m.text(rate))

    @map_errors
    async def ListEvents(
        self, request: pb.ListEventsRequest, context: Context
    ) -> pb.ListEventsResponse:
        page = await self._uc.queries.events(
            m.organization_id(request.organization_id),
            list(request.types),
            request.page_size,
            request.page_token,
            _caller(),
        )
        return pb.ListEventsResponse(
            events=[m.event_message(event) for event in page.items],
            next_page_token=page.next_page_token,
        )

    @map_errors
    async def UpsertPlan(
        self, request: pb.UpsertPlanRequest, context: Context
    ) -> pb.UpsertPlanResponse:
        plan = await self._uc.price_book.upsert_plan(m.plan_from(request.plan), _caller())
        return pb.UpsertPlanResponse(plan=m.plan_message(plan))

    @map_errors
    async def SetMeterPrice(
        self, request: pb.SetMeterPriceRequest, context: Context
    ) -> pb.SetMeterPriceResponse:
        plan = await self._uc.price_book.set_price(
            m.TIERS.required(request.tier, "tier"),
            m.meter_price(request.price, "price"),
            timestamp_field(request, "effective_time"),
            _caller(),
        )
        return pb.SetMeterPriceResponse(plan=m.plan_message(plan))

    @map_errors
    async def ListAuditEntries(
        self, request: pb.ListAuditEntriesRequest, context: Context
    ) -> pb.ListAuditEntriesResponse:
        page = await self._uc.queries.audit_entries(
            m.organization_id(request.organization_id) if request.organization_id else None,
            m.entity_id(request.entity_id),
            request.page_size,
            request.page_token,
            _caller(),
        )
        return pb.ListAuditEntriesResponse(
            entries=[m.audit_entry_message(entry) for entry in page.items],
            next_page_token=page.next_page_token,
        )
