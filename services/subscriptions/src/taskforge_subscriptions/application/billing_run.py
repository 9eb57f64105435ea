"""RunBillingCycle (SPEC §4, §6, §7): close every period that has ended, finalize the drafts whose
grace is over, mark unpaid invoices overdue and suspend subscriptions overdue too long.

Safe to run twice at once and to re-run after a crash at any point: each subscription and each
invoice changes in a transaction of its own that first locks it (skipping rows another run
holds) and re-checks that the change is still due; the database's uniqueness constraint keeps a
second period-end invoice out whatever happens. Usage is read from metering in one call per
batch, before the transactions, so no lock is held across a network call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from taskforge_common.caller import Caller
from taskforge_common.clock import Clock
from taskforge_common.errors import Unavailable
from taskforge_common.money import Money
from taskforge_common.periods import Period
from taskforge_subscriptions.application.changes import ChangeLog
from taskforge_subscriptions.application.invoicing import (
    InvariantViolation,
    finalize,
    period_end_draft,
    tax_rate_of,
)
from taskforge_subscriptions.application.ports import UnitOfWork, UnitOfWorkFactory
from taskforge_subscriptions.application.usage import UsageRequest, UsageSource, rate_requests
from taskforge_subscriptions.domain.invoices import (
    OPEN_STATUSES,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    compute_totals,
)
from taskforge_subscriptions.domain.proration import segment_violations
from taskforge_subscriptions.domain.subscriptions import (
    Subscription,
    SubscriptionStatus,
    fee_segments,
    periods_to_close,
    suspension_cutoff,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BillingSettings:
    # Period-end invoices stay draft this long so late usage still counts (SPEC §4).
    invoice_grace: timedelta
    # An invoice overdue this long makes its subscription past due (SPEC §7).
    suspension_grace: timedelta
    default_tax_rate: Decimal
    # Subscriptions (and invoices) handled per metering call and per read.
    batch_size: int = 200
    # Subscriptions changed at once, each in its own transaction. On SQLite transactions run
    # one after another whatever this says.
    concurrency: int = 1


@dataclass(slots=True)
class RunSummary:
    invoices_created: int = 0
    invoices_finalized: int = 0
    subscriptions_renewed: int = 0
    subscriptions_canceled: int = 0
    invoices_overdue: int = 0
    # Drafts whose numbers did not add up: left for an operator, logged with the numbers.
    invoices_held: int = 0
    subscriptions_suspended: int = 0
    # Subscriptions or invoices whose step failed unexpectedly (logged with the traceback):
    # left as they were for the next run, while the others are billed.
    steps_failed: int = 0


class _Busy(Exception):
    """Another run holds a row this step needs; the step is left for a later run."""


class BillingRun:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        usage: UsageSource,
        clock: Clock,
        settings: BillingSettings,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._usage = usage
        self._clock = clock
        self._settings = settings

    async def run_as_of(self, as_of: datetime | None, caller: Caller) -> RunSummary:
        """RunBillingCycle: as of now, or as of an operator's `as_of` (back-dating and tests)."""
        caller.ensure_unbound("a billing run")
        if as_of is not None:
            caller.ensure_admin("as_of")
        return await self.run(as_of or self._clock.now(), caller)

    async def run(self, as_of: datetime, caller: Caller) -> RunSummary:
        summary = RunSummary()
        await self._close_periods(as_of, caller, summary)
        await self._finalize_drafts(as_of, caller, summary)
        await self._mark_overdue(as_of, caller, summary)
        await self._suspend(as_of, caller, summary)
        return summary

    # Period ends ---------------------------------------------------------------------------

    async def _close_periods(self, as_of: datetime, caller: Caller, summary: RunSummary) -> None:
        """Round after round, close the oldest open period of each due subscription, until
        none is due or a round makes no progress (the rest is held by another run)."""
        failed: set[str] = set()  # not tried again in this run
        while True:
            async with self._unit_of_work.reader() as reader:
                due = [
                    s
                    for s in await reader.subscriptions.due(
                        as_of, self._settings.batch_size + len(failed)
                    )
                    if s.id not in failed
                ]
                if not due:
                    return
                segments = await reader.subscriptions.segments([s.id for s in due])
                history = await reader.price_book.price_history(
                    {seg.tier for own in segments.values() for seg in own}
                )
            periods = [next(iter(periods_to_close(s, as_of))) for s in due]
            usage = await rate_requests(
                self._usage,
                [
                    UsageRequest(
                        s.organization_id, s.anchor, p.start, p.end, segments[s.id], s.currency
                    )
                    for s, p in zip(due, periods, strict=True)
                ],
                history,
            )
            closed = await self._concurrently(
                [
                    ({seen.id}, self._close_period(seen, lines, caller, summary))
                    for seen, lines in zip(due, usage, strict=True)
                ],
                summary,
                failed,
            )
            if not any(closed):
                return

    async def _close_period(
        self,
        seen: Subscription,
        usage_lines: Sequence[InvoiceLine],
        caller: Caller,
        summary: RunSummary,
    ) -> bool:
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            current = await uow.subscriptions.lock(seen.id)
            if current is None or current.version != seen.version:
                return False  # another run holds it or has just closed this period
            period = current.current_period
            draft = period_end_draft(
                current,
                usage_lines,
                await tax_rate_of(uow, current.organization_id, self._settings.default_tax_rate),
                now,
            )
            created = await uow.invoices.add(draft)
            changes = ChangeLog(uow, caller, now)
            if current.renews:
                changed = current.revised(now, period_index=current.period_index + 1)
                action, event = "subscription.renewed", "subscription.updated"
                summary.subscriptions_renewed += 1
            else:
                changed = current.revised(
                    now, status=SubscriptionStatus.CANCELED, canceled_at=period.end
                )
                action = event = "subscription.canceled"
                summary.subscriptions_canceled += 1
            if not await uow.subscriptions.update(changed, current.version):
                return False
            if created:
                await changes.invoice_changed("invoice.drafted", None, draft, None)
                summary.invoices_created += 1
            await changes.subscription_changed(action, current, changed, event)
            await uow.commit()
        return True

    # Finalization ---------------------------------------------------------------------------

    async def _finalize_drafts(self, as_of: datetime, caller: Caller, summary: RunSummary) -> None:
        """Drafts whose grace is over are re-rated (late usage inside the grace counts) and
        finalized; one whose numbers do not add up is held, the others go on."""
        ended_before = as_of - self._settings.invoice_grace
        # Drafts held for an operator or busy in another run: not tried again in this run.
        passed: set[str] = set()
        while True:
            async with self._unit_of_work.reader() as reader:
                drafts = [
                    d
                    for d in await reader.invoices.drafts_to_finalize(
                        ended_before, self._settings.batch_size + len(passed)
                    )
                    if d.id not in passed
                ]
                if not drafts:
                    return
                subscriptions = await reader.subscriptions.get_many(
                    {d.subscription_id for d in drafts}
                )
                segments = await reader.subscriptions.segments(list(subscriptions))
                history = await reader.price_book.price_history(
                    {seg.tier for own in segments.values() for seg in own}
                )
            requests = []
            for draft in drafts:
                owner = subscriptions[draft.subscription_id]
                requests.append(
                    UsageRequest(
                        draft.organization_id,
                        owner.anchor,
                        draft.period_start,
                        draft.period_end,
                        segments[owner.id],
                        draft.currency,
                    )
                )
            rated = await rate_requests(self._usage, requests, history)
            # One subscription's drafts are finalized in period order (credit is applied to the
            # older one first); different subscriptions' at once.
            queues: dict[str, list[tuple[Invoice, Sequence[InvoiceLine], list[str]]]] = {}
            for draft, usage in zip(drafts, rated, strict=True):
                owner = subscriptions[draft.subscription_id]
                billed = _billed_period(draft)
                coverage = segment_violations(
                    billed, fee_segments(billed, segments[owner.id], owner.cycle.months)
                )
                queues.setdefault(owner.id, []).append((draft, usage, coverage))
            await self._concurrently(
                [
                    (
                        {draft.id for draft, _, _ in queue},
                        self._finalize_in_order(queue, caller, summary, passed),
                    )
                    for queue in queues.values()
                ],
                summary,
                passed,
            )

    async def _finalize_in_order(
        self,
        queue: list[tuple[Invoice, Sequence[InvoiceLine], list[str]]],
        caller: Caller,
        summary: RunSummary,
        passed: set[str],
    ) -> bool:
        ordered = sorted(queue, key=lambda item: item[0].period_start)
        for position, (draft, usage, coverage) in enumerate(ordered):
            if not await self._finalize(draft, usage, coverage, caller, summary):
                # The later drafts wait for this one: none is finalized ahead of it.
                passed.update(later.id for later, _, _ in ordered[position:])
                return False
        return True

    async def _finalize(
        self,
        seen: Invoice,
        usage: Sequence[InvoiceLine],
        coverage: Sequence[str],
        caller: Caller,
        summary: RunSummary,
    ) -> bool:
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            draft = await uow.invoices.lock(seen.id)
            if draft is None or draft.status is not InvoiceStatus.DRAFT:
                return True  # finalized by another run meanwhile
            kept = [line for line in draft.lines if line.kind is not LineKind.USAGE]
            lines = (*usage, *kept)
            rerated = replace(
                draft,
                lines=lines,
                totals=compute_totals(
                    (line.amount for line in lines),
                    draft.totals.tax_rate,
                    Money.zero(draft.currency),
                ),
            )
            if rerated.lines != draft.lines and not await uow.invoices.replace_draft(rerated):
                return True
            changes = ChangeLog(uow, caller, now)
            try:
                if coverage:
                    raise InvariantViolation("; ".join(coverage))
                await finalize(
                    uow,
                    changes,
                    rerated,
                    now,
                    before_numbering=lambda: self._close_usage(uow, changes, rerated, now),
                )
            except InvariantViolation:
                logger.error(
                    "invoice %s held as a draft for an operator",
                    draft.id,
                    extra={"problems": list(coverage)},
                )
                summary.invoices_held += 1
                return False
            except _Busy:
                return False  # rolled back; a later run finalizes it
            await uow.commit()
        summary.invoices_finalized += 1
        return True

    async def _close_usage(
        self, uow: UnitOfWork, changes: ChangeLog, invoice: Invoice, now: datetime
    ) -> None:
        """Usage before the end of a finalized period is closed in metering (SPEC §4)."""
        subscription = await uow.subscriptions.lock(invoice.subscription_id)
        if subscription is None:
            raise _Busy(invoice.subscription_id)
        closed = subscription.usage_closed_before
        if closed is not None and closed >= invoice.period_end:
            return
        changed = subscription.revised(now, usage_closed_before=invoice.period_end)
        if await uow.subscriptions.update(changed, subscription.version):
            await changes.subscription_changed(
                "subscription.usage_closed", subscription, changed, "subscription.updated"
            )

    # Overdue and suspension ------------------------------------------------------------------

    async def _mark_overdue(self, as_of: datetime, caller: Caller, summary: RunSummary) -> None:
        failed: set[str] = set()
        while True:
            async with self._unit_of_work.reader() as reader:
                late = [
                    i
                    for i in await reader.invoices.past_due(
                        as_of, self._settings.batch_size + len(failed)
                    )
                    if i.id not in failed
                ]
            if not late:
                return
            marked = await self._concurrently(
                [({seen.id}, self._mark_one_overdue(seen, caller, summary)) for seen in late],
                summary,
                failed,
            )
            if not any(marked):
                return

    async def _mark_one_overdue(self, seen: Invoice, caller: Caller, summary: RunSummary) -> bool:
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            invoice = await uow.invoices.lock(seen.id)
            if invoice is None or invoice.status not in OPEN_STATUSES - {InvoiceStatus.OVERDUE}:
                return False
            overdue = replace(invoice, status=InvoiceStatus.OVERDUE)
            if not await uow.invoices.transition(overdue, invoice.status):
                return False
            await ChangeLog(uow, caller, now).invoice_changed(
                "invoice.overdue", invoice, overdue, "invoice.overdue"
            )
            await uow.commit()
        summary.invoices_overdue += 1
        return True

    async def _suspend(self, as_of: datetime, caller: Caller, summary: RunSummary) -> None:
        due_before = suspension_cutoff(as_of, self._settings.suspension_grace)
        failed: set[str] = set()
        while True:
            async with self._unit_of_work.reader() as reader:
                overdue = [
                    subscription_id
                    for subscription_id in await reader.invoices.subscriptions_overdue_since(
                        due_before, self._settings.batch_size + len(failed)
                    )
                    if subscription_id not in failed
                ]
            if not overdue:
                return
            suspended = await self._concurrently(
                [({sid}, self._suspend_one(sid, caller, summary)) for sid in overdue],
                summary,
                failed,
            )
            if not any(suspended):
                return

    async def _suspend_one(self, subscription_id: str, caller: Caller, summary: RunSummary) -> bool:
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            current = await uow.subscriptions.lock(subscription_id)
            if current is None or current.status is not SubscriptionStatus.ACTIVE:
                return False
            changed = current.revised(now, status=SubscriptionStatus.PAST_DUE)
            if not await uow.subscriptions.update(changed, current.version):
                return False
            await ChangeLog(uow, caller, now).subscription_changed(
                "subscription.past_due", current, changed, "subscription.updated"
            )
            await uow.commit()
        summary.subscriptions_suspended += 1
        return True

    async def _concurrently(
        self,
        steps: Sequence[tuple[Collection[str], Coroutine[Any, Any, bool]]],
        summary: RunSummary,
        failed: set[str],
    ) -> list[bool]:
        """Run the steps (each its own transaction on rows of its own, with the ids of what it
        changes) with at most `settings.concurrency` at a time. A step that fails unexpectedly
        is logged and counted, and its ids go into `failed`, not to be tried again in this run:
        one broken subscription never stops the billing of the others. An unreachable
        database or metering ends the run (every step would fail the same way)."""
        slots = asyncio.Semaphore(self._settings.concurrency)

        async def bounded(ids: Collection[str], step: Coroutine[Any, Any, bool]) -> bool:
            async with slots:
                try:
                    return await step
                except Unavailable:
                    raise
                except Exception:
                    logger.exception(
                        "billing step for %s failed; left for the next run", sorted(ids)
                    )
                    summary.steps_failed += 1
                    failed.update(ids)
                    return False

        return list(await asyncio.gather(*(bounded(ids, step) for ids, step in steps)))


def _billed_period(invoice: Invoice) -> Period:
    """The stretch a period-end invoice bills usage for (shorter than the period when the
    subscription was canceled at once)."""
    return Period(invoice.period_start, invoice.period_end, 0)
