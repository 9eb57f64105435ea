"""Typed readers for environment variables and the settings every service shares.

Each reader answers the default when the variable is unset or blank and raises `ConfigError`,
naming the variable, when the value cannot be parsed: services fail at startup, not mid-request.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TypeVar, overload

from taskforge_common.decimals import parse_decimal
from taskforge_common.errors import InvalidArgument

logger = logging.getLogger(__name__)

JWT_SECRET_VAR = "TASKFORGE_AUTH_JWT_SECRET"
JWT_PUBLIC_KEY_VAR = "TASKFORGE_AUTH_JWT_PUBLIC_KEY"
# HS256 keys shorter than the hash output weaken the signature (RFC 7518 §3.2).
MIN_JWT_SECRET_BYTES = 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_Ordered = TypeVar("_Ordered", int, Decimal, timedelta)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?")
_DURATION_UNITS = {
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
}


class ConfigError(ValueError):
    """A missing or malformed setting; the message names the variable."""


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


@overload
def env_str(name: str) -> str | None: ...
@overload
def env_str(name: str, default: str) -> str: ...
@overload
def env_str(name: str, default: str | None) -> str | None: ...
def env_str(name: str, default: str | None = None) -> str | None:
    """The stripped value of `name`, or `default` when it is unset or blank."""
    value = _raw(name)
    return default if value is None else value


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value, 10)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    _check_range(name, number, minimum, maximum)
    return number


def env_decimal(
    name: str,
    default: Decimal,
    *,
    minimum: Decimal | None = None,
    maximum: Decimal | None = None,
) -> Decimal:
    """A plain decimal such as "0.10" (no exponent, NaN or infinity)."""
    value = _raw(name)
    if value is None:
        return default
    try:
        number = parse_decimal(value, name, allow_negative=True)
    except InvalidArgument as err:
        raise ConfigError(err.message) from None
    _check_range(name, number, minimum, maximum)
    return number


def env_bool(name: str, default: bool) -> bool:
    """true/false, yes/no, on/off or 1/0, in any case."""
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def env_duration_seconds(
    name: str,
    default: timedelta,
    *,
    minimum: timedelta | None = None,
    maximum: timedelta | None = None,
) -> timedelta:
    """Plain seconds ("3600", "0.5") or a number with a unit: 250ms, 30s, 5m, 1h, 2d."""
    value = _raw(name)
    if value is None:
        return default
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ConfigError(f"{name} must be a duration in seconds like '30' or '5m', got {value!r}")
    seconds = Decimal(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    duration = timedelta(seconds=int(seconds), microseconds=int((seconds % 1) * 1_000_000))
    _check_range(name, duration, minimum, maximum)
    return duration


def _check_range(
    name: str, value: _Ordered, minimum: _Ordered | None, maximum: _Ordered | None
) -> None:
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value}")


@dataclass(frozen=True, slots=True, repr=False)
class AuthSettings:
    """How bearer tokens are verified (API.md, Authentication)."""

    jwt_secret: str
    jwt_public_key: str | None = None
    issuer: str = "taskforge"
    audience: str = "taskforge-billing"

    def __post_init__(self) -> None:
        if len(self.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ConfigError(
                f"{JWT_SECRET_VAR} must be at least {MIN_JWT_SECRET_BYTES} bytes long"
            )

    def __repr__(self) -> str:
        key = "<set>" if self.jwt_public_key else None
        return (
            f"AuthSettings(jwt_secret='***', jwt_public_key={key!r}, "
            f"issuer={self.issuer!r}, audience={self.audience!r})"
        )

    @classmethod
    def from_env(cls, dev_default_secret: str | None = None) -> AuthSettings:
        """Read the secret (and optional RS256 public key) from the environment.

        Without TASKFORGE_AUTH_JWT_SECRET this fails, unless the caller allows a development default
        (only the local runner does), in which case it warns loudly.
        """
        secret = env_str(JWT_SECRET_VAR)
        if secret is None:
            if dev_default_secret is None:
                raise ConfigError(f"{JWT_SECRET_VAR} is required")
            logger.warning(
                "%s is not set: using the development secret; never do this in production",
                JWT_SECRET_VAR,
            )
            secret = dev_default_secret
        return cls(jwt_secret=secret, jwt_public_key=env_str(JWT_PUBLIC_KEY_VAR))


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    service_name: str
    otlp_endpoint: str | None = None
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.log_level not in LOG_LEVELS:
            levels = ", ".join(LOG_LEVELS)
            raise ConfigError(
                f"TASKFORGE_LOG_LEVEL must be one of {levels}, got {self.log_level!r}"
            )

    @classmethod
    def from_env(cls, service_name: str) -> TelemetrySettings:
        return cls(
            service_name=service_name,
            otlp_endpoint=env_str("OTEL_EXPORTER_OTLP_ENDPOINT"),
            log_level=env_str("TASKFORGE_LOG_LEVEL", "INFO").upper(),
        )
