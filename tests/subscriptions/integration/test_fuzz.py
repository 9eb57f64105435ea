"""Every SubscriptionService RPC fuzzed through the real servers on SQLite and PostgreSQL
(SPEC §11): no answer is INTERNAL or UNKNOWN, each error is a SPEC §11 status, a request the
SPEC refuses fails, a failed request (and any read) changes no row, and memory stays bounded
under many huge, distinct requests.

As in tests/metering/integration/test_fuzz.py, hypothesis drives the async tests on the
session loop; the services are started once per module and database (`shared_services`), and
each example compares the rows just before and after its own call.
"""

from __future__ import annotations

import enum
import gc
import tracemalloc
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from taskforge.common.v1 import common_pb2
from taskforge.subscriptions.v1 import subscription_service_pb2 as pb
from taskforge_common.grpc.auth import Scope, issue_token
from taskforge_subscriptions.transport.servicer import METHOD_SCOPES, SERVICE_NAME
from tests.ci import in_ci
from tests.metering.service_client import SECRET
from tests.metering.strategies import SPEC_STATUSES, Code
from tests.subscriptions import strategies as fuzz
from tests.subscriptions.integration.calls import (
    ORG,
    changed_tables,
    raw_channel,
    snapshot,
    subscribe,
)
from tests.subscriptions.service_client import Metadata, ServiceDatabases, Services

pytest_plugins = ["tests.subscriptions.integration.served"]

EXAMPLES = 25  # per RPC and database: 1,000 calls in all
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=in_ci(),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
METHODS = [m.name for m in pb.DESCRIPTOR.services_by_name["SubscriptionService"].methods]
RESPONSES: dict[str, type[Message]] = {m: getattr(pb, f"{m}Response") for m in METHODS}


class Auth(enum.Enum):
    OPERATOR = "billing:admin, no organisation"
    CUSTOMER = "billing:read and billing:write, bound to ORG"
    STRANGER = "billing:admin, bound to another organisation"
    NONE = "no token"
    EXPIRED = "an expired token"
    FORGED = "a token signed with another secret"
    NO_SCOPE = "usage:write and limits:read only"


auths = st.sampled_from([Auth.OPERATOR] * 8 + [Auth.CUSTOMER] * 4 + list(Auth))


def metadata_of(services: Services, auth: Auth) -> Metadata:
    now = services.clock.now()
    if auth is Auth.OPERATOR:
        return services.operator()
    if auth is Auth.CUSTOMER:
        return services.customer(ORG)
    if auth is Auth.STRANGER:
        return services.auth([Scope.BILLING_ADMIN], str(uuid.uuid4()), "stranger")
    if auth is Auth.NO_SCOPE:
        return services.platform(ORG)
    if auth is Auth.NONE:
        return ()
    secret = "another-secret-that-is-long-enough-for-hs256" if auth is Auth.FORGED else SECRET
    at = now - timedelta(hours=2) if auth is Auth.EXPIRED else now
    token = issue_token(secret, "x", [scope.value for scope in Scope], now=at)
    return (("authorization", f"Bearer {token}"),)


@dataclass
class Fuzzed:
    services: Services
    databases: ServiceDatabases
    invoice_id: str
    # (tier, usage type, second, microsecond) of every meter price in the book: the seed's
    # from 2000-01-01 and those the fuzz added.
    priced: set[tuple[int, int, int, int]] = field(default_factory=set)


@pytest.fixture(scope="module")
async def fuzzed(
    shared_services: Services, subscriptions_grpc_databases: ServiceDatabases
) -> Fuzzed:
    created = await subscribe(shared_services, ORG)
    await shared_services.relay()
    fuzzed = Fuzzed(shared_services, subscriptions_grpc_databases, created.invoice.id)
    fuzzed.priced = {(t, u, fuzz.EARLIEST, 0) for t in range(1, 5) for u in range(1, 8)}
    return fuzzed


