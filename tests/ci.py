"""Whether the tests run in CI, decided in one place: there, a missing dependency (PostgreSQL,
buf) fails the run instead of skipping what needs it."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """CI sets CI=true (any case); anything else is a developer's machine."""
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(message: str) -> NoReturn:
    """Fail in CI, skip elsewhere: what a test needs is not there."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)
