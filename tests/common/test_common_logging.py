from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from taskforge_common.logging import JsonFormatter, configure_logging


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, with its handlers and level restored after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def format_record(message: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    logger = logging.getLogger("taskforge.test")
    record = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, message, args, None)
    for key, value in kwargs.items():
        setattr(record, key, value)
    parsed: dict[str, Any] = json.loads(JsonFormatter("metering").format(record))
    return parsed


def test_a_record_is_one_json_object() -> None:
    entry = format_record("reserved %s of %s", "3", "api calls")
    assert set(entry) == {"ts", "level", "logger", "message", "service"}
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "taskforge.test"
    assert entry["message"] == "reserved 3 of api calls"
    assert entry["service"] == "metering"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"])


def test_extra_fields_are_included_and_unencodable_values_stringified() -> None:
    entry = format_record("charged", invoice_id="inv-1", amount=Decimal("38.50"))
    assert entry["invoice_id"] == "inv-1"
    assert entry["amount"] == "38.50"


def test_exceptions_are_included_as_text() -> None:
    logger = logging.getLogger("taskforge.test")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logger.makeRecord(
            logger.name, logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    entry = json.loads(JsonFormatter("metering").format(record))
    assert entry["exc_info"].startswith("Traceback")
    assert "RuntimeError: boom" in entry["exc_info"]


def test_trace_and_span_ids_come_from_the_current_span() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        entry = format_record("inside")
    context = span.get_span_context()
    assert entry["trace_id"] == trace.format_trace_id(context.trace_id)
    assert entry["span_id"] == trace.format_span_id(context.span_id)
    assert re.fullmatch(r"[0-9a-f]{32}", entry["trace_id"])
    assert "trace_id" not in format_record("outside")


def test_configure_logging_writes_json_lines_to_stderr_once(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("payments", "info")
    configure_logging("payments", "INFO")  # idempotent: still one handler
    logging.getLogger("taskforge.test").info("paid", extra={"payment_id": "pay-1"})
    logging.getLogger("taskforge.test").debug("not shown at INFO")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert (entry["message"], entry["service"], entry["payment_id"]) == (
        "paid",
        "payments",
        "pay-1",
    )
    assert root_logger.level == logging.INFO
