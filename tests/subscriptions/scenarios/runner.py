"""Billing scenarios: a YAML timeline of actions, each performed through gRPC against the real
metering and subscriptions services, and the exact documents each step is expected to produce.

A scenario file (see the *.yaml beside this module) has:

    id, about               what it shows, in a sentence or two
    setup                   at (the clock's first instant; default the first step's), organizations
                            (names; each gets a fresh UUID), tax_rates {name: rate},
                            meter_prices [SetMeterPrice arguments]
    timeline                steps: at (the shared ManualClock is set to it; never backwards),
                            do (an action below), org (default the first organisation),
                            as (customer | operator | platform | stranger | nobody; default by
                            action), with (the action's arguments), expect
    expect_all              optional: the organisation's every invoice and credit note at the end,
                            in order, nothing more; also credit_balance, subscription, orgs
    math                    the arithmetic behind every expected number
    known_defect            optional: the service answers otherwise and SPEC says it is wrong;
                            the scenario is then a strict xfail carrying this text

What `expect` may name:
- the fields of the action's gRPC response (CreateSubscriptionResponse: subscription, invoice;
  ChangeTierResponse: proration_invoice, credit_note; RunBillingCycleResponse: the counts; ...),
  with proto field names, enums by their lower-case short name (sent, period_end, pro), instants
  as timestamps and null for "not set";
- error: {code, reason, message} when the call must fail (reason: google.rpc.ErrorInfo);
- the organisation's state after the step: invoices (the invoices this step created or changed,
  in issue order: numbered by their sequence, then drafts by period), credit_notes (those it
  issued), credit_balance, subscription (GetSubscription when the response has none);
  orgs: {name: {...}} the same for other organisations.

Only the fields named are asserted; lists are asserted whole (an invoice's `lines` in any order,
every other list in order). Strings compare exactly unless they hold a glob character
("INV-2026-*"). Invoices also accept `number` for invoice_number and `lines` for line_items,
credit notes `number` for credit_note_number. Ids are never asserted. An unknown key, action or
field, or a number written without quotes, fails the load: typos must not pass silently.

After every step the subscriptions outbox is relayed to metering until nothing is pending, so
the limits and `usage_closed_before` metering enforces are those of the step just done.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2

from taskforge.common.v1 import common_pb2
from taskforge.metering.v1 import metering_service_pb2 as metering_pb
from taskforge.metering.v1 import usage_pb2
from taskforge.subscriptions.v1 import credit_note_pb2, invoice_pb2, plan_pb2, subscription_pb2
from taskforge.subscriptions.v1 import subscription_service_pb2 as pb
from tests.subscriptions.service_client import Metadata, Services

SCENARIO_DIR = Path(__file__).parent
GLOB_CHARACTERS = frozenset("*?[")

Json = Any  # what yaml.safe_load answers
# protobuf's descriptors have two implementations (Python and upb) that typing tells apart.
Descriptor = Any
EnumDescriptor = Any


class ScenarioError(ValueError):
    """A scenario file that does not follow the schema."""


class ScenarioFailure(AssertionError):
    """The services answered otherwise than the scenario expects."""


# --- the schema ---------------------------------------------------------------------------------

# Argument kinds of `with`.
STR, BOOL, INSTANT, LIMITS, BANDS = "str", "bool", "instant", "limits", "bands"
TIER, CYCLE, USAGE, MODEL, KIND = "tier", "cycle", "usage_type", "model", "invoice_kind"
_ENUMS: dict[str, EnumDescriptor] = {
    TIER: common_pb2.Tier.DESCRIPTOR,
    CYCLE: common_pb2.BillingCycle.DESCRIPTOR,
    USAGE: common_pb2.UsageType.DESCRIPTOR,
    MODEL: plan_pb2.ChargeModel.DESCRIPTOR,
    KIND: invoice_pb2.InvoiceKind.DESCRIPTOR,
}


@dataclass(frozen=True)
class Action:
    """One `do:`: its arguments (name → kind), the required ones, the actor it takes by default
    and the response message whose fields `expect` may name."""

    arguments: Mapping[str, str]
    required: frozenset[str]
    actor: str
    response: Descriptor


ACTIONS: dict[str, Action] = {
    "create_subscription": Action(
        {
            "tier": TIER,
            "billing_cycle": CYCLE,
            "auto_renew": BOOL,
            "start_time": INSTANT,
            "custom_price_per_month": STR,
            "custom_limits": LIMITS,
            "request_id": STR,
        },
        frozenset({"tier", "billing_cycle"}),
        "customer",
        pb.CreateSubscriptionResponse.DESCRIPTOR,
    ),
    "record_usage": Action(
        {"usage_type": USAGE, "quantity": STR, "timestamp": INSTANT, "idempotency_key": STR},
        frozenset({"usage_type", "quantity"}),
        "platform",
        metering_pb.RecordUsageResponse.DESCRIPTOR,
    ),
    "check_limits": Action(
        {"usage_type": USAGE, "requested_quantity": STR},
        frozenset(),
        "platform",
        metering_pb.CheckLimitsResponse.DESCRIPTOR,
    ),
    "change_tier": Action(
        {
            "tier": TIER,
            "custom_price_per_month": STR,
            "custom_limits": LIMITS,
            "effective_time": INSTANT,
            "request_id": STR,
        },
        frozenset({"tier"}),
        "customer",
        pb.ChangeTierResponse.DESCRIPTOR,
    ),
    "cancel": Action(
        {"at_period_end": BOOL, "effective_time": INSTANT},
        frozenset({"at_period_end"}),
        "customer",
        pb.CancelSubscriptionResponse.DESCRIPTOR,
    ),
    "run_billing": Action(
        {"as_of": INSTANT}, frozenset(), "operator", pb.RunBillingCycleResponse.DESCRIPTOR
    ),
    "pay": Action(
        {"invoice": STR, "kind": KIND, "period_end": INSTANT, "amount": STR},
        frozenset(),
        "operator",
        pb.ApplyPaymentResponse.DESCRIPTOR,
    ),
    "set_tax_rate": Action(
        {"tax_rate": STR}, frozenset({"tax_rate"}), "operator", pb.SetTaxRateResponse.DESCRIPTOR
    ),
    "set_meter_price": Action(
        {
            "tier": TIER,
            "usage_type": USAGE,
            "model": MODEL,
            "unit_price": STR,
            "included": STR,
            "bands": BANDS,
            "effective_time": INSTANT,
        },
        frozenset({"tier", "usage_type"}),
        "operator",
        pb.SetMeterPriceResponse.DESCRIPTOR,
    ),
}
ACTORS = frozenset({"customer", "operator", "platform", "stranger", "nobody"})
SCENARIO_KEYS = frozenset(
    {"id", "about", "setup", "timeline", "expect_all", "math", "known_defect"}
)
SETUP_KEYS = frozenset({"at", "organizations", "tax_rates", "meter_prices"})
STEP_KEYS = frozenset({"at", "do", "org", "as", "with", "expect", "note"})
STATE_KEYS = frozenset({"invoices", "credit_notes", "credit_balance", "subscription", "orgs"})
ERROR_KEYS = frozenset({"code", "reason", "message"})
BAND_KEYS = frozenset({"up_to", "unit_price", "flat_fee"})
# Friendlier names for a few fields, per message.
ALIASES: dict[str, dict[str, str]] = {
    invoice_pb2.Invoice.DESCRIPTOR.full_name: {"number": "invoice_number", "lines": "line_items"},
    credit_note_pb2.CreditNote.DESCRIPTOR.full_name: {"number": "credit_note_number"},
}
# Lists whose order the SPEC leaves open: matched as sets.
UNORDERED = frozenset({f"{invoice_pb2.Invoice.DESCRIPTOR.full_name}.line_items"})
LIMIT = common_pb2.Limit.DESCRIPTOR.full_name
TIMESTAMP = Timestamp.DESCRIPTOR.full_name


@dataclass(frozen=True)
class Step:
    number: int  # 1-based, as a reader counts them
    at: datetime
    action: str
    org: str
    actor: str
    arguments: Mapping[str, Json]
    expect: Mapping[str, Json] | None

    def label(self) -> str:
        return f"step {self.number} ({self.action} at {self.at.isoformat()})"


@dataclass(frozen=True)
class Scenario:
    id: str
    about: str
    path: Path
    start: datetime
    organizations: Sequence[str]
    tax_rates: Mapping[str, str]
    meter_prices: Sequence[Mapping[str, Json]]
    steps: Sequence[Step]
    expect_all: Mapping[str, Json] | None
    math: str
    known_defect: str | None


def scenario_paths() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.yaml"))


def load_scenario(path: Path) -> Scenario:
    return parse_scenario(path.read_text(encoding="utf-8"), path)


def parse_scenario(text: str, path: Path = Path("<text>")) -> Scenario:
    """The scenario in `text`, checked against the schema: ScenarioError names every problem."""
    problems: list[str] = []
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping")
    _keys(document, SCENARIO_KEYS, "", problems, required={"id", "about", "timeline", "math"})
    setup = document.get("setup") or {}
    _keys(setup, SETUP_KEYS, "setup", problems)
    organizations = list(setup.get("organizations") or ["org-a"])
    if not all(isinstance(name, str) for name in organizations):
        problems.append("setup.organizations: a list of names")
    tax_rates = setup.get("tax_rates") or {}
    for name, rate in _mapping(tax_rates, "setup.tax_rates", problems).items():
        if name not in organizations:
            problems.append(f"setup.tax_rates.{name}: not one of the organizations")
        _argument(rate, STR, f"setup.tax_rates.{name}", problems)
    meter_prices = setup.get("meter_prices") or []
    for index, price in enumerate(_list(meter_prices, "setup.meter_prices", problems)):
        _arguments(price, ACTIONS["set_meter_price"], f"setup.meter_prices[{index}]", problems)
    steps = []
    previous: datetime | None = None
    for index, raw in enumerate(_list(document.get("timeline"), "timeline", problems)):
        path_ = f"timeline[{index}]"
        if not isinstance(raw, dict):
            problems.append(f"{path_}: a step is a mapping")
            continue
        _keys(raw, STEP_KEYS, path_, problems, required={"at", "do"})
        at = _instant(raw.get("at"), f"{path_}.at", problems)
        if at is not None and previous is not None and at < previous:
            problems.append(f"{path_}.at: {at.isoformat()} is before the step before it")
        previous = at or previous
        action = ACTIONS.get(raw.get("do", ""))
        if action is None:
            problems.append(
                f"{path_}.do: unknown action {raw.get('do')!r}; one of {sorted(ACTIONS)}"
            )
            continue
        org = raw.get("org", organizations[0] if organizations else "")
        if org not in organizations:
            problems.append(f"{path_}.org: {org!r} is not one of the organizations")
        actor = raw.get("as", action.actor)
        if actor not in ACTORS:
            problems.append(f"{path_}.as: {actor!r} is not one of {sorted(ACTORS)}")
        arguments = raw.get("with") or {}
        _arguments(arguments, action, f"{path_}.with", problems)
        expect = raw.get("expect")
        if expect is not None:
            _expectation(expect, action.response, f"{path_}.expect", organizations, problems)
        steps.append(
            Step(
                index + 1,
                at or datetime.min.replace(tzinfo=UTC),
                raw["do"],
                org,
                actor,
                arguments,
                expect,
            )
        )
    expect_all = document.get("expect_all")
    if expect_all is not None:
        _state(expect_all, "expect_all", organizations, problems, top=True)
    start = _instant(setup.get("at"), "setup.at", problems) if "at" in setup else None
    if start is None:
        start = steps[0].at if steps else datetime(2026, 1, 1, tzinfo=UTC)
    elif steps and steps[0].at < start:
        problems.append("setup.at: after the first step")
    for key in ("id", "about", "math", "known_defect"):
        if key in document and not isinstance(document[key], str):
            problems.append(f"{key}: text")
    if problems:
        raise ScenarioError(f"{path}: " + "; ".join(problems))
    return Scenario(
        id=document["id"],
        about=document["about"],
        path=path,
        start=start,
        organizations=organizations,
        tax_rates=tax_rates,
        meter_prices=meter_prices,
        steps=steps,
        expect_all=expect_all,
        math=document["math"],
        known_defect=document.get("known_defect"),
    )


def _keys(
    value: Json,
    allowed: frozenset[str],
    path: str,
    problems: list[str],
    required: frozenset[str] | set[str] = frozenset(),
) -> None:
    if not isinstance(value, dict):
        problems.append(f"{path or 'scenario'}: a mapping")
        return
    for key in value:
        if key not in allowed:
            problems.append(f"{_join(path, key)}: unknown key; one of {sorted(allowed)}")
    for key in sorted(required):
        if key not in value:
            problems.append(f"{_join(path, key)}: missing")


def _mapping(value: Json, path: str, problems: list[str]) -> dict[str, Json]:
    if not isinstance(value, dict):
        problems.append(f"{path}: a mapping")
        return {}
    return value


def _list(value: Json, path: str, problems: list[str]) -> list[Json]:
    if not isinstance(value, list):
        problems.append(f"{path}: a list")
        return []
    return value


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _instant(value: Json, path: str, problems: list[str]) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"{path}: {value!r} is not an instant")
            return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        problems.append(f"{path}: an instant with its zone, e.g. 2026-03-01T00:00:00Z")
        return None
    return value.astimezone(UTC)


def _enum_names(descriptor: EnumDescriptor) -> dict[str, int]:
    """ "pro" → TIER_PRO's number: names without the prefix UNSPECIFIED carries, lower case."""
    prefix = descriptor.values_by_number[0].name.removesuffix("UNSPECIFIED")
    return {
        value.name.removeprefix(prefix).lower(): value.number
        for value in descriptor.values
        if value.number != 0
    }


