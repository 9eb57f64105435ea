"""Hypothesis strategies for MeteringService requests full of hostile field values, and the
SPEC §11 oracle that says which of them must be refused, and the callers' tokens, good and bad.

The strategies mix well-formed values (so the requests reach the database) with the extremes
of every field kind: Timestamps and Durations at int64 and int32 limits and around the
2000/2100 bounds, odd and huge strings, unknown enum numbers, out-of-range page sizes, crafted
page tokens. `refusals(method, request)` lists what SPEC §11 says is wrong with a request: a
request with any must fail. It is deliberately partial: values the SPEC leaves open (" 1",
"1e3", "-0", a hyphenless UUID) are neither required to pass nor to fail.
"""

from __future__ import annotations

import base64
import enum
import re
import struct
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any, TypeVar, cast

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as pb
from taskforge.metering.v1 import usage_pb2
from taskforge_common.grpc.auth import issue_token
from tests.metering.service_client import ALL_SCOPES, ORG, OTHER_ORG, SECRET, Client

SERVICE = "taskforge.metering.v1.MeteringService"
Code = grpc.StatusCode
# What SPEC §11 lets a refused request answer: never INTERNAL or UNKNOWN.
SPEC_STATUSES = {
    Code.INVALID_ARGUMENT,
    Code.NOT_FOUND,
    Code.ALREADY_EXISTS,
    Code.FAILED_PRECONDITION,
    Code.PERMISSION_DENIED,
    Code.UNAUTHENTICATED,
    Code.RESOURCE_EXHAUSTED,
}

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EARLIEST = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())  # 946684800
LIMIT = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())  # exclusive, 4102444800
# The `clock` fixture's now (2026-03-10T12:00Z); usage may be stamped up to 5 minutes ahead.
NOW = int(datetime(2026, 3, 10, 12, tzinfo=UTC).timestamp())
SKEW = 300
# Usage before this instant belongs to a closed period (the fuzz tests grant it).
CLOSED_BEFORE = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
# Stands for the id of a reservation the test makes just before sending the request.
FRESH_RESERVATION = "<fresh reservation>"

T = TypeVar("T")

_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

# -- field values ----------------------------------------------------------------------------

NASTY_TEXT = [
    "",
    " ",
    "\t",
    "\n",
    "\x00",
    "a\x00b",
    "\x7f",
    "\x1b[31m",
    "\u200b",
    "\u202e",
    "\ufeff",
    "é",
    "日本",
    "🙂",
    "\U0010ffff",
    "0",
    "-0",
    "+0",
    "00",
    "007",
    "1e3",
    "1E+3",
    "1e-7",
    "NaN",
    "nan",
    "-NaN",
    "sNaN",
    "Infinity",
    "-inf",
    " 1",
    "1 ",
    "\t1\n",
    "1.",
    ".5",
    "1.5000000",
    "0x10",
    "1_000",
    "١٢٣",
    "１",
    "𝟙",
    "1,5",
    "--1",
    "-1",
    "-0.000001",
    "0.0000001",
    "1000000000000",
    "1000000000000.000001",
    "1000000000001",
    "9" * 40,
    "9" * 41,
    "0" * 39 + "1",
    "0" * 40 + "1",
    "1." + "0" * 38,
    "%s%n",
    "{}",
    "'; DROP TABLE usage_records; --",
    "null",
]

_characters = st.characters(exclude_categories=["Cs"])  # protobuf strings are valid UTF-8
short_text = st.text(_characters, max_size=40)
huge_text = st.builds(
    lambda unit, count: unit * count,
    st.sampled_from(["0", "9", "a", "-", "é", "🙂", "\x00", " "]),
    st.sampled_from([256, 4_097, 70_000, 300_000]),
)
odd_text = st.one_of(st.sampled_from(NASTY_TEXT), short_text, huge_text)


