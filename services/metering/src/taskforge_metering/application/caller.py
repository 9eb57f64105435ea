"""The caller as the metering use cases see it: the suite's one definition (libs/common)."""

from __future__ import annotations

from taskforge_common.caller import Caller

__all__ = ["Caller"]
