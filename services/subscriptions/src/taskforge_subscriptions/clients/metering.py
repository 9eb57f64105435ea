"""The metering service as the subscriptions service uses it: usage summaries for billing runs,
the current standing for the dashboard, and entitlement pushes relayed from the outbox.

One long-lived grpc.aio channel, a deadline on every call and the service's own token
(billing:read for the queries, billing:admin for UpsertEntitlements; bound to no organisation).

Failures are told apart by what retrying can do:

- queries (`summaries`, `standing`): a metering that is down, slow or shedding load answers
  `Unavailable`, which callers see as UNAVAILABLE (retry later); anything else is a fault of
  ours or of the deployment and raises `MeteringCallError` (INTERNAL to our callers, logged).
- pushes (`push_entitlements`): the relay retries a `DeliveryError` with backoff and parks a
  `PermanentDeliveryError`. Only a refusal of the message itself (INVALID_ARGUMENT,
  OUT_OF_RANGE, or a payload we cannot even read) is permanent: sending it again can never
  succeed, and the next version of the key supersedes it. Every other code, UNAUTHENTICATED and
  PERMISSION_DENIED included, fails every message alike and ends with the deployment's fault
  (a rotated secret, a metering rolled out without the RPC or the scope): it delays pushes,
  never loses them.

Error messages name the RPC and the status code only: neither the payload nor the peer's
details (which may quote request data) reach logs or the outbox's `last_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import metering_service_pb2_grpc, usage_pb2
from taskforge_common.clock import ensure_utc
from taskforge_common.decimals import parse_decimal
from taskforge_common.errors import InvalidArgument, Reason, Unavailable
from taskforge_common.grpc.channels import create_channel
from taskforge_common.jsonsafe import JsonValue
from taskforge_common.meters import UsageType
from taskforge_common.outbox import DeliveryError, OutboxMessage, PermanentDeliveryError
from taskforge_common.protobuf import USAGE_TYPE
from taskforge_subscriptions.application.usage import LimitStanding, UsageQuery, UsageStanding

logger = logging.getLogger(__name__)

# GetUsageSummaries answers at most this many queries per call (metering_service.proto).
MAX_QUERIES_PER_CALL = 1000
DEFAULT_DEADLINE_SECONDS = 5.0
# grpc waits up to 2 minutes between reconnection attempts to a peer that was down; metering
# is on the path of every billing run and dashboard view, so it is tried again within 10 s.
CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (("grpc.max_reconnect_backoff_ms", 10_000),)
# The outbox topic whose messages `push_entitlements` delivers.
ENTITLEMENTS_TOPIC = "metering.entitlements"

# A query may be retried later with hope of success.
_TRANSIENT_READ = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)
# Metering refused the pushed message itself: the same message will always be refused.
_REFUSED_MESSAGE = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE})

# application/changes.entitlements_of writes these.
_STATUSES = {
    "active": usage_pb2.ENTITLEMENT_STATUS_ACTIVE,
    "past_due": usage_pb2.ENTITLEMENT_STATUS_PAST_DUE,
    "none": usage_pb2.ENTITLEMENT_STATUS_NONE,
}
# GetCurrentUsage's fields: counters in the current monthly window, gauges at their level.
_CURRENT_FIELDS = {
    UsageType.JOB_EXECUTION: "jobs_executed",
    UsageType.ACTIVE_WORKERS: "active_workers",
    UsageType.QUEUES: "queues",
    UsageType.STORAGE: "storage_used_gb",
    UsageType.API_CALL: "api_calls_made",
    UsageType.DATA_TRANSFER: "data_transferred_gb",
}


class MeteringCallError(RuntimeError):
    """Metering refused a query for a reason retrying will not mend (a bug or a deployment
    fault): our callers hear INTERNAL, the log has the RPC and the code."""


class MeteringClient:
    """`UsageSource` over the metering service, plus the entitlements push for the outbox
    relay. Build it with `connect` inside the running event loop; `close` it at shutdown."""

    def __init__(self, channel: grpc.aio.Channel, *, deadline: float) -> None:
        if deadline <= 0:
            raise ValueError("the call deadline is positive")
        self._channel = channel
        self._stub = metering_service_pb2_grpc.MeteringServiceStub(channel)
        self._deadline = deadline

    @classmethod
    def connect(
        cls,
        address: str,
        token_provider: Callable[[], str],
        *,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
        options: Sequence[tuple[str, Any]] = CHANNEL_OPTIONS,
    ) -> MeteringClient:
        """A client with its own channel to `address` ("host:port"). `token_provider` is the
        service's `ServiceTokenSource` (billing:read and billing:admin, no organisation)."""
        channel = create_channel(
            address,
            default_timeout=deadline,
            interceptors=interceptors,
            token_provider=token_provider,
            options=options,
        )
        return cls(channel, deadline=deadline)

    async def close(self) -> None:
        await self._channel.close(grace=None)

    # UsageSource ------------------------------------------------------------------------------

    async def summaries(self, queries: Sequence[UsageQuery]) -> list[Mapping[UsageType, Decimal]]:
        """GetUsageSummaries in calls of at most 1,000 queries, one after the other (a billing
        run waits for them anyway, and metering is spared bursts), answers in query order."""
        answers: list[Mapping[UsageType, Decimal]] = []
        for first in range(0, len(queries), MAX_QUERIES_PER_CALL):
            chunk = queries[first : first + MAX_QUERIES_PER_CALL]
            request = pb.GetUsageSummariesRequest(
                queries=[
                    pb.UsageSummaryQuery(
                        organization_id=query.organization_id,
                        start_time=_timestamp(query.start),
                        end_time=_timestamp(query.end),
                    )
                    for query in chunk
                ]
            )
            response = await self._query(
                "GetUsageSummaries", self._stub.GetUsageSummaries(request, timeout=self._deadline)
            )
            if len(response.summaries) != len(chunk):
                raise MeteringCallError(
                    f"GetUsageSummaries answered {len(response.summaries)} summaries"
                    f" for {len(chunk)} queries"
                )
            with _malformed("GetUsageSummaries"):
                answers.extend(_quantities(summary.items) for summary in response.summaries)
        return answers

    async def standing(self, organization_id: str) -> UsageStanding:
        """GetCurrentUsage and CheckLimits of every limit (usage type unspecified), at once."""
        current_usage, limits = await asyncio.gather(
            self._query(
                "GetCurrentUsage",
                self._stub.GetCurrentUsage(
                    pb.GetCurrentUsageRequest(organization_id=organization_id),
                    timeout=self._deadline,
                ),
            ),
            self._query(
                "CheckLimits",
                self._stub.CheckLimits(
                    pb.CheckLimitsRequest(organization_id=organization_id),
                    timeout=self._deadline,
                ),
            ),
        )
        usage = current_usage.usage
        with _malformed("GetCurrentUsage and CheckLimits"):
            return UsageStanding(
                current={
                    usage_type: _decimal(getattr(usage, name), f"usage.{name}")
                    for usage_type, name in _CURRENT_FIELDS.items()
                },
                window_start=_instant(usage, "period_start"),
                window_end=_instant(usage, "period_end"),
                limits=[standing for status in limits.limits if (standing := _limit(status))],
            )

    async def _query(self, rpc: str, call: Any) -> Any:
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code in _TRANSIENT_READ:
                logger.warning("metering %s failed: %s", rpc, code.name)
                raise Unavailable(
                    "the metering service is unavailable; retry later",
                    reason=Reason.PEER_UNAVAILABLE,
                ) from None
            raise MeteringCallError(f"metering {rpc} answered {code.name}") from None

    # Outbox delivery --------------------------------------------------------------------------

    async def push_entitlements(self, message: OutboxMessage) -> None:
        """Deliver one `metering.entitlements` message: UpsertEntitlements of the payload that
        application/changes.entitlements_of wrote, at the message's version. Metering ignores
        a version not above the stored one, so a redelivery is harmless."""
        request = entitlements_request(message)
        try:
            await self._stub.UpsertEntitlements(request, timeout=self._deadline)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            text = f"metering UpsertEntitlements answered {code.name}"
            if code in _REFUSED_MESSAGE:
                raise PermanentDeliveryError(text) from None
            raise DeliveryError(text) from None