def known_duplicate_price(fuzzed: Fuzzed, request: Any) -> bool:
    """A meter price at an instant the (tier, meter) has one already: refused ALREADY_EXISTS
    (PRICE_EXISTS; test_bad_input.py), which the field oracle cannot foresee; the fuzz steps
    around it and records what it adds."""
    if not request.HasField("effective_time"):
        return False  # now: the clock does not move in this module, but the key is unique
    stamp = request.effective_time
    key = (request.tier, request.price.usage_type, stamp.seconds, stamp.nanos // 1000)
    if key in fuzzed.priced:
        return True
    fuzzed.priced.add(key)
    return False


def test_the_fuzz_covers_every_rpc() -> None:
    assert set(fuzz.REQUESTS) == set(METHODS)
    assert set(METHOD_SCOPES) == {f"/{SERVICE_NAME}/{m}" for m in METHODS}
    for method in METHODS:
        assert isinstance(fuzz.refusals(method, getattr(pb, f"{method}Request")()), list)


async def send(
    fuzzed: Fuzzed, method: str, payload: bytes, metadata: Metadata
) -> tuple[Any, Code | None, str]:
    call = raw_channel(fuzzed.services).unary_unary(
        f"/{SERVICE_NAME}/{method}",
        request_serializer=None,
        response_deserializer=RESPONSES[method].FromString,
    )
    try:
        return await call(payload, metadata=metadata, timeout=60), None, ""
    except grpc.aio.AioRpcError as error:
        return None, error.code(), error.details() or ""


@pytest.mark.parametrize("method", METHODS)
@FUZZ
@given(data=st.data(), auth=auths)
async def test_every_rpc_answers_arbitrary_fields_as_spec_11_says(
    fuzzed: Fuzzed, method: str, data: st.DataObject, auth: Auth
) -> None:
    request = data.draw(fuzz.REQUESTS[method], label="request")
    if getattr(request, "invoice_id", None) == fuzz.ORG_INVOICE:
        request.invoice_id = fuzzed.invoice_id
    if method == "SetMeterPrice":
        assume(not known_duplicate_price(fuzzed, request))
    refused = fuzz.refusals(method, request)
    before = await snapshot(fuzzed.databases.subscriptions)
    _, code, details = await send(
        fuzzed, method, request.SerializeToString(), metadata_of(fuzzed.services, auth)
    )
    after = await snapshot(fuzzed.databases.subscriptions)
    note(f"{auth.value}; SPEC refuses {refused}; answered {code} {details[:300]!r}")

    assert code not in (Code.INTERNAL, Code.UNKNOWN), details
    assert code is None or code in SPEC_STATUSES, (code, details)
    if auth in (Auth.NONE, Auth.EXPIRED, Auth.FORGED):
        assert code is Code.UNAUTHENTICATED
    elif auth is Auth.NO_SCOPE:
        assert code is Code.PERMISSION_DENIED
    elif refused:
        assert code is not None, f"accepted what SPEC §11 refuses: {refused}"
    if code is not None or method in fuzz.READS:
        assert changed_tables(before, after) == [], "a failed request or a read changed rows"


# -- memory ----------------------------------------------------------------------------------


def _huge_requests(serial: int) -> list[tuple[str, Message]]:
    """A request per RPC (but ListPlans) whose strings are ~64 KB and unlike any other's."""
    big = f"{serial:08d}" + "x" * 65_536
    limit = common_pb2.Limit(usage_type=common_pb2.USAGE_TYPE_API_CALL, max=big)
    return [
        ("CreateSubscription", pb.CreateSubscriptionRequest(organization_id=big, request_id=big)),
        (
            "CreateSubscription",
            pb.CreateSubscriptionRequest(
                organization_id=str(uuid.UUID(int=serial + 1)),
                tier=common_pb2.TIER_CUSTOM,
                billing_cycle=common_pb2.BILLING_CYCLE_MONTHLY,
                custom_price_per_month=big,
                custom_limits=[limit],
                request_id=big,
            ),
        ),
        ("GetSubscription", pb.GetSubscriptionRequest(organization_id=big)),
        (
            "ChangeTier",
            pb.ChangeTierRequest(organization_id=ORG, tier=common_pb2.TIER_PRO, request_id=big),
        ),
        ("CancelSubscription", pb.CancelSubscriptionRequest(organization_id=big)),
        ("ListInvoices", pb.ListInvoicesRequest(organization_id=ORG, page_token=big)),
        ("GetInvoice", pb.GetInvoiceRequest(invoice_id=big)),
        ("GetInvoicePdf", pb.GetInvoicePdfRequest(invoice_id=big)),
        ("PreviewInvoice", pb.PreviewInvoiceRequest(organization_id=big)),
        ("GetBillingSummary", pb.GetBillingSummaryRequest(organization_id=big)),
        ("RunBillingCycle", pb.RunBillingCycleRequest(request_id=big)),
        ("VoidInvoice", pb.VoidInvoiceRequest(invoice_id=big, reason=big)),
        ("ApplyPayment", pb.ApplyPaymentRequest(invoice_id=big, payment_id=big, amount=big)),
        ("GetCreditBalance", pb.GetCreditBalanceRequest(organization_id=big)),
        ("ListCreditNotes", pb.ListCreditNotesRequest(organization_id=ORG, page_token=big)),
        ("SetTaxRate", pb.SetTaxRateRequest(organization_id=ORG, tax_rate=big)),
        ("ListEvents", pb.ListEventsRequest(organization_id=ORG, types=[big, big])),
        ("UpsertPlan", pb.UpsertPlanRequest()),
        ("SetMeterPrice", pb.SetMeterPriceRequest(tier=common_pb2.TIER_PRO)),
        ("ListAuditEntries", pb.ListAuditEntriesRequest(entity_id=big, page_token=big)),
    ]


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_memory_stays_bounded_under_distinct_huge_inputs(fuzzed: Fuzzed) -> None:
    """The servers run in this process: what they keep of 500 distinct ~64 KB requests shows
    in its traced allocations and its RSS."""
    operator = fuzzed.services.operator()

    async def round_of(serials: range) -> int:
        sent = 0
        for serial in serials:
            for method, request in _huge_requests(serial):
                payload = request.SerializeToString()
                sent += len(payload)
                _, code, details = await send(fuzzed, method, payload, operator)
                assert code is Code.INVALID_ARGUMENT, (method, code, details[:200])
        return sent

    await round_of(range(10))  # warm-up: connections, buffers, lazily built state
    gc.collect()
    rss_before = _rss()
    tracemalloc.start()
    try:
        sent = await round_of(range(10, 35))
        gc.collect()
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = _rss() - rss_before
    assert sent > 25 * 2**20
    assert retained < 3 * 2**20, f"{retained} bytes kept after {sent} bytes of bad input"
    assert rss_growth < 32 * 2**20, f"RSS grew {rss_growth} bytes after {sent} bytes"
