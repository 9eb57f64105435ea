"""Settings of the metering service, read once from the environment at startup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from taskforge_common.config import (
    AuthSettings,
    ConfigError,
    TelemetrySettings,
    env_duration_seconds,
    env_int,
    env_str,
)
from taskforge_common.db.migrate import database_url

SERVICE_NAME = "metering"
DEFAULT_PORT = 50051
WORKERS_VARIABLE = "TASKFORGE_METERING_WORKERS"


@dataclass(frozen=True, slots=True)
class MeteringSettings:
    database_url: str
    host: str
    port: int
    database_pool_size: int
    # Server processes on the port, one per core to use (taskforge_common.workers).
    workers: int
    # Requests per second per organisation (a batch counts once); a generous default.
    ingest_rate_per_second: int
    shutdown_grace: timedelta
    auth: AuthSettings
    telemetry: TelemetrySettings

    def __post_init__(self) -> None:
        if self.workers > 1 and self.port == 0:
            raise ConfigError(
                f"{WORKERS_VARIABLE} above 1 needs a fixed TASKFORGE_METERING_PORT: with port 0"
                " every worker would listen on a different port"
            )

    @classmethod
    def from_env(cls) -> MeteringSettings:
        """Fail fast on a missing secret or a malformed value, naming the variable."""
        return cls(
            database_url=database_url(SERVICE_NAME),
            host=env_str("TASKFORGE_METERING_HOST", "0.0.0.0"),
            port=env_int("TASKFORGE_METERING_PORT", DEFAULT_PORT, minimum=0, maximum=65535),
            database_pool_size=env_int("TASKFORGE_METERING_DB_POOL_SIZE", 10, minimum=1),
            workers=env_int(WORKERS_VARIABLE, 1, minimum=1),
            ingest_rate_per_second=env_int(
                "TASKFORGE_METERING_INGEST_RATE_PER_SECOND", 1000, minimum=1
            ),
            shutdown_grace=env_duration_seconds(
                "TASKFORGE_SHUTDOWN_GRACE_SECONDS", timedelta(seconds=10)
            ),
            auth=AuthSettings.from_env(),
            telemetry=TelemetrySettings.from_env(SERVICE_NAME),
        )