def mostly(good: st.SearchStrategy[T], anything: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """`good` five times in six, else `anything`: a request keeps one or two hostile fields,
    so the others' checks pass and it goes deep. Shrinks towards `good`."""
    return st.integers(0, 5).flatmap(lambda n: anything if n == 5 else good)


def _uuid_variants(value: uuid.UUID) -> list[str]:
    text = str(value)
    return [
        text.upper(),
        value.hex,
        f"{{{text}}}",
        f"urn:uuid:{text}",
        f" {text}",
        f"{text}\x00",
        f"{text}\n",
        text[:-1],
        text + "0",
        text.replace("-", "--"),
        text.replace("a", "g"),
        text.replace("-", "\u2010"),  # Unicode hyphen
        "0" + text[1:].replace("-", ""),
    ]


uuid_text = st.one_of(
    st.sampled_from([ORG, OTHER_ORG, ORG.upper()]),
    st.uuids().map(str),
    st.uuids().flatmap(lambda u: st.sampled_from(_uuid_variants(u))),
    odd_text,
)
# Mostly ORG: it has entitlements, so requests go all the way to the database.
organization_ids = mostly(st.sampled_from([ORG, ORG, OTHER_ORG]), uuid_text)

good_quantities = st.one_of(
    st.sampled_from(["1", "2.5", "0.000001", "10"]),
    st.decimals(min_value=0, max_value=1000, places=6).map(lambda d: f"{d:f}"),
)
any_quantities = st.one_of(
    st.sampled_from(["0", "1000000000000", "999999999999.999999"]),
    st.integers(-(10**13), 10**13).map(str),
    st.decimals(min_value=-(2 * 10**12), max_value=2 * 10**12, places=6).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    odd_text,
)
quantities = mostly(good_quantities, any_quantities)

keys = mostly(
    st.uuids().map(str),
    st.one_of(
        st.sampled_from(["k", "job-42", "k" * 255, "k" * 256, "k" * 10_000, "🙂" * 255]),
        st.text(st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=255),
        odd_text,
    ),
)

metadata_maps = mostly(
    st.dictionaries(
        st.text(st.characters(categories=("L", "N")), min_size=1, max_size=8),
        st.text(st.characters(categories=("L", "N", "Zs")), max_size=20),
        max_size=3,
    ),
    st.one_of(
        st.dictionaries(short_text, short_text, max_size=18),
        st.sampled_from(
            [
                {f"k{i}": "v" for i in range(16)},
                {f"k{i}": "v" for i in range(17)},
                {"k": "v" * 1023},  # 1024 bytes in all
                {"k": "v" * 1024},
                {"é": "é" * 511},  # 1024 bytes in UTF-8
                {"é": "é" * 512},
                {"k\x00": "v"},
                {"k": "\x00"},
                {"": "v"},
                {"\n": "v"},
                {"k": "v" * 100_000},
            ]
        ),
    ),
)

_SECONDS_EXTREMES = [
    INT64_MIN,
    INT64_MAX,
    -62135596800,  # 0001-01-01
    -62135596801,
    62135596800,
    253402300799,  # 9999-12-31T23:59:59
    253402300800,
    EARLIEST - 1,
    EARLIEST,
    EARLIEST + 1,
    LIMIT - 1,
    LIMIT,
    LIMIT + 1,
    -1,
    0,
    CLOSED_BEFORE - 1,
    CLOSED_BEFORE,
    NOW,
    NOW + SKEW,
    NOW + SKEW + 1,
]
_NANOS = st.one_of(
    st.sampled_from([0, 999_999_999, 1_000_000_000, -1, -999_999_999, INT32_MIN, INT32_MAX]),
    st.integers(0, 999_999_999),
    st.integers(INT32_MIN, INT32_MAX),
)
any_timestamps = st.builds(
    Timestamp,
    seconds=st.one_of(
        st.sampled_from(_SECONDS_EXTREMES),
        st.integers(EARLIEST, LIMIT - 1),
        st.integers(NOW - 40 * 86_400, NOW + 2 * SKEW),
        st.integers(INT64_MIN, INT64_MAX),
    ),
    nanos=_NANOS,
)
# Instants usage may carry: in the open period, not ahead of the clock.
usage_instants = st.builds(
    Timestamp,
    seconds=st.integers(CLOSED_BEFORE, NOW),
    nanos=st.integers(0, 999_999_999),
)
event_timestamps = mostly(st.one_of(st.none(), usage_instants), any_timestamps)
timestamps = mostly(st.none(), any_timestamps)

_DAY = 86_400
durations = mostly(
    st.one_of(st.none(), st.builds(Duration, seconds=st.integers(1, 30 * _DAY - 1))),
    st.builds(
        Duration,
        seconds=st.one_of(
            st.sampled_from(
                [
                    *(INT64_MIN, INT64_MAX, -1, 0, 1, 2, _DAY, 30 * _DAY, 30 * _DAY + 1),
                    *(315_576_000_000, 315_576_000_001, 10**15),
                ]
            ),
            st.integers(1, 30 * _DAY),
            st.integers(INT64_MIN, INT64_MAX),
        ),
        nanos=_NANOS,
    ),
)

_ENUM_ODDITIES = [-1, 10, 99, 2**16, INT32_MIN, INT32_MAX]
any_enums = st.one_of(st.sampled_from(_ENUM_ODDITIES), st.integers(INT32_MIN, INT32_MAX))
usage_types = mostly(st.integers(1, 9), st.one_of(st.just(0), any_enums))
optional_usage_types = mostly(st.integers(0, 9), any_enums)
page_sizes = mostly(
    st.integers(0, 1000),
    st.one_of(st.sampled_from([1001, -1, INT32_MIN, INT32_MAX]), st.integers(INT32_MIN, INT32_MAX)),
)
versions = mostly(
    st.integers(1, 10**6),
    st.one_of(st.sampled_from([0, -1, INT64_MIN, INT64_MAX]), st.integers(INT64_MIN, INT64_MAX)),
)

# The layout of a page token (version, microseconds since 2000, record id, query digest), with
# every part free: a client can craft any of them.
_TOKEN_LAYOUT = struct.Struct(">BQ16s8s")
crafted_page_tokens = st.builds(
    lambda version, micros, row, digest: base64.urlsafe_b64encode(
        _TOKEN_LAYOUT.pack(version, micros, row, digest)
    ).decode(),
    st.sampled_from([0, 1, 2, 255]),
    st.one_of(
        st.sampled_from([0, 2**64 - 1, (LIMIT - EARLIEST) * 10**6, (LIMIT - EARLIEST) * 10**6 - 1]),
        st.integers(0, 2**64 - 1),
    ),
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=8, max_size=8),
)
page_tokens = mostly(
    st.just(""),
    st.one_of(
        crafted_page_tokens,
        st.binary(max_size=40).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
        odd_text,
    ),
)

