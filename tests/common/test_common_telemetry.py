from __future__ import annotations

from typing import ClassVar

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from taskforge_common.config import TelemetrySettings
from taskforge_common.telemetry import setup_telemetry


class FakeOtlpExporter(InMemorySpanExporter):
    instances: ClassVar[list[FakeOtlpExporter]] = []

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self.endpoint = endpoint
        FakeOtlpExporter.instances.append(self)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> list[trace.TracerProvider]:
    """Records what setup_telemetry installs instead of touching the process-wide provider."""
    providers: list[trace.TracerProvider] = []
    monkeypatch.setattr(trace, "set_tracer_provider", providers.append)
    monkeypatch.setattr("taskforge_common.telemetry._global_provider", None)
    monkeypatch.setattr("taskforge_common.telemetry.OTLPSpanExporter", FakeOtlpExporter)
    FakeOtlpExporter.instances.clear()
    return providers


def test_the_provider_is_installed_once(installed: list[trace.TracerProvider]) -> None:
    first = setup_telemetry(TelemetrySettings("metering"))
    again = setup_telemetry(TelemetrySettings("metering"))
    assert installed == [first.tracer_provider]
    assert again.tracer_provider is first.tracer_provider
    assert first.tracer_provider.resource.attributes["service.name"] == "metering"
    assert FakeOtlpExporter.instances == []  # no endpoint, no exporter
    with first.tracer_provider.get_tracer("test").start_as_current_span("work") as span:
        assert span.get_span_context().is_valid  # ids even without an exporter
        assert not span.is_recording()  # but nothing is recorded for nobody


def test_spans_are_recorded_when_there_is_an_endpoint(
    installed: list[trace.TracerProvider],
) -> None:
    telemetry = setup_telemetry(TelemetrySettings("metering", "http://collector:4317"))
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("work") as span:
        assert span.is_recording()


def test_spans_go_to_the_otlp_endpoint_and_shutdown_flushes_them(
    installed: list[trace.TracerProvider],
) -> None:
    telemetry = setup_telemetry(TelemetrySettings("payments", "http://collector:4317"))
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("charge"):
        pass
    telemetry.shutdown()
    [exporter] = FakeOtlpExporter.instances
    assert exporter.endpoint == "http://collector:4317"
    assert [span.name for span in exporter.get_finished_spans()] == ["charge"]


def test_a_given_provider_is_used_without_installing_it(
    installed: list[trace.TracerProvider],
) -> None:
    provider = TracerProvider()
    telemetry = setup_telemetry(TelemetrySettings("test"), tracer_provider=provider)
    assert telemetry.tracer_provider is provider
    assert installed == []
    assert len(telemetry.server_interceptors()) == 1
    assert len(telemetry.client_interceptors()) == 4  # one per call kind
