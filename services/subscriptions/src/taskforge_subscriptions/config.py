"""Settings of the subscriptions service, read once from the environment at startup."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from taskforge_common.config import (
    AuthSettings,
    ConfigError,
    TelemetrySettings,
    env_decimal,
    env_duration_seconds,
    env_int,
    env_str,
)
from taskforge_common.db.migrate import database_url
from taskforge_subscriptions.application.billing_run import BillingSettings
from taskforge_subscriptions.rendering.invoice_pdf import DEFAULT_ISSUER, Issuer

SERVICE_NAME = "subscriptions"
DEFAULT_PORT = 50052
METERING_ADDRESS_VARIABLE = "TASKFORGE_METERING_ADDRESS"
# host:port, [IPv6]:port, or a target in one of gRPC's name schemes (dns:///metering:50051).
_ADDRESS = re.compile(
    r"(?:(?:dns|ipv4|ipv6|unix|unix-abstract|vsock):\S+"
    r"|(?:\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):[0-9]{1,5})"
)
_ADDRESS_LINE_SEPARATOR = re.compile(r"[;\n]")


@dataclass(frozen=True, slots=True)
class SubscriptionsSettings:
    database_url: str
    host: str
    port: int
    database_pool_size: int
    # The metering service: where it listens, and how long one call to it may take.
    metering_address: str
    metering_deadline: timedelta
    # Period-end invoices stay draft this long so late usage still counts (SPEC §4).
    invoice_grace: timedelta
    # An invoice overdue this long makes its subscription past due (SPEC §7).
    suspension_grace: timedelta
    default_tax_rate: Decimal
    # How often the scheduler runs the billing cycle; zero: never (RunBillingCycle only).
    billing_run_interval: timedelta
    # How long the outbox relay waits when it found nothing to deliver.
    outbox_relay_interval: timedelta
    # Who issues the invoices, printed on every PDF.
    issuer: Issuer
    shutdown_grace: timedelta
    auth: AuthSettings
    telemetry: TelemetrySettings

    def __post_init__(self) -> None:
        if not _ADDRESS.fullmatch(self.metering_address):
            raise ConfigError(
                f"{METERING_ADDRESS_VARIABLE} must be host:port (or a gRPC target such as"
                f" dns:///metering:50051), got {self.metering_address!r}"
            )

    @property
    def billing(self) -> BillingSettings:
        return BillingSettings(
            invoice_grace=self.invoice_grace,
            suspension_grace=self.suspension_grace,
            default_tax_rate=self.default_tax_rate,
        )

    @property
    def scheduler_enabled(self) -> bool:
        return self.billing_run_interval > timedelta(0)

    @classmethod
    def from_env(cls) -> SubscriptionsSettings:
        """Fail fast on a missing secret or a malformed value, naming the variable."""
        return cls(
            database_url=database_url(SERVICE_NAME),
            host=env_str("TASKFORGE_SUBSCRIPTIONS_HOST", "0.0.0.0"),
            port=env_int("TASKFORGE_SUBSCRIPTIONS_PORT", DEFAULT_PORT, minimum=0, maximum=65535),
            database_pool_size=env_int("TASKFORGE_SUBSCRIPTIONS_DB_POOL_SIZE", 10, minimum=1),
            metering_address=env_str(METERING_ADDRESS_VARIABLE, "127.0.0.1:50051"),
            metering_deadline=env_duration_seconds(
                "TASKFORGE_METERING_DEADLINE_SECONDS",
                timedelta(seconds=5),
                minimum=timedelta(milliseconds=10),
                maximum=timedelta(minutes=5),
            ),
            invoice_grace=env_duration_seconds(
                "TASKFORGE_INVOICE_GRACE_SECONDS", timedelta(hours=1), minimum=timedelta(0)
            ),
            suspension_grace=env_duration_seconds(
                "TASKFORGE_SUSPENSION_GRACE_SECONDS", timedelta(days=14), minimum=timedelta(0)
            ),
            default_tax_rate=env_decimal(
                "TASKFORGE_DEFAULT_TAX_RATE",
                Decimal("0.10"),
                minimum=Decimal(0),
                maximum=Decimal(1),
            ),
            billing_run_interval=env_duration_seconds(
                "TASKFORGE_BILLING_RUN_INTERVAL_SECONDS",
                timedelta(seconds=60),
                minimum=timedelta(0),
            ),
            outbox_relay_interval=env_duration_seconds(
                "TASKFORGE_OUTBOX_RELAY_INTERVAL_SECONDS",
                timedelta(seconds=1),
                minimum=timedelta(milliseconds=10),
                maximum=timedelta(minutes=5),
            ),
            issuer=_issuer_from_env(),
            shutdown_grace=env_duration_seconds(
                "TASKFORGE_SHUTDOWN_GRACE_SECONDS", timedelta(seconds=10)
            ),
            auth=AuthSettings.from_env(),
            telemetry=TelemetrySettings.from_env(SERVICE_NAME),
        )


def _issuer_from_env() -> Issuer:
    """TASKFORGE_INVOICE_ISSUER_NAME, _ADDRESS (lines separated by ';' or newlines) and
    _TAX_ID."""
    address = env_str("TASKFORGE_INVOICE_ISSUER_ADDRESS", "")
    return Issuer(
        name=env_str("TASKFORGE_INVOICE_ISSUER_NAME", DEFAULT_ISSUER.name),
        address_lines=tuple(
            line.strip() for line in _ADDRESS_LINE_SEPARATOR.split(address) if line.strip()
        ),
        tax_id=env_str("TASKFORGE_INVOICE_ISSUER_TAX_ID"),
    )
