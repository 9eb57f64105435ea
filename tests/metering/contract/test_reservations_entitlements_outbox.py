"""Contract: reservations (one per organisation and key), entitlements (the newest version
wins), outbox events (once per dedupe key)."""

from __future__ import annotations

from dataclasses import replace

from taskforge_metering.application.ports import UnitOfWorkFactory
from tests.metering.contract.builders import (
    ORG,
    OTHER,
    at,
    entitlements,
    outbox_event,
    reservation,
    row_id,
)


async def test_a_reservation_key_is_taken_once_per_organisation(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    original = reservation(1, "k", quantity="2.5")
    same_key = reservation(2, "k", quantity="9")
    elsewhere = reservation(3, "k", organization_id=OTHER)
    async with unit_of_work() as uow:
        assert await uow.store.insert_reservation(original) is True
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.store.insert_reservation(same_key) is False
        assert await uow.store.insert_reservation(elsewhere) is True
        await uow.commit()
    async with unit_of_work() as uow:
        store = uow.store
        assert await store.get_reservation(original.id) == original
        assert await store.get_reservation(original.id, for_update=True) == original
        assert await store.get_reservation(same_key.id) is None
        assert await store.get_reservation_by_key(ORG, "k") == original
        assert await store.get_reservation_by_key(OTHER, "k") == elsewhere
        assert await store.get_reservation_by_key(ORG, "missing") is None
        assert await store.get_reservation(row_id(99)) is None


async def test_a_reservation_changes_status(unit_of_work: UnitOfWorkFactory) -> None:
    held, other = reservation(1, "k"), reservation(2, "l")
    async with unit_of_work() as uow:
        await uow.store.insert_reservation(held)
        await uow.store.insert_reservation(other)
        await uow.commit()
    async with unit_of_work() as uow:
        await uow.store.set_reservation_status(held.id, "committed", row_id(50))
        await uow.store.set_reservation_status(row_id(99), "released")  # unknown: no change
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.store.get_reservation(held.id) == replace(
            held, status="committed", record_id=row_id(50)
        )
        assert await uow.store.get_reservation(other.id) == other
        assert await uow.store.get_reservation(row_id(99)) is None
        await uow.store.set_reservation_status(held.id, "released")  # clears the record id
        assert await uow.store.get_reservation_by_key(ORG, "k") == replace(held, status="released")


async def test_the_newest_entitlements_version_wins(unit_of_work: UnitOfWorkFactory) -> None:
    v2, v1 = entitlements(2, tier="team", limit="20"), entitlements(1, tier="free", limit="1")
    other = entitlements(5, organization_id=OTHER)
    async with unit_of_work() as uow:
        await uow.store.save_entitlements(v2, at(10))
        await uow.store.save_entitlements(other, at(10))
        await uow.commit()
    async with unit_of_work() as uow:
        await uow.store.save_entitlements(v1, at(11))  # older: ignored
        await uow.store.save_entitlements(replace(v2, tier="changed"), at(11))  # same: ignored
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.store.get_entitlements([ORG, OTHER, row_id(9)]) == {ORG: v2, OTHER: other}
        assert await uow.store.get_entitlements([]) == {}
        v3 = entitlements(3, limit="30")
        await uow.store.save_entitlements(v3, at(12))
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.store.get_entitlements([ORG], for_update=True) == {ORG: v3}


async def test_outbox_events_are_stored_once_per_dedupe_key(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    async with unit_of_work() as uow:
        assert await uow.store.add_outbox_events([]) == 0
        added = await uow.store.add_outbox_events(
            [outbox_event(1, "a"), outbox_event(2, "b"), outbox_event(3, "a")]
        )
        await uow.commit()
    assert added == 2
    async with unit_of_work() as uow:
        # The key is the dedupe key alone, whatever the organisation.
        added = await uow.store.add_outbox_events(
            [outbox_event(4, "b", OTHER), outbox_event(5, "c")]
        )
        await uow.commit()
    assert added == 1