# -- requests --------------------------------------------------------------------------------

_Enum = Any  # the stubs type enum fields as their NewType; the fuzz sends any int32


@st.composite
def usage_events(draw: st.DrawFn) -> usage_pb2.UsageEvent:
    return usage_pb2.UsageEvent(
        organization_id=draw(organization_ids),
        usage_type=cast(_Enum, draw(usage_types)),
        quantity=draw(quantities),
        timestamp=draw(event_timestamps),
        idempotency_key=draw(keys),
        metadata=draw(metadata_maps),
    )


@st.composite
def record_usage(draw: st.DrawFn) -> pb.RecordUsageRequest:
    if draw(st.integers(0, 20)) == 20:
        return pb.RecordUsageRequest()  # no event at all
    return pb.RecordUsageRequest(event=draw(usage_events()))


@st.composite
def record_usage_batch(draw: st.DrawFn) -> pb.RecordUsageBatchRequest:
    shape = draw(st.integers(0, 30))
    if shape == 30:
        return pb.RecordUsageBatchRequest()
    if shape == 29:  # one too many, all well-formed
        return pb.RecordUsageBatchRequest(
            events=[
                usage_pb2.UsageEvent(
                    organization_id=ORG,
                    usage_type=common_pb2.USAGE_TYPE_API_CALL,
                    quantity="1",
                    idempotency_key=f"over-{n}",
                )
                for n in range(1001)
            ]
        )
    events = draw(st.lists(usage_events(), min_size=1, max_size=8))
    if len(events) > 1 and draw(st.booleans()):  # one key twice, payloads maybe different
        events[-1].idempotency_key = events[0].idempotency_key
        events[-1].organization_id = events[0].organization_id
    return pb.RecordUsageBatchRequest(events=events)


