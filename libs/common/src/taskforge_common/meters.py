"""The meters of SPEC §2, shared by every service: what each usage type measures and how it
aggregates (counters sum, gauges hold a level)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum


class UsageType(StrEnum):
    JOB_EXECUTION = "job_execution"
    JOB_PROCESSING_TIME = "job_processing_time"
    WORKER_HOURS = "worker_hours"
    API_CALL = "api_call"
    DATA_TRANSFER = "data_transfer"
    QUEUE_STORAGE = "queue_storage"
    STORAGE = "storage"
    ACTIVE_WORKERS = "active_workers"
    QUEUES = "queues"


class MeterKind(Enum):
    COUNTER = "counter"  # summed over a period
    GAUGE = "gauge"  # an absolute level that holds until the next report


@dataclass(frozen=True, slots=True)
class Meter:
    usage_type: UsageType
    kind: MeterKind
    unit: str


METERS: dict[UsageType, Meter] = {
    meter.usage_type: meter
    for meter in (
        Meter(UsageType.JOB_EXECUTION, MeterKind.COUNTER, "job"),
        Meter(UsageType.JOB_PROCESSING_TIME, MeterKind.COUNTER, "second"),
        Meter(UsageType.WORKER_HOURS, MeterKind.COUNTER, "hour"),
        Meter(UsageType.API_CALL, MeterKind.COUNTER, "call"),
        Meter(UsageType.DATA_TRANSFER, MeterKind.COUNTER, "GB"),
        Meter(UsageType.QUEUE_STORAGE, MeterKind.COUNTER, "GB-hour"),
        Meter(UsageType.STORAGE, MeterKind.GAUGE, "GB"),
        Meter(UsageType.ACTIVE_WORKERS, MeterKind.GAUGE, "worker"),
        Meter(UsageType.QUEUES, MeterKind.GAUGE, "queue"),
    )
}


def is_gauge(usage_type: UsageType) -> bool:
    return METERS[usage_type].kind is MeterKind.GAUGE
