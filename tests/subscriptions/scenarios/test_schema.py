"""The scenario format refuses what it does not know: a typo must fail loudly, never pass as an
assertion that is silently skipped."""

from __future__ import annotations

import re

import pytest

from tests.subscriptions.scenarios.runner import (
    ScenarioError,
    load_scenario,
    parse_scenario,
    scenario_paths,
)

VALID = """
id: tiny
about: a valid scenario
setup: {organizations: [org-a]}
timeline:
  - at: 2026-03-01T00:00:00Z
    do: create_subscription
    with: {tier: starter, billing_cycle: monthly}
    expect:
      invoice: {number: "INV-2026-*", total_amount: "31.90", lines: [{kind: fee, amount: "29.00"}]}
      credit_balance: "0.00"
math: "29.00 + 2.90"
"""


def test_every_scenario_file_loads() -> None:
    paths = scenario_paths()
    assert paths
    ids = [load_scenario(path).id for path in paths]
    assert len(ids) == len(set(ids)), "scenario ids are unique"
    assert all(path.stem == scenario_id for path, scenario_id in zip(paths, ids, strict=True))


def test_a_valid_scenario_parses() -> None:
    scenario = parse_scenario(VALID)
    assert [step.action for step in scenario.steps] == ["create_subscription"]
    assert scenario.steps[0].actor == "customer"


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [
        (VALID.replace("math:", "maths:"), "maths: unknown key"),
        (VALID.replace("do: create_subscription", "do: create_subscriptoin"), "unknown action"),
        (VALID.replace("with: {tier", "whith: {tier"), "whith: unknown key"),
        (VALID.replace("tier: starter", "tier: platinum"), "'platinum' is not one of"),
        (VALID.replace("billing_cycle: monthly}", "billing_cycle: monthly, renew: true}"), "renew"),
        (VALID.replace("total_amount", "totl_amount"), "totl_amount: not a field of Invoice"),
        (VALID.replace("kind: fee", "kind: fees"), "'fees' is not one of"),
        (VALID.replace('total_amount: "31.90"', "total_amount: 31.90"), "a quoted string"),
        (VALID.replace("credit_balance", "credit_ballance"), "credit_ballance: unknown key"),
        (VALID.replace("invoice: {", "invoice: {id: x, "), "id: not a field of Invoice"),
        (VALID.replace("2026-03-01T00:00:00Z", "2026-03-01T00:00:00"), "with its zone"),
        (VALID.replace("    do: create", "    as: admin\n    do: create"), "'admin' is not one"),
        (VALID.replace("    do: create", "    org: org-b\n    do: create"), "'org-b' is not one"),
        (VALID.replace("expect:", "expect:\n      error: {code: NOT_A_CODE}"), "not a status code"),
    ],
)
def test_a_typo_fails_the_load_naming_it(broken: str, complaint: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(complaint)):
        parse_scenario(broken)


def test_time_never_runs_backwards() -> None:
    text = VALID.replace(
        "math:",
        "  - {at: 2026-02-01T00:00:00Z, do: run_billing}\nmath:",
    )
    with pytest.raises(ScenarioError, match="before the step before it"):
        parse_scenario(text)