@st.composite
def check_limits(draw: st.DrawFn) -> pb.CheckLimitsRequest:
    return pb.CheckLimitsRequest(
        organization_id=draw(organization_ids),
        usage_type=cast(_Enum, draw(optional_usage_types)),
        requested_quantity=draw(st.one_of(st.just(""), quantities)),
    )


@st.composite
def reserve_usage(draw: st.DrawFn) -> pb.ReserveUsageRequest:
    return pb.ReserveUsageRequest(
        organization_id=draw(organization_ids),
        usage_type=cast(_Enum, draw(usage_types)),
        quantity=draw(quantities),
        idempotency_key=draw(keys),
        ttl=draw(durations),
    )


reservation_ids = mostly(st.just(FRESH_RESERVATION), uuid_text)


@st.composite
def commit_reservation(draw: st.DrawFn) -> pb.CommitReservationRequest:
    return pb.CommitReservationRequest(
        reservation_id=draw(reservation_ids),
        quantity=draw(st.one_of(st.just(""), quantities)),
        timestamp=draw(event_timestamps),
        metadata=draw(metadata_maps),
    )


@st.composite
def release_reservation(draw: st.DrawFn) -> pb.ReleaseReservationRequest:
    return pb.ReleaseReservationRequest(reservation_id=draw(reservation_ids))


@st.composite
def get_current_usage(draw: st.DrawFn) -> pb.GetCurrentUsageRequest:
    return pb.GetCurrentUsageRequest(organization_id=draw(organization_ids))


@st.composite
def time_ranges(draw: st.DrawFn) -> tuple[Timestamp | None, Timestamp | None]:
    """Mostly a range in the bounds, end after start; else any two (or no) instants."""
    if draw(st.integers(0, 3)) == 3:
        return draw(timestamps), draw(timestamps)
    start = draw(st.integers(EARLIEST, LIMIT - 2))
    end = draw(st.integers(start + 1, min(LIMIT - 1, start + 400 * _DAY)))
    return Timestamp(seconds=start), Timestamp(seconds=end)


@st.composite
def get_usage_summary(draw: st.DrawFn) -> pb.GetUsageSummaryRequest:
    start, end = draw(time_ranges())
    return pb.GetUsageSummaryRequest(
        organization_id=draw(organization_ids), start_time=start, end_time=end
    )


@st.composite
def usage_summary_queries(draw: st.DrawFn) -> pb.UsageSummaryQuery:
    start, end = draw(time_ranges())
    return pb.UsageSummaryQuery(
        organization_id=draw(organization_ids), start_time=start, end_time=end
    )


@st.composite
def get_usage_summaries(draw: st.DrawFn) -> pb.GetUsageSummariesRequest:
    shape = draw(st.integers(0, 30))
    if shape == 30:
        return pb.GetUsageSummariesRequest()
    if shape == 29:  # one too many, all well-formed
        query = pb.UsageSummaryQuery(
            organization_id=ORG,
            start_time=Timestamp(seconds=EARLIEST),
            end_time=Timestamp(seconds=NOW),
        )
        return pb.GetUsageSummariesRequest(queries=[query] * 1001)
    # Several queries: one hostile one fails the whole call.
    return pb.GetUsageSummariesRequest(
        queries=draw(st.lists(usage_summary_queries(), min_size=1, max_size=8))
    )


@st.composite
def list_usage_records(draw: st.DrawFn) -> pb.ListUsageRecordsRequest:
    start, end = draw(st.one_of(st.just((None, None)), time_ranges()))
    return pb.ListUsageRecordsRequest(
        organization_id=draw(organization_ids),
        start_time=start,
        end_time=end,
        usage_type=cast(_Enum, draw(optional_usage_types)),
        page_size=draw(page_sizes),
        page_token=draw(page_tokens),
    )


