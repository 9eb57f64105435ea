"""UpsertEntitlements: the subscriptions service pushes its view; older versions are ignored."""

from __future__ import annotations

from taskforge_common.clock import Clock
from taskforge_metering.application.caller import Caller
from taskforge_metering.application.ports import UnitOfWorkFactory
from taskforge_metering.domain.entitlements import Entitlements, usage_window


class EntitlementUpdates:
    def __init__(self, unit_of_work: UnitOfWorkFactory, clock: Clock) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock

    async def upsert(self, entitlements: Entitlements, caller: Caller) -> Entitlements:
        """Store `entitlements` unless a newer version is stored; answer what is stored now."""
        org = entitlements.organization_id
        caller.ensure_access(org)
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            store = uow.store
            current = (await store.get_entitlements([org], for_update=True)).get(org)
            if not entitlements.supersedes(current):
                assert current is not None
                return current
            await store.save_entitlements(entitlements, now)
            old_window = usage_window(current, now)
            new_window = usage_window(entitlements, now)
            if new_window != old_window:
                # A new anchor cuts different monthly windows: recount the current one from the
                # stored events so limits count exactly what happened inside it.
                totals = await store.sum_counters(org, new_window.start, new_window.end)
                await store.replace_counters(org, new_window, totals)
            await uow.commit()
        return entitlements