def entitlements_request(message: OutboxMessage) -> pb.UpsertEntitlementsRequest:
    """The UpsertEntitlements request of an outbox message; `PermanentDeliveryError` when the
    payload cannot be read (it never will be)."""
    payload = message.payload
    try:
        status = _STATUSES[_text(payload, "status")]
        limits = payload.get("limits") or {}
        if not isinstance(limits, dict):
            raise ValueError("limits")
        entitlements = usage_pb2.Entitlements(
            status=status,
            tier=_enum(common_pb2.Tier, "TIER_", payload.get("tier")),
            billing_cycle=_enum(
                common_pb2.BillingCycle, "BILLING_CYCLE_", payload.get("billing_cycle")
            ),
            period_anchor=_payload_instant(payload, "period_anchor"),
            current_period_start=_payload_instant(payload, "current_period_start"),
            current_period_end=_payload_instant(payload, "current_period_end"),
            limits=[
                common_pb2.Limit(
                    usage_type=f"USAGE_TYPE_{UsageType(usage_type).name}",
                    max="" if maximum is None else _limit_text(maximum),
                )
                for usage_type, maximum in sorted(limits.items())
            ],
            usage_closed_before=_payload_instant(payload, "usage_closed_before"),
            version=message.version,
        )
    except (KeyError, ValueError, TypeError, InvalidArgument):
        # The field's name only: values may be personal data.
        raise PermanentDeliveryError(
            f"entitlements payload of message {message.id} is malformed"
        ) from None
    return pb.UpsertEntitlementsRequest(organization_id=message.key, entitlements=entitlements)