def _argument(value: Json, kind: str, path: str, problems: list[str]) -> None:
    if kind == STR and not isinstance(value, str):
        problems.append(f"{path}: a quoted string (numbers are exact decimal strings)")
    elif kind == BOOL and not isinstance(value, bool):
        problems.append(f"{path}: true or false")
    elif kind == INSTANT:
        _instant(value, path, problems)
    elif kind in _ENUMS and value not in _enum_names(_ENUMS[kind]):
        problems.append(f"{path}: {value!r} is not one of {sorted(_enum_names(_ENUMS[kind]))}")
    elif kind == LIMITS:
        for usage_type, maximum in _mapping(value, path, problems).items():
            _argument(usage_type, USAGE, f"{path} key", problems)
            if maximum is not None:
                _argument(maximum, STR, f"{path}.{usage_type}", problems)
    elif kind == BANDS:
        for index, band in enumerate(_list(value, path, problems)):
            _keys(band, BAND_KEYS, f"{path}[{index}]", problems, required={"unit_price"})
            if isinstance(band, dict):
                for key, item in band.items():
                    if key in BAND_KEYS:
                        _argument(item, STR, f"{path}[{index}].{key}", problems)


def _arguments(value: Json, action: Action, path: str, problems: list[str]) -> None:
    _keys(value, frozenset(action.arguments), path, problems, required=action.required)
    if isinstance(value, dict):
        for key, item in value.items():
            if key in action.arguments:
                _argument(item, action.arguments[key], f"{path}.{key}", problems)


