from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import pytest

from taskforge_common.config import (
    AuthSettings,
    ConfigError,
    TelemetrySettings,
    env_bool,
    env_decimal,
    env_duration_seconds,
    env_int,
    env_str,
)

VAR = "TASKFORGE_TEST_SETTING"
SECRET = "s3cret-value-that-is-long-enough-for-hs256"


def test_env_str_strips_and_treats_blank_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    assert env_str(VAR) is None
    assert env_str(VAR, "fallback") == "fallback"
    monkeypatch.setenv(VAR, "   ")
    assert env_str(VAR, "fallback") == "fallback"
    monkeypatch.setenv(VAR, " value \n")
    assert env_str(VAR, "fallback") == "value"


def test_env_int(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    assert env_int(VAR, 7) == 7
    monkeypatch.setenv(VAR, "50051")
    assert env_int(VAR, 7, minimum=0, maximum=65535) == 50051


@pytest.mark.parametrize(
    ("value", "message"),
    [("12.5", "must be an integer"), ("ten", "must be an integer"), ("70000", "at most 65535")],
)
def test_env_int_rejects_bad_values_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv(VAR, value)
    with pytest.raises(ConfigError, match=message) as raised:
        env_int(VAR, 7, maximum=65535)
    assert VAR in str(raised.value)


def test_env_decimal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    assert env_decimal(VAR, Decimal("0.10")) == Decimal("0.10")
    monkeypatch.setenv(VAR, "0.075")
    assert env_decimal(VAR, Decimal("0.10"), minimum=Decimal(0), maximum=Decimal(1)) == Decimal(
        "0.075"
    )


@pytest.mark.parametrize("value", ["NaN", "1e3", "0,1", "Infinity", "abc"])
def test_env_decimal_rejects_anything_but_plain_decimals(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(VAR, value)
    with pytest.raises(ConfigError, match=VAR):
        env_decimal(VAR, Decimal(0))


def test_env_decimal_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "1.5")
    with pytest.raises(ConfigError, match=f"{VAR} must be at most 1"):
        env_decimal(VAR, Decimal(0), maximum=Decimal(1))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_env_bool(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv(VAR, value)
    assert env_bool(VAR, not expected) is expected


def test_env_bool_rejects_other_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "maybe")
    with pytest.raises(ConfigError, match=f"{VAR} must be true or false, got 'maybe'"):
        env_bool(VAR, False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3600", timedelta(hours=1)),
        ("0.5", timedelta(milliseconds=500)),
        ("250ms", timedelta(milliseconds=250)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1.5h", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
    ],
)
def test_env_duration_seconds(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: timedelta
) -> None:
    monkeypatch.setenv(VAR, value)
    assert env_duration_seconds(VAR, timedelta(0)) == expected


@pytest.mark.parametrize("value", ["-1", "5 minutes", "1h30m", "PT5M"])
def test_env_duration_seconds_rejects_bad_values(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(VAR, value)
    with pytest.raises(ConfigError, match=VAR):
        env_duration_seconds(VAR, timedelta(0))


def test_env_duration_seconds_default_and_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    assert env_duration_seconds(VAR, timedelta(seconds=3600)) == timedelta(hours=1)
    monkeypatch.setenv(VAR, "0")
    with pytest.raises(ConfigError, match="at least"):
        env_duration_seconds(VAR, timedelta(1), minimum=timedelta(seconds=1))


def test_auth_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKFORGE_AUTH_JWT_SECRET", SECRET)
    monkeypatch.delenv("TASKFORGE_AUTH_JWT_PUBLIC_KEY", raising=False)
    settings = AuthSettings.from_env(dev_default_secret="d" * 40)
    assert settings.jwt_secret == SECRET
    assert settings.jwt_public_key is None
    assert (settings.issuer, settings.audience) == ("taskforge", "taskforge-billing")


def test_auth_settings_fail_fast_without_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKFORGE_AUTH_JWT_SECRET", raising=False)
    with pytest.raises(ConfigError, match="TASKFORGE_AUTH_JWT_SECRET is required"):
        AuthSettings.from_env()


def test_auth_settings_dev_default_warns_without_logging_the_secret(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("TASKFORGE_AUTH_JWT_SECRET", raising=False)
    dev_secret = "dev-only-secret-for-the-local-runner-0123"
    with caplog.at_level(logging.WARNING, logger="taskforge_common.config"):
        settings = AuthSettings.from_env(dev_default_secret=dev_secret)
    assert settings.jwt_secret == dev_secret
    assert any("development secret" in record.getMessage() for record in caplog.records)
    assert dev_secret not in caplog.text


def test_auth_settings_reject_short_secrets() -> None:
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        AuthSettings(jwt_secret="short")


def test_auth_settings_repr_hides_the_secret() -> None:
    settings = AuthSettings(jwt_secret=SECRET, jwt_public_key="-----BEGIN PUBLIC KEY-----...")
    assert SECRET not in repr(settings)
    assert "BEGIN PUBLIC KEY" not in repr(settings)
    assert "jwt_secret='***'" in repr(settings)


def test_telemetry_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("TASKFORGE_LOG_LEVEL", raising=False)
    assert TelemetrySettings.from_env("metering") == TelemetrySettings("metering", None, "INFO")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")
    monkeypatch.setenv("TASKFORGE_LOG_LEVEL", "debug")
    assert TelemetrySettings.from_env("metering") == TelemetrySettings(
        "metering", "http://collector:4317", "DEBUG"
    )


def test_telemetry_settings_reject_unknown_log_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKFORGE_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError, match="TASKFORGE_LOG_LEVEL must be one of"):
        TelemetrySettings.from_env("metering")