def _text(payload: Mapping[str, JsonValue], name: str) -> str:
    value = payload[name]
    if not isinstance(value, str):
        raise ValueError(name)
    return value


def _enum(enum: Any, prefix: str, value: JsonValue) -> str | None:
    """ "pro" → "TIER_PRO" (ValueError when the enum has no such value); absent → None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(prefix)
    name = prefix + value.upper()
    enum.Value(name)
    return name


def _payload_instant(payload: Mapping[str, JsonValue], name: str) -> Timestamp | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(name)
    return _timestamp(datetime.fromisoformat(value))


def _limit_text(value: JsonValue) -> str:
    if not isinstance(value, str):
        raise ValueError("limit")
    parse_decimal(value, "limit")
    return value


def _timestamp(instant: datetime) -> Timestamp:
    timestamp = Timestamp()
    timestamp.FromDatetime(ensure_utc(instant))
    return timestamp


def _instant(message: Any, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    value: Timestamp = getattr(message, name)
    return value.ToDatetime(tzinfo=UTC)


@contextlib.contextmanager
def _malformed(rpc: str) -> Iterator[None]:
    """An answer metering should never give is metering's fault (INTERNAL to our callers, with
    the RPC in the log), never an INVALID_ARGUMENT about a field our caller did not send."""
    try:
        yield
    except (InvalidArgument, ValueError, OverflowError) as error:
        raise MeteringCallError(f"metering {rpc} answered a malformed response") from error


def _decimal(text: str, field: str) -> Decimal:
    return parse_decimal(text, field, allow_negative=True)


def _quantities(items: Sequence[usage_pb2.UsageSummaryItem]) -> dict[UsageType, Decimal]:
    quantities: dict[UsageType, Decimal] = {}
    for item in items:
        usage_type = USAGE_TYPE.by_number.get(item.usage_type)
        if usage_type is None:  # a meter newer than this service: it has no price here
            continue
        quantities[usage_type] = _decimal(item.quantity, "quantity")
    return quantities


def _limit(status: usage_pb2.LimitStatus) -> LimitStanding | None:
    usage_type = USAGE_TYPE.by_number.get(status.usage_type)
    if usage_type is None:
        return None
    return LimitStanding(
        usage_type=usage_type,
        limit=_decimal(status.limit, "limit") if status.limit else None,
        current=_decimal(status.current, "current"),
        remaining=_decimal(status.remaining, "remaining") if status.remaining else None,
        exceeded=status.exceeded,
    )
