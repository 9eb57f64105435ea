"""A client of the metering service's real grpc.aio server (its own composition root) on
127.0.0.1 port 0, for the integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.sdk.trace import TracerProvider

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import metering_service_pb2_grpc, usage_pb2
from taskforge_common.clock import ManualClock
from taskforge_common.config import AuthSettings, TelemetrySettings
from taskforge_common.db.engine import Database
from taskforge_common.grpc.auth import Scope, issue_token
from taskforge_common.grpc.server import RunningServer
from taskforge_common.telemetry import setup_telemetry
from taskforge_metering import bootstrap
from taskforge_metering.config import MeteringSettings

SECRET = "test-secret-that-is-long-enough-for-hs256"
ORG = "0b6f5d3e-3c55-4a4e-9a8e-7d0e0f7f1a01"
OTHER_ORG = "6e1c2a9b-7f3d-4f0e-8b1a-2c3d4e5f6a7b"
ALL_SCOPES = [scope.value for scope in Scope]


@dataclass
class Client:
    stub: metering_service_pb2_grpc.MeteringServiceAsyncStub
    clock: ManualClock
    # The stub's channel, for calls the stub cannot make (raw bytes, made-up methods).
    channel: grpc.aio.Channel | None = None

    def token(self, scopes: Sequence[str], organization_id: str | None = None) -> str:
        return issue_token(
            SECRET, "tester", scopes, organization_id=organization_id, now=self.clock.now()
        )

    def auth(
        self, scopes: Sequence[str] = ALL_SCOPES, organization_id: str | None = None
    ) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token(scopes, organization_id)}"),)


async def start_service(
    database: Database, clock: ManualClock, ingest_rate_per_second: int = 1_000_000
) -> RunningServer:
    """The metering server of the service's own composition root, on 127.0.0.1 port 0."""
    settings = MeteringSettings(
        database_url=database.url,
        host="127.0.0.1",
        port=0,
        database_pool_size=5,
        workers=1,
        ingest_rate_per_second=ingest_rate_per_second,
        shutdown_grace=timedelta(seconds=1),
        auth=AuthSettings(jwt_secret=SECRET),
        telemetry=TelemetrySettings("metering"),
    )
    telemetry = setup_telemetry(settings.telemetry, tracer_provider=TracerProvider())
    return await bootstrap.start(settings, database, telemetry, clock)


def stamp(instant: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(instant)
    return value


def usage_event(
    quantity: str = "1",
    key: str | None = None,
    organization_id: str = ORG,
    usage_type: common_pb2.UsageType | str = common_pb2.USAGE_TYPE_JOB_EXECUTION,
) -> usage_pb2.UsageEvent:
    return usage_pb2.UsageEvent(
        organization_id=organization_id,
        usage_type=usage_type,
        quantity=quantity,
        idempotency_key=key or str(uuid.uuid4()),
    )


async def grant(
    client: Client, organization_id: str = ORG, version: int = 1, **limits: str
) -> None:
    await client.stub.UpsertEntitlements(
        pb.UpsertEntitlementsRequest(
            organization_id=organization_id,
            entitlements=usage_pb2.Entitlements(
                status=usage_pb2.ENTITLEMENT_STATUS_ACTIVE,
                tier=common_pb2.TIER_STARTER,
                billing_cycle=common_pb2.BILLING_CYCLE_MONTHLY,
                period_anchor=stamp(datetime(2026, 3, 1, tzinfo=UTC)),
                limits=[
                    common_pb2.Limit(
                        usage_type=f"USAGE_TYPE_{k.upper()}",
                        max=v,
                    )
                    for k, v in limits.items()
                ],
                version=version,
            ),
        ),
        metadata=client.auth(),
    )


async def status_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call  # type: ignore[misc]
    return failure.value.code()