def _expectation(
    value: Json, response: Descriptor, path: str, organizations: Sequence[str], problems: list[str]
) -> None:
    if not isinstance(value, dict):
        problems.append(f"{path}: a mapping")
        return
    for key, item in value.items():
        if key == "error":
            _keys(item, ERROR_KEYS, f"{path}.error", problems, required={"code"})
            if isinstance(item, dict) and item.get("code") not in grpc.StatusCode.__members__:
                problems.append(f"{path}.error.code: {item.get('code')!r} is not a status code")
        elif key in response.fields_by_name:
            _check_field(item, response.fields_by_name[key], f"{path}.{key}", problems)
        elif key not in STATE_KEYS:
            known = sorted({*response.fields_by_name, *STATE_KEYS, "error"})
            problems.append(f"{path}.{key}: unknown key; one of {known}")
    _state(
        {k: v for k, v in value.items() if k in STATE_KEYS and k not in response.fields_by_name},
        path,
        organizations,
        problems,
        top=True,
    )


def _state(
    value: Json, path: str, organizations: Sequence[str], problems: list[str], *, top: bool
) -> None:
    allowed = STATE_KEYS if top else STATE_KEYS - {"orgs"}
    _keys(value, allowed, path, problems)
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        where = f"{path}.{key}"
        if key == "invoices":
            for index, invoice in enumerate(_list(item, where, problems)):
                _message(invoice, invoice_pb2.Invoice.DESCRIPTOR, f"{where}[{index}]", problems)
        elif key == "credit_notes":
            for index, note in enumerate(_list(item, where, problems)):
                _message(note, credit_note_pb2.CreditNote.DESCRIPTOR, f"{where}[{index}]", problems)
        elif key == "credit_balance":
            _argument(item, STR, where, problems)
        elif key == "subscription" and item is not None:
            _message(item, subscription_pb2.Subscription.DESCRIPTOR, where, problems)
        elif key == "orgs":
            for name, state in _mapping(item, where, problems).items():
                if name not in organizations:
                    problems.append(f"{where}.{name}: not one of the organizations")
                _state(state, f"{where}.{name}", organizations, problems, top=False)