@st.composite
def upsert_entitlements(draw: st.DrawFn) -> pb.UpsertEntitlementsRequest:
    # Mostly a new organisation: a stored version must not mask the rest of the request.
    organization_id = draw(mostly(st.uuids().map(str), uuid_text))
    if draw(st.integers(0, 20)) == 20:
        return pb.UpsertEntitlementsRequest(organization_id=organization_id)
    if draw(st.booleans()):
        types = draw(st.lists(st.integers(1, 9), unique=True, max_size=9))
    else:
        types = draw(st.lists(usage_types, max_size=10))
    limits = [
        common_pb2.Limit(
            usage_type=cast(_Enum, usage_type),
            max=draw(st.one_of(st.just(""), quantities)),
        )
        for usage_type in types
    ]
    return pb.UpsertEntitlementsRequest(
        organization_id=organization_id,
        entitlements=usage_pb2.Entitlements(
            status=cast(_Enum, draw(mostly(st.integers(1, 3), st.one_of(st.just(0), any_enums)))),
            tier=cast(_Enum, draw(mostly(st.integers(0, 4), any_enums))),
            billing_cycle=cast(_Enum, draw(mostly(st.integers(0, 3), any_enums))),
            period_anchor=draw(timestamps),
            current_period_start=draw(timestamps),
            current_period_end=draw(timestamps),
            limits=limits,
            usage_closed_before=draw(timestamps),
            version=draw(versions),
        ),
    )


REQUESTS: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
    "RecordUsage": record_usage,
    "RecordUsageBatch": record_usage_batch,
    "CheckLimits": check_limits,
    "ReserveUsage": reserve_usage,
    "CommitReservation": commit_reservation,
    "ReleaseReservation": release_reservation,
    "GetCurrentUsage": get_current_usage,
    "GetUsageSummary": get_usage_summary,
    "GetUsageSummaries": get_usage_summaries,
    "ListUsageRecords": list_usage_records,
    "UpsertEntitlements": upsert_entitlements,
}

# -- callers ---------------------------------------------------------------------------------


class Auth(enum.Enum):
    VALID = "a token with every scope"
    BOUND = "a token bound to ORG"
    BOUND_OTHER = "a token bound to OTHER_ORG"
    NONE = "no token"
    MALFORMED = "a malformed authorization header"
    EXPIRED = "an expired token"
    FORGED = "a token signed with another secret"
    NO_SCOPE = "a token without the RPC's scope"
    TWICE = "two authorization headers"


UNAUTHENTICATED = {Auth.NONE, Auth.MALFORMED, Auth.EXPIRED, Auth.FORGED, Auth.TWICE}
auths = st.sampled_from([Auth.VALID] * 16 + list(Auth))


def auth_metadata(client: Client, auth: Auth) -> tuple[tuple[str, str], ...]:
    now = client.clock.now()
    if auth is Auth.VALID:
        return client.auth()
    if auth is Auth.BOUND:
        return client.auth(organization_id=ORG)
    if auth is Auth.BOUND_OTHER:
        return client.auth(organization_id=OTHER_ORG)
    if auth is Auth.NONE:
        return ()
    if auth is Auth.MALFORMED:
        return (("authorization", "Basic dXNlcjpwYXNz"),)
    if auth is Auth.NO_SCOPE:
        return client.auth(scopes=["billing:write"])
    if auth is Auth.TWICE:
        return client.auth() + client.auth()
    token = issue_token(
        "another-secret-that-is-long-enough-for-hs256" if auth is Auth.FORGED else SECRET,
        "tester",
        ALL_SCOPES,
        now=now - timedelta(hours=2) if auth is Auth.EXPIRED else now,
    )
    return (("authorization", f"Bearer {token}"),)


# -- the SPEC §11 oracle ---------------------------------------------------------------------


