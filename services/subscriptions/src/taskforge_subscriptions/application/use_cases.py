"""Every use case of the subscriptions service, built over one unit-of-work factory, one view of
the metering service and one clock."""

from __future__ import annotations

from dataclasses import dataclass

from taskforge_common.clock import Clock
from taskforge_common.page_tokens import PageTokens
from taskforge_subscriptions.application.billing_run import BillingRun, BillingSettings
from taskforge_subscriptions.application.invoice_actions import InvoiceActions
from taskforge_subscriptions.application.ports import UnitOfWorkFactory
from taskforge_subscriptions.application.price_book import PriceBookAdmin
from taskforge_subscriptions.application.queries import BillingQueries
from taskforge_subscriptions.application.subscribing import SubscriptionUseCases
from taskforge_subscriptions.application.usage import UsageSource


@dataclass(frozen=True, slots=True)
class UseCases:
    subscriptions: SubscriptionUseCases
    billing: BillingRun
    invoices: InvoiceActions
    queries: BillingQueries
    price_book: PriceBookAdmin

    @classmethod
    def build(
        cls,
        unit_of_work: UnitOfWorkFactory,
        usage: UsageSource,
        clock: Clock,
        settings: BillingSettings,
        page_tokens: PageTokens,
    ) -> UseCases:
        return cls(
            subscriptions=SubscriptionUseCases(
                unit_of_work, usage, clock, settings.default_tax_rate
            ),
            billing=BillingRun(unit_of_work, usage, clock, settings),
            invoices=InvoiceActions(unit_of_work, clock, settings.suspension_grace),
            queries=BillingQueries(
                unit_of_work, usage, clock, page_tokens, settings.default_tax_rate
            ),
            price_book=PriceBookAdmin(unit_of_work, clock),
        )
