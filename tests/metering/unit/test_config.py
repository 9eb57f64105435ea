"""MeteringSettings from the environment: defaults, and refusals that name the variable."""

from __future__ import annotations

import pytest

from taskforge_common.config import ConfigError
from taskforge_metering.config import MeteringSettings


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("TASKFORGE_METERING_WORKERS", "TASKFORGE_METERING_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TASKFORGE_AUTH_JWT_SECRET", "config-test-secret-long-enough-for-hs256")
    return monkeypatch


def test_one_worker_on_port_50051_by_default() -> None:
    settings = MeteringSettings.from_env()
    assert (settings.workers, settings.port) == (1, 50051)


def test_workers_share_a_fixed_port(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("TASKFORGE_METERING_WORKERS", "2")
    assert MeteringSettings.from_env().workers == 2
    environment.setenv("TASKFORGE_METERING_PORT", "0")
    with pytest.raises(ConfigError, match="TASKFORGE_METERING_WORKERS above 1 needs a fixed"):
        MeteringSettings.from_env()


def test_zero_workers_is_refused(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("TASKFORGE_METERING_WORKERS", "0")
    with pytest.raises(ConfigError, match="TASKFORGE_METERING_WORKERS"):
        MeteringSettings.from_env()