def bad_uuid(text: str) -> bool:
    return not _UUID_TEXT.fullmatch(text)


def bad_quantity(text: str, *, empty_ok: bool = False, positive: bool = False) -> bool:
    """Decimal ≥ 0 (> 0 if `positive`), ≤ 1e12, ≤ 6 places, ≤ 40 characters (SPEC §2, §11).
    Text Python's Decimal reads but the SPEC does not name (" 1", "1e3") is not judged."""
    if not text:
        return not empty_ok
    if len(text) > 40 or "\x00" in text:
        return True
    try:
        number = Decimal(text)
    except InvalidOperation:
        return True
    if not number.is_finite() or number < 0 or number > 10**12 or (positive and number == 0):
        return True
    with localcontext() as exact:
        exact.prec = 100  # normalize() rounds to the context's precision
        exponent = number.normalize(exact).as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent > 6


def bad_key(text: str) -> bool:
    """Idempotency keys: 1–255 printable characters; control characters never are."""
    return not text or len(text) > 255 or any(unicodedata.category(c) == "Cc" for c in text)


def bad_metadata(metadata: Mapping[str, str]) -> bool:
    size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
    nul = any("\x00" in k or "\x00" in v for k, v in metadata.items())
    return len(metadata) > 16 or size > 1024 or nul


def bad_instant(stamp: Timestamp) -> bool:
    return not (0 <= stamp.nanos < 10**9 and EARLIEST <= stamp.seconds < LIMIT)


def bad_event_instant(stamp: Timestamp) -> bool:
    """Also more than 5 minutes ahead (the second at the edge is not judged)."""
    return bad_instant(stamp) or stamp.seconds > NOW + SKEW


def bad_duration(value: Duration) -> bool:
    """1 second to 30 days; seconds and nanos of one sign (a protobuf Duration's rule)."""
    seconds, nanos = value.seconds, value.nanos
    if not -(10**9) < nanos < 10**9 or seconds * nanos < 0:
        return True
    return not 10**9 <= seconds * 10**9 + nanos <= 30 * _DAY * 10**9


def _bad_usage_type(number: int, *, required: bool) -> bool:
    return not 1 <= number <= 9 and (required or number != 0)


def event_refusals(event: usage_pb2.UsageEvent) -> list[str]:
    """What is wrong with one event of RecordUsage or RecordUsageBatch."""
    found = []
    if bad_uuid(event.organization_id):
        found.append("organization_id")
    if _bad_usage_type(event.usage_type, required=True):
        found.append("usage_type")
    if bad_quantity(event.quantity):
        found.append("quantity")
    if event.HasField("timestamp") and bad_event_instant(event.timestamp):
        found.append("timestamp")
    if bad_key(event.idempotency_key):
        found.append("idempotency_key")
    if bad_metadata(event.metadata):
        found.append("metadata")
    return found


def _times(start: Timestamp | None, end: Timestamp | None, *, required: bool) -> list[str]:
    """A time range's bounds (None: unset): each in range, the end after the start."""
    found = []
    for name, stamp in (("start_time", start), ("end_time", end)):
        if stamp is None:
            if required:
                found.append(f"{name} required")
        elif bad_instant(stamp):
            found.append(name)
    if not found and start is not None and end is not None and not _later(end, start):
        found.append("end_time not after start_time")
    return found


def _later(one: Timestamp, other: Timestamp) -> bool:
    return (one.seconds, one.nanos) > (other.seconds, other.nanos)