def _message(value: Json, descriptor: Descriptor, path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"{path}: a mapping of {descriptor.name} fields")
        return
    aliases = ALIASES.get(descriptor.full_name, {})
    for key, item in value.items():
        name = str(aliases.get(key, key))
        field_ = descriptor.fields_by_name.get(name)
        if field_ is None or name == "id" or name.endswith("_id"):  # ids are never asserted
            known = sorted(
                {*aliases, *(f for f in descriptor.fields_by_name if not str(f).endswith("id"))}
            )
            problems.append(f"{path}.{key}: not a field of {descriptor.name} ({known})")
            continue
        _check_field(item, field_, f"{path}.{key}", problems)


def _check_field(value: Json, field_: Any, path: str, problems: list[str]) -> None:
    if field_.is_repeated:
        if field_.message_type is not None and field_.message_type.full_name == LIMIT:
            _argument(value, LIMITS, path, problems)
            return
        for index, item in enumerate(_list(value, path, problems)):
            _check_single(item, field_, f"{path}[{index}]", problems)
        return
    _check_single(value, field_, path, problems)


def _check_single(value: Json, field_: Any, path: str, problems: list[str]) -> None:
    if value is None:
        return  # "not set" / empty
    if field_.message_type is not None:
        if field_.message_type.full_name == TIMESTAMP:
            _instant(value, path, problems)
        else:
            _message(value, field_.message_type, path, problems)
    elif field_.enum_type is not None:
        names = _enum_names(field_.enum_type)
        if value not in names:
            problems.append(f"{path}: {value!r} is not one of {sorted(names)}")
    elif field_.type == FieldDescriptor.TYPE_STRING:
        _argument(value, STR, path, problems)
    elif field_.type == FieldDescriptor.TYPE_BOOL:
        _argument(value, BOOL, path, problems)
    elif not isinstance(value, int) or isinstance(value, bool):
        problems.append(f"{path}: an integer")


