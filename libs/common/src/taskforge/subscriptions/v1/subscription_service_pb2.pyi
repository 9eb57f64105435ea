import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from taskforge.common.v1 import common_pb2 as _common_pb2
from taskforge.metering.v1 import usage_pb2 as _usage_pb2
from taskforge.subscriptions.v1 import audit_pb2 as _audit_pb2
from taskforge.subscriptions.v1 import credit_note_pb2 as _credit_note_pb2
from taskforge.subscriptions.v1 import event_pb2 as _event_pb2
from taskforge.subscriptions.v1 import invoice_pb2 as _invoice_pb2
from taskforge.subscriptions.v1 import plan_pb2 as _plan_pb2
from taskforge.subscriptions.v1 import subscription_pb2 as _subscription_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListPlansRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPlansResponse(_message.Message):
    __slots__ = ("plans",)
    PLANS_FIELD_NUMBER: _ClassVar[int]
    plans: _containers.RepeatedCompositeFieldContainer[_plan_pb2.Plan]
    def __init__(self, plans: _Optional[_Iterable[_Union[_plan_pb2.Plan, _Mapping]]] = ...) -> None: ...

class CreateSubscriptionRequest(_message.Message):
    __slots__ = ("organization_id", "tier", "billing_cycle", "auto_renew", "start_time", "custom_price_per_month", "custom_limits", "request_id")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    BILLING_CYCLE_FIELD_NUMBER: _ClassVar[int]
    AUTO_RENEW_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_PRICE_PER_MONTH_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_LIMITS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    tier: _common_pb2.Tier
    billing_cycle: _common_pb2.BillingCycle
    auto_renew: bool
    start_time: _timestamp_pb2.Timestamp
    custom_price_per_month: str
    custom_limits: _containers.RepeatedCompositeFieldContainer[_common_pb2.Limit]
    request_id: str
    def __init__(self, organization_id: _Optional[str] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., billing_cycle: _Optional[_Union[_common_pb2.BillingCycle, str]] = ..., auto_renew: _Optional[bool] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., custom_price_per_month: _Optional[str] = ..., custom_limits: _Optional[_Iterable[_Union[_common_pb2.Limit, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateSubscriptionResponse(_message.Message):
    __slots__ = ("subscription", "invoice")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    subscription: _subscription_pb2.Subscription
    invoice: _invoice_pb2.Invoice
    def __init__(self, subscription: _Optional[_Union[_subscription_pb2.Subscription, _Mapping]] = ..., invoice: _Optional[_Union[_invoice_pb2.Invoice, _Mapping]] = ...) -> None: ...

class GetSubscriptionRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class GetSubscriptionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: _subscription_pb2.Subscription
    def __init__(self, subscription: _Optional[_Union[_subscription_pb2.Subscription, _Mapping]] = ...) -> None: ...

class ChangeTierRequest(_message.Message):
    __slots__ = ("organization_id", "tier", "effective_time", "custom_price_per_month", "custom_limits", "request_id")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_PRICE_PER_MONTH_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_LIMITS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    tier: _common_pb2.Tier
    effective_time: _timestamp_pb2.Timestamp
    custom_price_per_month: str
    custom_limits: _containers.RepeatedCompositeFieldContainer[_common_pb2.Limit]
    request_id: str
    def __init__(self, organization_id: _Optional[str] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., effective_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., custom_price_per_month: _Optional[str] = ..., custom_limits: _Optional[_Iterable[_Union[_common_pb2.Limit, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ChangeTierResponse(_message.Message):
    __slots__ = ("subscription", "proration_invoice", "credit_note")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PRORATION_INVOICE_FIELD_NUMBER: _ClassVar[int]
    CREDIT_NOTE_FIELD_NUMBER: _ClassVar[int]
    subscription: _subscription_pb2.Subscription
    proration_invoice: _invoice_pb2.Invoice
    credit_note: _credit_note_pb2.CreditNote
    def __init__(self, subscription: _Optional[_Union[_subscription_pb2.Subscription, _Mapping]] = ..., proration_invoice: _Optional[_Union[_invoice_pb2.Invoice, _Mapping]] = ..., credit_note: _Optional[_Union[_credit_note_pb2.CreditNote, _Mapping]] = ...) -> None: ...

class CancelSubscriptionRequest(_message.Message):
    __slots__ = ("organization_id", "at_period_end", "effective_time", "request_id")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    AT_PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    at_period_end: bool
    effective_time: _timestamp_pb2.Timestamp
    request_id: str
    def __init__(self, organization_id: _Optional[str] = ..., at_period_end: _Optional[bool] = ..., effective_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CancelSubscriptionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: _subscription_pb2.Subscription
    def __init__(self, subscription: _Optional[_Union[_subscription_pb2.Subscription, _Mapping]] = ...) -> None: ...

class ListInvoicesRequest(_message.Message):
    __slots__ = ("organization_id", "status", "page_size", "page_token")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    status: _invoice_pb2.InvoiceStatus
    page_size: int
    page_token: str
    def __init__(self, organization_id: _Optional[str] = ..., status: _Optional[_Union[_invoice_pb2.InvoiceStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListInvoicesResponse(_message.Message):
    __slots__ = ("invoices", "total_count", "next_page_token")
    INVOICES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    invoices: _containers.RepeatedCompositeFieldContainer[_invoice_pb2.Invoice]
    total_count: int
    next_page_token: str
    def __init__(self, invoices: _Optional[_Iterable[_Union[_invoice_pb2.Invoice, _Mapping]]] = ..., total_count: _Optional[int] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetInvoiceRequest(_message.Message):
    __slots__ = ("invoice_id",)
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    invoice_id: str
    def __init__(self, invoice_id: _Optional[str] = ...) -> None: ...

class GetInvoiceResponse(_message.Message):
    __slots__ = ("invoice",)
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    invoice: _invoice_pb2.Invoice
    def __init__(self, invoice: _Optional[_Union[_invoice_pb2.Invoice, _Mapping]] = ...) -> None: ...

class GetInvoicePdfRequest(_message.Message):
    __slots__ = ("invoice_id",)
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    invoice_id: str
    def __init__(self, invoice_id: _Optional[str] = ...) -> None: ...

class GetInvoicePdfResponse(_message.Message):
    __slots__ = ("pdf", "filename")
    PDF_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    pdf: bytes
    filename: str
    def __init__(self, pdf: _Optional[bytes] = ..., filename: _Optional[str] = ...) -> None: ...

class PreviewInvoiceRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class PreviewInvoiceResponse(_message.Message):
    __slots__ = ("invoice",)
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    invoice: _invoice_pb2.Invoice
    def __init__(self, invoice: _Optional[_Union[_invoice_pb2.Invoice, _Mapping]] = ...) -> None: ...

class GetBillingSummaryRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class GetBillingSummaryResponse(_message.Message):
    __slots__ = ("subscription", "current_usage", "limits", "upcoming_invoice_amount", "next_billing_date", "credit_balance")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CURRENT_USAGE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    UPCOMING_INVOICE_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    NEXT_BILLING_DATE_FIELD_NUMBER: _ClassVar[int]
    CREDIT_BALANCE_FIELD_NUMBER: _ClassVar[int]
    subscription: _subscription_pb2.Subscription
    current_usage: _usage_pb2.CurrentUsage
    limits: _containers.RepeatedCompositeFieldContainer[_usage_pb2.LimitStatus]
    upcoming_invoice_amount: str
    next_billing_date: _timestamp_pb2.Timestamp
    credit_balance: str
    def __init__(self, subscription: _Optional[_Union[_subscription_pb2.Subscription, _Mapping]] = ..., current_usage: _Optional[_Union[_usage_pb2.CurrentUsage, _Mapping]] = ..., limits: _Optional[_Iterable[_Union[_usage_pb2.LimitStatus, _Mapping]]] = ..., upcoming_invoice_amount: _Optional[str] = ..., next_billing_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., credit_balance: _Optional[str] = ...) -> None: ...

class RunBillingCycleRequest(_message.Message):
    __slots__ = ("as_of", "request_id")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    as_of: _timestamp_pb2.Timestamp
    request_id: str
    def __init__(self, as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RunBillingCycleResponse(_message.Message):
    __slots__ = ("invoices_created", "invoices_finalized", "subscriptions_renewed", "subscriptions_canceled", "invoices_overdue", "invoices_held", "subscriptions_suspended", "steps_failed")
    INVOICES_CREATED_FIELD_NUMBER: _ClassVar[int]
    INVOICES_FINALIZED_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_RENEWED_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_CANCELED_FIELD_NUMBER: _ClassVar[int]
    INVOICES_OVERDUE_FIELD_NUMBER: _ClassVar[int]
    INVOICES_HELD_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_SUSPENDED_FIELD_NUMBER: _ClassVar[int]
    STEPS_FAILED_FIELD_NUMBER: _ClassVar[int]
    invoices_created: int
    invoices_finalized: int
    subscriptions_renewed: int
    subscriptions_canceled: int
    invoices_overdue: int
    invoices_held: int
    subscriptions_suspended: int
    steps_failed: int
    def __init__(self, invoices_created: _Optional[int] = ..., invoices_finalized: _Optional[int] = ..., subscriptions_renewed: _Optional[int] = ..., subscriptions_canceled: _Optional[int] = ..., invoices_overdue: _Optional[int] = ..., invoices_held: _Optional[int] = ..., subscriptions_suspended: _Optional[int] = ..., steps_failed: _Optional[int] = ...) -> None: ...

class VoidInvoiceRequest(_message.Message):
    __slots__ = ("invoice_id", "reason")
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    invoice_id: str
    reason: str
    def __init__(self, invoice_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class VoidInvoiceResponse(_message.Message):
    __slots__ = ("invoice",)
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    invoice: _invoice_pb2.Invoice
    def __init__(self, invoice: _Optional[_Union[_invoice_pb2.Invoice, _Mapping]] = ...) -> None: ...

class ApplyPaymentRequest(_message.Message):
    __slots__ = ("invoice_id", "payment_id", "amount", "paid_at")
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PAID_AT_FIELD_NUMBER: _ClassVar[int]
    invoice_id: str
    payment_id: str
    amount: str
    paid_at: _timestamp_pb2.Timestamp
    def __init__(self, invoice_id: _Optional[str] = ..., payment_id: _Optional[str] = ..., amount: _Optional[str] = ..., paid_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ApplyPaymentResponse(_message.Message):
    __slots__ = ("invoice",)
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    invoice: _invoice_pb2.Invoice
    def __init__(self, invoice: _Optional[_Union[_invoice_pb2.Invoice, _Mapping]] = ...) -> None: ...

class GetCreditBalanceRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class GetCreditBalanceResponse(_message.Message):
    __slots__ = ("balance", "currency_code")
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    balance: str
    currency_code: str
    def __init__(self, balance: _Optional[str] = ..., currency_code: _Optional[str] = ...) -> None: ...

class ListCreditNotesRequest(_message.Message):
    __slots__ = ("organization_id", "page_size", "page_token")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    page_size: int
    page_token: str
    def __init__(self, organization_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCreditNotesResponse(_message.Message):
    __slots__ = ("credit_notes", "total_count", "next_page_token")
    CREDIT_NOTES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    credit_notes: _containers.RepeatedCompositeFieldContainer[_credit_note_pb2.CreditNote]
    total_count: int
    next_page_token: str
    def __init__(self, credit_notes: _Optional[_Iterable[_Union[_credit_note_pb2.CreditNote, _Mapping]]] = ..., total_count: _Optional[int] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetTaxRateRequest(_message.Message):
    __slots__ = ("organization_id", "tax_rate")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TAX_RATE_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    tax_rate: str
    def __init__(self, organization_id: _Optional[str] = ..., tax_rate: _Optional[str] = ...) -> None: ...

class SetTaxRateResponse(_message.Message):
    __slots__ = ("tax_rate",)
    TAX_RATE_FIELD_NUMBER: _ClassVar[int]
    tax_rate: str
    def __init__(self, tax_rate: _Optional[str] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("organization_id", "types", "page_size", "page_token")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    types: _containers.RepeatedScalarFieldContainer[str]
    page_size: int
    page_token: str
    def __init__(self, organization_id: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpsertPlanRequest(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: _plan_pb2.Plan
    def __init__(self, plan: _Optional[_Union[_plan_pb2.Plan, _Mapping]] = ...) -> None: ...

class UpsertPlanResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: _plan_pb2.Plan
    def __init__(self, plan: _Optional[_Union[_plan_pb2.Plan, _Mapping]] = ...) -> None: ...

class SetMeterPriceRequest(_message.Message):
    __slots__ = ("tier", "price", "effective_time")
    TIER_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    tier: _common_pb2.Tier
    price: _plan_pb2.PlanPrice
    effective_time: _timestamp_pb2.Timestamp
    def __init__(self, tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., price: _Optional[_Union[_plan_pb2.PlanPrice, _Mapping]] = ..., effective_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetMeterPriceResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: _plan_pb2.Plan
    def __init__(self, plan: _Optional[_Union[_plan_pb2.Plan, _Mapping]] = ...) -> None: ...

class ListAuditEntriesRequest(_message.Message):
    __slots__ = ("organization_id", "entity_id", "page_size", "page_token")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    entity_id: str
    page_size: int
    page_token: str
    def __init__(self, organization_id: _Optional[str] = ..., entity_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAuditEntriesResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_audit_pb2.AuditEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[_audit_pb2.AuditEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