def _field(message: Message, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def refusals(method: str, request: Message) -> list[str]:
    """The fields of `request` SPEC §11 refuses; non-empty means the request must fail. For a
    batch, only what fails the whole request (the events are judged one by one)."""
    found: list[str] = []
    if isinstance(request, pb.RecordUsageRequest):
        found = event_refusals(request.event)
    elif isinstance(request, pb.RecordUsageBatchRequest):
        if not 1 <= len(request.events) <= 1000:
            found.append("events")
    elif isinstance(request, pb.CheckLimitsRequest):
        if bad_uuid(request.organization_id):
            found.append("organization_id")
        if _bad_usage_type(request.usage_type, required=False):
            found.append("usage_type")
        # Ignored when checking every limit, so only judged with a usage type.
        if request.usage_type and bad_quantity(request.requested_quantity, empty_ok=True):
            found.append("requested_quantity")
    elif isinstance(request, pb.ReserveUsageRequest):
        if bad_uuid(request.organization_id):
            found.append("organization_id")
        if _bad_usage_type(request.usage_type, required=True):
            found.append("usage_type")
        if bad_quantity(request.quantity, positive=True):
            found.append("quantity")
        if bad_key(request.idempotency_key):
            found.append("idempotency_key")
        if request.HasField("ttl") and bad_duration(request.ttl):
            found.append("ttl")
    elif isinstance(request, pb.CommitReservationRequest):
        if bad_uuid(request.reservation_id):
            found.append("reservation_id")
        if bad_quantity(request.quantity, empty_ok=True):
            found.append("quantity")
        if request.HasField("timestamp") and bad_event_instant(request.timestamp):
            found.append("timestamp")
        if bad_metadata(request.metadata):
            found.append("metadata")
    elif isinstance(request, pb.ReleaseReservationRequest):
        if bad_uuid(request.reservation_id):
            found.append("reservation_id")
    elif isinstance(request, pb.GetCurrentUsageRequest):
        if bad_uuid(request.organization_id):
            found.append("organization_id")
    elif isinstance(request, pb.GetUsageSummaryRequest):
        found = _summary_query_refusals(request)
    elif isinstance(request, pb.GetUsageSummariesRequest):
        if not 1 <= len(request.queries) <= 1000:
            found.append("queries")
        for index, query in enumerate(request.queries):
            found += [f"queries[{index}].{name}" for name in _summary_query_refusals(query)]
    elif isinstance(request, pb.ListUsageRecordsRequest):
        if bad_uuid(request.organization_id):
            found.append("organization_id")
        found += _times(_field(request, "start_time"), _field(request, "end_time"), required=False)
        if _bad_usage_type(request.usage_type, required=False):
            found.append("usage_type")
        if not 0 <= request.page_size <= 1000:
            found.append("page_size")
        if request.page_token:  # no token this fuzz sends was issued by the service
            found.append("page_token")
    elif isinstance(request, pb.UpsertEntitlementsRequest):
        found = _entitlements_refusals(request)
    else:
        raise AssertionError(f"no oracle for {method}")
    return found


def _summary_query_refusals(query: pb.GetUsageSummaryRequest | pb.UsageSummaryQuery) -> list[str]:
    """GetUsageSummary's fields, and those of each query of GetUsageSummaries."""
    found = ["organization_id"] if bad_uuid(query.organization_id) else []
    return found + _times(_field(query, "start_time"), _field(query, "end_time"), required=True)


def _entitlements_refusals(request: pb.UpsertEntitlementsRequest) -> list[str]:
    found = []
    granted = request.entitlements
    if bad_uuid(request.organization_id):
        found.append("organization_id")
    if granted.status not in (1, 2, 3):
        found.append("status")
    if not 0 <= granted.tier <= 4:
        found.append("tier")
    if not 0 <= granted.billing_cycle <= 3:
        found.append("billing_cycle")
    if granted.version < 0:
        found.append("version")
    for name in ("period_anchor", "current_period_start", "current_period_end"):
        if granted.HasField(name) and bad_instant(getattr(granted, name)):
            found.append(name)
    if granted.HasField("usage_closed_before") and bad_instant(granted.usage_closed_before):
        found.append("usage_closed_before")
    seen: set[int] = set()  # at most one limit per usage type, unlimited (empty max) or not
    for limit in granted.limits:
        if _bad_usage_type(limit.usage_type, required=True) or limit.usage_type in seen:
            found.append("limits.usage_type")
        seen.add(limit.usage_type)
        if bad_quantity(limit.max, empty_ok=True):
            found.append("limits.max")
    return found