# --- comparison ---------------------------------------------------------------------------------


def compare(expected: Mapping[str, Json], message: Message, path: str) -> list[str]:
    """What in `message` differs from the fields `expected` names (empty: it matches)."""
    problems: list[str] = []
    descriptor = message.DESCRIPTOR
    aliases = ALIASES.get(descriptor.full_name, {})
    for key, value in expected.items():
        field_ = descriptor.fields_by_name[aliases.get(key, key)]
        _compare_field(value, field_, message, f"{path}.{key}", problems)
    return problems


def _compare_field(
    expected: Json, field_: Any, message: Message, path: str, problems: list[str]
) -> None:
    actual = getattr(message, field_.name)
    if not field_.is_repeated:
        _compare_single(expected, field_, actual, message, path, problems)
        return
    if field_.message_type is not None and field_.message_type.full_name == LIMIT:
        wanted = {name: maximum or "" for name, maximum in (expected or {}).items()}
        names = {v: k for k, v in _enum_names(common_pb2.UsageType.DESCRIPTOR).items()}
        got = {names.get(limit.usage_type, str(limit.usage_type)): limit.max for limit in actual}
        if wanted != got:
            problems.append(f"{path}: expected {wanted}, got {got}")
        return
    items = list(actual)
    if len(items) != len(expected):
        problems.append(
            f"{path}: expected {len(expected)} items, got {len(items)}: {_brief(items)}"
        )
        return
    if f"{field_.containing_type.full_name}.{field_.name}" in UNORDERED:
        problems.extend(_match_unordered(expected, items, field_, path))
        return
    for index, (want, got) in enumerate(zip(expected, items, strict=True)):
        _compare_single(want, field_, got, None, f"{path}[{index}]", problems)


def _match_unordered(
    expected: Sequence[Json], items: Sequence[Message], field_: Any, path: str
) -> list[str]:
    """Pair each expected item with a distinct actual one it matches; else explain the first
    expected item left without one by its closest candidate."""
    fits = [[j for j, got in enumerate(items) if not compare(want, got, path)] for want in expected]
    chosen: dict[int, int] = {}  # actual index → expected index

    def place(i: int, seen: set[int]) -> bool:  # augmenting path (Kuhn's matching)
        for j in fits[i]:
            if j not in seen:
                seen.add(j)
                if j not in chosen or place(chosen[j], seen):
                    chosen[j] = i
                    return True
        return False

    for i in range(len(expected)):
        if not place(i, set()):
            closest = min((compare(expected[i], got, f"{path}[{i}]") for got in items), key=len)
            return [f"{path}[{i}] matches no item; closest differs in: " + "; ".join(closest)]
    return []


def _compare_single(
    expected: Json,
    field_: Any,
    actual: Any,
    parent: Message | None,
    path: str,
    problems: list[str],
) -> None:
    if field_.message_type is not None:
        present = parent.HasField(field_.name) if parent is not None else True
        if expected is None:
            if present:
                problems.append(f"{path}: expected not set, got {_brief([actual])}")
            return
        if not present:
            problems.append(f"{path}: expected {_show(expected)}, got not set")
            return
        if field_.message_type.full_name == TIMESTAMP:
            got = actual.ToDatetime(tzinfo=UTC)
            want = _instant(expected, path, [])
            if got != want:
                problems.append(f"{path}: expected {_show(want)}, got {_show(got)}")
            return
        problems.extend(compare(expected, actual, path))
        return
    if field_.enum_type is not None:
        names = {v: k for k, v in _enum_names(field_.enum_type).items()}
        got_name = names.get(actual, "unspecified" if actual == 0 else str(actual))
        if expected is None and actual == 0:
            return
        if got_name != expected:
            problems.append(f"{path}: expected {expected}, got {got_name}")
        return
    if expected is None:
        expected = "" if field_.type == FieldDescriptor.TYPE_STRING else field_.default_value
    if isinstance(expected, str) and GLOB_CHARACTERS & set(expected):
        if not fnmatch.fnmatchcase(actual, expected):
            problems.append(f"{path}: expected to match {expected!r}, got {actual!r}")
    elif actual != expected:
        problems.append(f"{path}: expected {expected!r}, got {actual!r}")


def _show(value: Json) -> str:
    return value.isoformat() if isinstance(value, datetime) else repr(value)


