"""SubscriptionsSettings from the environment: the documented defaults, every variable read, and
refusals that name the variable."""

from __future__ import annotations

import dataclasses
import os
from datetime import timedelta
from decimal import Decimal

import pytest

from taskforge_common.config import ConfigError
from taskforge_subscriptions.application.billing_run import BillingSettings
from taskforge_subscriptions.config import SubscriptionsSettings
from taskforge_subscriptions.rendering.invoice_pdf import DEFAULT_ISSUER, Issuer

SECRET = "config-test-secret-long-enough-for-hs256"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Only the secret set: whatever the developer's shell exports is cleared."""
    for name in list(os.environ):
        if name.startswith("TASKFORGE_") or name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TASKFORGE_AUTH_JWT_SECRET", SECRET)
    return monkeypatch


def test_defaults() -> None:
    settings = SubscriptionsSettings.from_env()
    assert settings.database_url == "sqlite+aiosqlite:///./var/subscriptions.db"
    assert (settings.host, settings.port) == ("0.0.0.0", 50052)
    assert settings.database_pool_size == 10
    assert settings.metering_address == "127.0.0.1:50051"
    assert settings.metering_deadline == timedelta(seconds=5)
    assert settings.invoice_grace == timedelta(seconds=3600)
    assert settings.suspension_grace == timedelta(days=14)
    assert settings.default_tax_rate == Decimal("0.10")
    assert settings.billing_run_interval == timedelta(seconds=60)
    assert settings.scheduler_enabled
    assert settings.outbox_relay_interval == timedelta(seconds=1)
    assert settings.issuer == DEFAULT_ISSUER
    assert settings.shutdown_grace == timedelta(seconds=10)
    assert settings.auth.jwt_secret == SECRET
    assert settings.telemetry.service_name == "subscriptions"
    assert settings.telemetry.log_level == "INFO"


def test_every_variable_is_read(environment: pytest.MonkeyPatch) -> None:
    for name, value in {
        "TASKFORGE_SUBSCRIPTIONS_DATABASE_URL": "postgresql+asyncpg://billing@db:5432/subs",
        "TASKFORGE_SUBSCRIPTIONS_HOST": "127.0.0.1",
        "TASKFORGE_SUBSCRIPTIONS_PORT": "0",
        "TASKFORGE_SUBSCRIPTIONS_DB_POOL_SIZE": "3",
        "TASKFORGE_METERING_ADDRESS": "metering.taskforge-billing.svc:50051",
        "TASKFORGE_METERING_DEADLINE_SECONDS": "2.5",
        "TASKFORGE_INVOICE_GRACE_SECONDS": "0",
        "TASKFORGE_SUSPENSION_GRACE_SECONDS": "7d",
        "TASKFORGE_DEFAULT_TAX_RATE": "0.2",
        "TASKFORGE_BILLING_RUN_INTERVAL_SECONDS": "5m",
        "TASKFORGE_OUTBOX_RELAY_INTERVAL_SECONDS": "250ms",
        "TASKFORGE_INVOICE_ISSUER_NAME": "TaskForge GmbH",
        "TASKFORGE_INVOICE_ISSUER_ADDRESS": "Hauptstraße 1; 10115 Berlin\nGermany",
        "TASKFORGE_INVOICE_ISSUER_TAX_ID": "DE123456789",
        "TASKFORGE_SHUTDOWN_GRACE_SECONDS": "20",
        "TASKFORGE_LOG_LEVEL": "debug",
    }.items():
        environment.setenv(name, value)

    settings = SubscriptionsSettings.from_env()

    assert settings.database_url == "postgresql+asyncpg://billing@db:5432/subs"
    assert (settings.host, settings.port, settings.database_pool_size) == ("127.0.0.1", 0, 3)
    assert settings.metering_address == "metering.taskforge-billing.svc:50051"
    assert settings.metering_deadline == timedelta(seconds=2.5)
    assert settings.invoice_grace == timedelta(0)  # finalize at once
    assert settings.suspension_grace == timedelta(days=7)
    assert settings.default_tax_rate == Decimal("0.2")
    assert settings.billing_run_interval == timedelta(minutes=5)
    assert settings.outbox_relay_interval == timedelta(milliseconds=250)
    assert settings.issuer == Issuer(
        "TaskForge GmbH", ("Hauptstraße 1", "10115 Berlin", "Germany"), "DE123456789"
    )
    assert settings.shutdown_grace == timedelta(seconds=20)
    assert settings.telemetry.log_level == "DEBUG"


