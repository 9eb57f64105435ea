"""What the gRPC tests of the subscriptions service share: the organisations they act for, the
answer of a refused call decoded (status, ErrorInfo reason, BadRequest field paths), a
snapshot of every row (a refused call writes nothing) and the common first steps."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy import select

from taskforge.common.v1 import common_pb2
from taskforge.subscriptions.v1 import subscription_service_pb2 as pb
from taskforge_common.db.engine import Database
from taskforge_common.grpc.errors import error_details
from taskforge_subscriptions.storage import tables
from tests.subscriptions.service_client import Metadata, Services

# The shared clock's first instant: a month of 31 days begins (SPEC §5's worked example).
START = datetime(2026, 3, 1, tzinfo=UTC)
ORG = "3f0c8a52-6d1e-4b7a-9c2d-1a2b3c4d5e01"
OTHER_ORG = "8d4e2f10-9a3b-4c5d-8e6f-7a8b9c0d1e02"
# An organisation no test ever subscribes.
NOBODY = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e03"
Code = grpc.StatusCode


def fresh_org() -> str:
    """An organisation of the test's own: the audit trail is never emptied between tests."""
    return str(uuid.uuid4())


# -- refused calls ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """What a failed call answered: its status, ErrorInfo reason and BadRequest field paths."""

    code: Code
    reason: str
    fields: tuple[str, ...]
    details: str

    @property
    def summary(self) -> tuple[Code, str, tuple[str, ...]]:
        return self.code, self.reason, self.fields


def refusal_of(error: grpc.aio.AioRpcError) -> Refusal:
    details = error_details(error)
    reason = details.info.reason if details.info is not None else ""
    fields = (
        tuple(v.field for v in details.bad_request.field_violations)
        if details.bad_request is not None
        else ()
    )
    return Refusal(error.code(), reason, fields, error.details() or "")


async def refused(call: Awaitable[Any]) -> Refusal:
    """The refusal of `call`, which must fail."""
    try:
        answer = await call
    except grpc.aio.AioRpcError as error:
        return refusal_of(error)
    raise AssertionError(f"the call succeeded: {answer}")


async def outcome(call: Awaitable[Any]) -> tuple[Any, Refusal | None]:
    """(response, None) or (None, refusal)."""
    try:
        return await call, None
    except grpc.aio.AioRpcError as error:
        return None, refusal_of(error)


def raw_channel(services: Services) -> grpc.aio.Channel:
    """The channel of the subscriptions stub, for calls it cannot make (raw bytes). The harness
    does not expose it, so it is read off a multicallable."""
    channel: grpc.aio.Channel = services.subscriptions.ListPlans._python_channel  # type: ignore[attr-defined]
    return channel


# -- rows ------------------------------------------------------------------------------------

Snapshot = dict[str, list[str]]


async def snapshot(database: Database) -> Snapshot:
    """Every row of every subscriptions table, in a stable order (the tests keep them few)."""
    async with database.read_only_transaction() as reader:
        taken: Snapshot = {}
        for table in tables.metadata.sorted_tables:
            rows = await reader.session.execute(select(table))
            taken[table.name] = sorted(repr(tuple(row)) for row in rows)
        return taken


def changed_tables(before: Snapshot, after: Snapshot) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


# -- common steps ----------------------------------------------------------------------------


async def subscribe(
    services: Services,
    organization_id: str = ORG,
    tier: int = common_pb2.TIER_STARTER,
    cycle: int = common_pb2.BILLING_CYCLE_MONTHLY,
    metadata: Metadata | None = None,
    **fields: Any,
) -> pb.CreateSubscriptionResponse:
    request = pb.CreateSubscriptionRequest(
        organization_id=organization_id,
        tier=tier,  # type: ignore[arg-type]
        billing_cycle=cycle,  # type: ignore[arg-type]
        auto_renew=True,
        **fields,
    )
    answer: pb.CreateSubscriptionResponse = await services.subscriptions.CreateSubscription(
        request, metadata=metadata or services.customer(organization_id)
    )
    return answer