def _brief(items: Sequence[Any]) -> str:
    """A message in a line: enough to recognise an invoice or a line."""
    shown = []
    for item in items:
        if isinstance(item, invoice_pb2.Invoice):
            kind = invoice_pb2.InvoiceKind.Name(item.kind)
            shown.append(f"{item.invoice_number or 'draft'} {kind} {item.total_amount}")
        elif isinstance(item, invoice_pb2.InvoiceLineItem):
            shown.append(f"{item.description} {item.quantity} {item.amount}")
        elif isinstance(item, credit_note_pb2.CreditNote):
            shown.append(f"{item.credit_note_number} {item.total_amount}")
        elif isinstance(item, Message):
            shown.append(str(item).replace("\n", " ")[:200])
        else:
            shown.append(repr(item))
    return "[" + ", ".join(shown) + "]"


# --- running ------------------------------------------------------------------------------------


@dataclass
class _Documents:
    """An organisation's invoices and credit notes as last seen, to tell what a step changed."""

    invoices: dict[str, invoice_pb2.Invoice] = field(default_factory=dict)
    credit_notes: dict[str, credit_note_pb2.CreditNote] = field(default_factory=dict)


def _sequence(number: str) -> int:
    return int(number.rsplit("-", 1)[1])


def invoice_order(invoice: invoice_pb2.Invoice) -> tuple[int, int, int, int]:
    """Issue order: numbered invoices by their gap-free sequence, then drafts by period."""
    if invoice.invoice_number:
        return (0, _sequence(invoice.invoice_number), 0, 0)
    return (1, 0, invoice.period_end.seconds, invoice.period_start.seconds)


def _error_details(error: grpc.aio.AioRpcError) -> tuple[str, str, str]:
    reason = ""
    metadata: Any = error.trailing_metadata() or ()
    for key, value in metadata:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    reason = info.reason
    return error.code().name, reason, error.details() or ""


def _stamp(value: Json) -> Timestamp:
    instant = _instant(value, "", [])
    assert instant is not None
    stamp = Timestamp()
    stamp.FromDatetime(instant)
    return stamp


def _enum(kind: str, name: str) -> Any:
    """The proto value name ("TIER_PRO") of a scenario's short name ("pro")."""
    descriptor = _ENUMS[kind]
    return descriptor.values_by_number[_enum_names(descriptor)[name]].name


def _limits(values: Mapping[str, str | None]) -> list[common_pb2.Limit]:
    return [
        common_pb2.Limit(usage_type=_enum(USAGE, usage_type), max=maximum or "")
        for usage_type, maximum in values.items()
    ]


def _meter_price(arguments: Mapping[str, Json]) -> pb.SetMeterPriceRequest:
    request = pb.SetMeterPriceRequest(
        tier=_enum(TIER, arguments["tier"]),
        price=plan_pb2.PlanPrice(
            usage_type=_enum(USAGE, arguments["usage_type"]),
            unit_price=arguments.get("unit_price", ""),
            model=_enum(MODEL, arguments.get("model", "per_unit")),
            bands=[plan_pb2.PriceBand(**band) for band in arguments.get("bands", [])],
            included=arguments.get("included", ""),
        ),
    )
    if "effective_time" in arguments:
        request.effective_time.CopyFrom(_stamp(arguments["effective_time"]))
    return request


