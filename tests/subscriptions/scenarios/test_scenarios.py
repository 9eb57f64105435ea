"""Every billing scenario of this folder, performed through gRPC against the real metering and
subscriptions services, on SQLite and on PostgreSQL (see runner.py for the file format)."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskforge_common.clock import ManualClock
from tests.subscriptions.scenarios.runner import load_scenario, run_scenario, scenario_paths
from tests.subscriptions.service_client import ServiceDatabases, running_services


def _cases() -> list[object]:
    cases: list[object] = []
    for path in scenario_paths():
        scenario = load_scenario(path)  # a malformed file fails the collection, loudly
        marks = []
        if scenario.known_defect:
            marks.append(pytest.mark.xfail(reason=scenario.known_defect, strict=True))
        cases.append(pytest.param(path, id=scenario.id, marks=marks))
    return cases


@pytest.mark.parametrize("path", _cases())
async def test_scenario(path: Path, service_databases: ServiceDatabases) -> None:
    scenario = load_scenario(path)
    async with running_services(service_databases, ManualClock(scenario.start)) as services:
        await run_scenario(scenario, services)