def test_billing_settings_are_what_the_use_cases_take(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("TASKFORGE_INVOICE_GRACE_SECONDS", "120")
    environment.setenv("TASKFORGE_DEFAULT_TAX_RATE", "0.075")
    assert SubscriptionsSettings.from_env().billing == BillingSettings(
        invoice_grace=timedelta(seconds=120),
        suspension_grace=timedelta(days=14),
        default_tax_rate=Decimal("0.075"),
    )


def test_a_zero_interval_turns_the_scheduler_off(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("TASKFORGE_BILLING_RUN_INTERVAL_SECONDS", "0")
    settings = SubscriptionsSettings.from_env()
    assert settings.billing_run_interval == timedelta(0)
    assert not settings.scheduler_enabled


@pytest.mark.parametrize(
    "address",
    ["metering:50051", "10.0.0.7:50051", "[::1]:50051", "dns:///metering:50051", "unix:/run/m"],
)
def test_metering_addresses_grpc_can_dial(environment: pytest.MonkeyPatch, address: str) -> None:
    environment.setenv("TASKFORGE_METERING_ADDRESS", address)
    assert SubscriptionsSettings.from_env().metering_address == address


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TASKFORGE_SUBSCRIPTIONS_PORT", "65536"),
        ("TASKFORGE_SUBSCRIPTIONS_PORT", "http"),
        ("TASKFORGE_SUBSCRIPTIONS_DB_POOL_SIZE", "0"),
        ("TASKFORGE_METERING_ADDRESS", "metering"),
        ("TASKFORGE_METERING_ADDRESS", "http://metering:50051"),
        ("TASKFORGE_METERING_ADDRESS", "metering:port"),
        ("TASKFORGE_METERING_DEADLINE_SECONDS", "0"),
        ("TASKFORGE_INVOICE_GRACE_SECONDS", "-1"),
        ("TASKFORGE_INVOICE_GRACE_SECONDS", "an hour"),
        ("TASKFORGE_SUSPENSION_GRACE_SECONDS", "2w"),
        ("TASKFORGE_DEFAULT_TAX_RATE", "1.5"),
        ("TASKFORGE_DEFAULT_TAX_RATE", "-0.1"),
        ("TASKFORGE_DEFAULT_TAX_RATE", "1e-1"),
        ("TASKFORGE_BILLING_RUN_INTERVAL_SECONDS", "-60"),
        ("TASKFORGE_OUTBOX_RELAY_INTERVAL_SECONDS", "0"),
        ("TASKFORGE_LOG_LEVEL", "LOUD"),
    ],
)
def test_malformed_values_stop_startup_naming_the_variable(
    environment: pytest.MonkeyPatch, name: str, value: str
) -> None:
    environment.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        SubscriptionsSettings.from_env()


def test_the_secret_is_required_and_never_shown(environment: pytest.MonkeyPatch) -> None:
    settings = SubscriptionsSettings.from_env()
    assert SECRET not in repr(settings)
    environment.delenv("TASKFORGE_AUTH_JWT_SECRET")
    with pytest.raises(ConfigError, match="TASKFORGE_AUTH_JWT_SECRET"):
        SubscriptionsSettings.from_env()


def test_settings_are_frozen() -> None:
    settings = SubscriptionsSettings.from_env()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]