class ScenarioRun:
    """One scenario performed against running services."""

    def __init__(self, scenario: Scenario, services: Services) -> None:
        self.scenario = scenario
        self.services = services
        self.org_ids = {name: str(uuid.uuid4()) for name in scenario.organizations}
        self.seen = {name: _Documents() for name in scenario.organizations}

    async def run(self) -> None:
        clock = self.services.clock
        clock.set(self.scenario.start)
        for name, rate in self.scenario.tax_rates.items():
            await self.services.subscriptions.SetTaxRate(
                pb.SetTaxRateRequest(organization_id=self.org_ids[name], tax_rate=rate),
                metadata=self.services.operator(),
            )
        for price in self.scenario.meter_prices:
            await self.services.subscriptions.SetMeterPrice(
                _meter_price(price), metadata=self.services.operator()
            )
        for step in self.scenario.steps:
            clock.set(step.at)
            await self._step(step)
        if self.scenario.expect_all is not None:
            await self._check_all(self.scenario.expect_all)

    def _fail(self, where: str, problems: Sequence[str]) -> None:
        if problems:
            lines = "\n  ".join(problems)
            raise ScenarioFailure(f"scenario {self.scenario.id}, {where}:\n  {lines}")

    def _metadata(self, step: Step) -> Metadata:
        org = self.org_ids[step.org]
        services = self.services
        actors: dict[str, Callable[[], Metadata]] = {
            "customer": lambda: services.customer(org),
            "operator": services.operator,
            "platform": lambda: services.platform(org),
            "stranger": lambda: services.customer(str(uuid.uuid4())),
            "nobody": lambda: (),
        }
        return actors[step.actor]()

    async def _step(self, step: Step) -> None:
        expect = dict(step.expect or {})
        try:
            response = await self._perform(step)
        except grpc.aio.AioRpcError as error:
            code, reason, message = _error_details(error)
            wanted = expect.get("error")
            if wanted is None:
                self._fail(step.label(), [f"failed: {code} {reason} {message!r}"])
                return
            problems = []
            if code != wanted["code"]:
                problems.append(f"error.code: expected {wanted['code']}, got {code} ({message})")
            if "reason" in wanted and reason != wanted["reason"]:
                problems.append(f"error.reason: expected {wanted['reason']}, got {reason!r}")
            if "message" in wanted and wanted["message"] not in message:
                problems.append(
                    f"error.message: expected to contain {wanted['message']!r}, got {message!r}"
                )
            self._fail(step.label(), problems)
            response = None
        else:
            if "error" in expect:
                self._fail(step.label(), [f"expected {expect['error']}, got {_brief([response])}"])
        await self.services.relay()
        problems = []
        state = {k: v for k, v in expect.items() if k in STATE_KEYS}
        if response is not None:
            fields = response.DESCRIPTOR.fields_by_name
            answered = {k: v for k, v in expect.items() if k in fields}
            problems += compare(answered, response, "answer")
            state = {k: v for k, v in state.items() if k not in fields}
        orgs = state.pop("orgs", {})
        problems += await self._check_state(step.org, state, touched=True)
        for name, wanted_state in orgs.items():
            problems += await self._check_state(name, wanted_state, touched=True, label=name)
        for name in self.scenario.organizations:  # what the next step changes is its own
            await self._remember(name)
        self._fail(step.label(), problems)

    async def _perform(self, step: Step) -> Message:
        subscriptions = self.services.subscriptions
        metadata = self._metadata(step)
        org = self.org_ids[step.org]
        args = step.arguments
        if step.action == "create_subscription":
            create = pb.CreateSubscriptionRequest(
                organization_id=org,
                tier=_enum(TIER, args["tier"]),
                billing_cycle=_enum(CYCLE, args["billing_cycle"]),
                auto_renew=args.get("auto_renew", True),
                custom_price_per_month=args.get("custom_price_per_month", ""),
                custom_limits=_limits(args.get("custom_limits", {})),
                request_id=args.get("request_id", ""),
            )
            if "start_time" in args:
                create.start_time.CopyFrom(_stamp(args["start_time"]))
            return await subscriptions.CreateSubscription(create, metadata=metadata)
        if step.action == "record_usage":
            event = usage_pb2.UsageEvent(
                organization_id=org,
                usage_type=_enum(USAGE, args["usage_type"]),
                quantity=args["quantity"],
                timestamp=_stamp(args.get("timestamp", step.at)),
                idempotency_key=args.get("idempotency_key", f"{self.scenario.id}-{step.number}"),
            )
            return await self.services.metering.RecordUsage(
                metering_pb.RecordUsageRequest(event=event), metadata=metadata
            )
        if step.action == "check_limits":
            return await self.services.metering.CheckLimits(
                metering_pb.CheckLimitsRequest(
                    organization_id=org,
                    usage_type=_enum(USAGE, args["usage_type"]) if "usage_type" in args else None,
                    requested_quantity=args.get("requested_quantity", ""),
                ),
                metadata=metadata,
            )
        if step.action == "change_tier":
            change = pb.ChangeTierRequest(
                organization_id=org,
                tier=_enum(TIER, args["tier"]),
                custom_price_per_month=args.get("custom_price_per_month", ""),
                custom_limits=_limits(args.get("custom_limits", {})),
                request_id=args.get("request_id", ""),
            )
            if "effective_time" in args:
                change.effective_time.CopyFrom(_stamp(args["effective_time"]))
            return await subscriptions.ChangeTier(change, metadata=metadata)
        if step.action == "cancel":
            cancel = pb.CancelSubscriptionRequest(
                organization_id=org, at_period_end=args["at_period_end"]
            )
            if "effective_time" in args:
                cancel.effective_time.CopyFrom(_stamp(args["effective_time"]))
            return await subscriptions.CancelSubscription(cancel, metadata=metadata)
        if step.action == "run_billing":
            run = pb.RunBillingCycleRequest()
            if "as_of" in args:
                run.as_of.CopyFrom(_stamp(args["as_of"]))
            return await subscriptions.RunBillingCycle(run, metadata=metadata)
        if step.action == "pay":
            invoice = self._invoice_to_pay(step)
            return await subscriptions.ApplyPayment(
                pb.ApplyPaymentRequest(
                    invoice_id=invoice.id,
                    payment_id=str(uuid.uuid4()),
                    amount=args.get("amount", invoice.amount_due),
                ),
                metadata=metadata,
            )
        if step.action == "set_tax_rate":
            return await subscriptions.SetTaxRate(
                pb.SetTaxRateRequest(organization_id=org, tax_rate=args["tax_rate"]),
                metadata=metadata,
            )
        if step.action == "set_meter_price":
            return await subscriptions.SetMeterPrice(_meter_price(args), metadata=metadata)
        raise AssertionError(f"no implementation for {step.action}")  # the schema lists them

    def _invoice_to_pay(self, step: Step) -> invoice_pb2.Invoice:
        args = step.arguments
        candidates = list(self.seen[step.org].invoices.values())
        if "invoice" in args:
            candidates = [
                i for i in candidates if fnmatch.fnmatchcase(i.invoice_number, args["invoice"])
            ]
        if "kind" in args:
            kind = _enum_names(_ENUMS[KIND])[args["kind"]]
            candidates = [i for i in candidates if i.kind == kind]
        if "period_end" in args:
            end = _instant(args["period_end"], "", [])
            candidates = [i for i in candidates if i.period_end.ToDatetime(tzinfo=UTC) == end]
        if len(candidates) != 1:
            self._fail(step.label(), [f"pay: {len(candidates)} invoices match {dict(args)}"])
        return candidates[0]

    async def _documents(
        self, name: str
    ) -> tuple[list[invoice_pb2.Invoice], list[credit_note_pb2.CreditNote]]:
        """Every invoice and credit note of the organisation, read as its own dashboard would
        (a token bound to it with billing:read only), in issue order."""
        org = self.org_ids[name]
        metadata = self.services.customer(org, ["billing:read"])
        invoices = await self.services.subscriptions.ListInvoices(
            pb.ListInvoicesRequest(organization_id=org, page_size=1000), metadata=metadata
        )
        notes = await self.services.subscriptions.ListCreditNotes(
            pb.ListCreditNotesRequest(organization_id=org, page_size=1000), metadata=metadata
        )
        return (
            sorted(invoices.invoices, key=invoice_order),
            sorted(notes.credit_notes, key=lambda n: _sequence(n.credit_note_number)),
        )

    async def _remember(self, name: str) -> None:
        invoices, notes = await self._documents(name)
        self.seen[name] = _Documents({i.id: i for i in invoices}, {n.id: n for n in notes})

    async def _check_state(
        self, name: str, wanted: Mapping[str, Json], *, touched: bool, label: str = ""
    ) -> list[str]:
        """Problems of organisation `name`'s state against `wanted`: with `touched`, invoices
        and credit notes are those that changed since the last step; else all of them."""
        if not wanted:
            return []
        prefix = label or "state"
        problems: list[str] = []
        org = self.org_ids[name]
        invoices, notes = await self._documents(name)
        if touched:
            before = self.seen[name]
            invoices = [i for i in invoices if before.invoices.get(i.id) != i]
            notes = [n for n in notes if before.credit_notes.get(n.id) != n]
        for key, documents in (("invoices", invoices), ("credit_notes", notes)):
            if key not in wanted:
                continue
            expected = wanted[key]
            if len(expected) != len(documents):
                problems.append(
                    f"{prefix}.{key}: expected {len(expected)}, got {len(documents)}:"
                    f" {_brief(documents)}"
                )
                continue
            for index, (want, got) in enumerate(zip(expected, documents, strict=True)):
                problems += compare(want, got, f"{prefix}.{key}[{index}]")
        metadata = self.services.customer(org, ["billing:read"])
        if "credit_balance" in wanted:
            balance = await self.services.subscriptions.GetCreditBalance(
                pb.GetCreditBalanceRequest(organization_id=org), metadata=metadata
            )
            if balance.balance != wanted["credit_balance"]:
                problems.append(
                    f"{prefix}.credit_balance: expected {wanted['credit_balance']!r},"
                    f" got {balance.balance!r}"
                )
        if "subscription" in wanted:
            try:
                current = await self.services.subscriptions.GetSubscription(
                    pb.GetSubscriptionRequest(organization_id=org), metadata=metadata
                )
            except grpc.aio.AioRpcError as error:
                if wanted["subscription"] is not None or error.code() != grpc.StatusCode.NOT_FOUND:
                    problems.append(f"{prefix}.subscription: GetSubscription {error.code().name}")
            else:
                if wanted["subscription"] is None:
                    problems.append(f"{prefix}.subscription: expected none, got one")
                else:
                    problems += compare(
                        wanted["subscription"], current.subscription, f"{prefix}.subscription"
                    )
        return problems

    async def _check_all(self, wanted: Mapping[str, Json]) -> None:
        wanted = dict(wanted)
        orgs = wanted.pop("orgs", {})
        first = self.scenario.organizations[0]
        problems = await self._check_state(first, wanted, touched=False, label="all")
        for name, state in orgs.items():
            problems += await self._check_state(name, state, touched=False, label=f"all.{name}")
        self._fail("expect_all", problems)


async def run_scenario(scenario: Scenario, services: Services) -> None:
    await ScenarioRun(scenario, services).run()
