"""Operators edit the price book (SPEC §2: prices are data): a tier's fee, limits and features,
and meter prices that take effect from an instant, keeping earlier prices as history."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from taskforge_common.caller import Caller
from taskforge_common.clock import Clock
from taskforge_common.errors import AlreadyExists, InvalidArgument, NotFound, Reason
from taskforge_subscriptions.application.changes import ChangeLog
from taskforge_subscriptions.application.ports import UnitOfWorkFactory
from taskforge_subscriptions.domain.plans import MeterPrice, Plan, Tier


class PriceBookAdmin:
    def __init__(self, unit_of_work: UnitOfWorkFactory, clock: Clock) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock

    async def upsert_plan(self, plan: Plan, caller: Caller) -> Plan:
        caller.ensure_admin("editing the price book")
        caller.ensure_unbound("editing the price book")
        if (plan.tier is Tier.CUSTOM) != (plan.price_per_month is None):
            raise InvalidArgument(
                "price_per_month is set for every tier but custom (priced per subscription)",
                field="plan.price_per_month",
            )
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            plans = await uow.price_book.plans()
            before = plans.get(plan.tier)
            await uow.price_book.save_plan(replace(plan, prices={}), now)
            await ChangeLog(uow, caller, now).audit(
                "plan.updated",
                "plan",
                plan.tier,
                None,
                None if before is None else _plan_terms(before),
                _plan_terms(plan),
            )
            await uow.commit()
        async with self._unit_of_work.reader() as reader:
            return (await reader.price_book.plans())[plan.tier]

    async def set_price(
        self, tier: Tier, price: MeterPrice, effective_from: datetime | None, caller: Caller
    ) -> Plan:
        caller.ensure_admin("editing the price book")
        caller.ensure_unbound("editing the price book")
        now = self._clock.now()
        since = effective_from or now
        async with self._unit_of_work() as uow:
            plans = await uow.price_book.plans()
            if tier not in plans:
                raise NotFound(f"no {tier} plan")
            if not await uow.price_book.add_price(tier, price, since):
                raise AlreadyExists(
                    f"{price.usage_type} on {tier} already has a price from {since.isoformat()}:"
                    " prices are history, add one from another instant",
                    reason=Reason.PRICE_EXISTS,
                    field="effective_time",
                )
            await ChangeLog(uow, caller, now).audit(
                "price.added",
                "plan",
                tier,
                None,
                None,
                {"price": price, "effective_from": since},
            )
            await uow.commit()
        async with self._unit_of_work.reader() as reader:
            return (await reader.price_book.plans())[tier]


def _plan_terms(plan: Plan) -> dict[str, object]:
    return {
        "tier": plan.tier,
        "currency": plan.currency,
        "price_per_month": plan.price_per_month,
        "limits": dict(plan.limits),
        "priority_support": plan.priority_support,
        "custom_domains": plan.custom_domains,
    }
