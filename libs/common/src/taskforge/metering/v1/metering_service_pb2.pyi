import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from taskforge.common.v1 import common_pb2 as _common_pb2
from taskforge.metering.v1 import usage_pb2 as _usage_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecordUsageRequest(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _usage_pb2.UsageEvent
    def __init__(self, event: _Optional[_Union[_usage_pb2.UsageEvent, _Mapping]] = ...) -> None: ...

class RecordUsageResponse(_message.Message):
    __slots__ = ("record", "duplicate")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    record: _usage_pb2.UsageRecord
    duplicate: bool
    def __init__(self, record: _Optional[_Union[_usage_pb2.UsageRecord, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class RecordUsageBatchRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_usage_pb2.UsageEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[_usage_pb2.UsageEvent, _Mapping]]] = ...) -> None: ...

class RecordUsageBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[_usage_pb2.RecordUsageResult]
    def __init__(self, results: _Optional[_Iterable[_Union[_usage_pb2.RecordUsageResult, _Mapping]]] = ...) -> None: ...

class CheckLimitsRequest(_message.Message):
    __slots__ = ("organization_id", "usage_type", "requested_quantity")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    usage_type: _common_pb2.UsageType
    requested_quantity: str
    def __init__(self, organization_id: _Optional[str] = ..., usage_type: _Optional[_Union[_common_pb2.UsageType, str]] = ..., requested_quantity: _Optional[str] = ...) -> None: ...

class CheckLimitsResponse(_message.Message):
    __slots__ = ("allowed", "reason", "limits")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: str
    limits: _containers.RepeatedCompositeFieldContainer[_usage_pb2.LimitStatus]
    def __init__(self, allowed: _Optional[bool] = ..., reason: _Optional[str] = ..., limits: _Optional[_Iterable[_Union[_usage_pb2.LimitStatus, _Mapping]]] = ...) -> None: ...

class ReserveUsageRequest(_message.Message):
    __slots__ = ("organization_id", "usage_type", "quantity", "idempotency_key", "ttl")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    usage_type: _common_pb2.UsageType
    quantity: str
    idempotency_key: str
    ttl: _duration_pb2.Duration
    def __init__(self, organization_id: _Optional[str] = ..., usage_type: _Optional[_Union[_common_pb2.UsageType, str]] = ..., quantity: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ReserveUsageResponse(_message.Message):
    __slots__ = ("allowed", "reason", "reservation", "limit")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: str
    reservation: _usage_pb2.Reservation
    limit: _usage_pb2.LimitStatus
    def __init__(self, allowed: _Optional[bool] = ..., reason: _Optional[str] = ..., reservation: _Optional[_Union[_usage_pb2.Reservation, _Mapping]] = ..., limit: _Optional[_Union[_usage_pb2.LimitStatus, _Mapping]] = ...) -> None: ...

class CommitReservationRequest(_message.Message):
    __slots__ = ("reservation_id", "quantity", "timestamp", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    quantity: str
    timestamp: _timestamp_pb2.Timestamp
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, reservation_id: _Optional[str] = ..., quantity: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CommitReservationResponse(_message.Message):
    __slots__ = ("record", "limit")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    record: _usage_pb2.UsageRecord
    limit: _usage_pb2.LimitStatus
    def __init__(self, record: _Optional[_Union[_usage_pb2.UsageRecord, _Mapping]] = ..., limit: _Optional[_Union[_usage_pb2.LimitStatus, _Mapping]] = ...) -> None: ...

class ReleaseReservationRequest(_message.Message):
    __slots__ = ("reservation_id",)
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    def __init__(self, reservation_id: _Optional[str] = ...) -> None: ...

class ReleaseReservationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCurrentUsageRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class GetCurrentUsageResponse(_message.Message):
    __slots__ = ("usage",)
    USAGE_FIELD_NUMBER: _ClassVar[int]
    usage: _usage_pb2.CurrentUsage
    def __init__(self, usage: _Optional[_Union[_usage_pb2.CurrentUsage, _Mapping]] = ...) -> None: ...

class GetUsageSummaryRequest(_message.Message):
    __slots__ = ("organization_id", "start_time", "end_time")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, organization_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetUsageSummaryResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_usage_pb2.UsageSummaryItem]
    def __init__(self, items: _Optional[_Iterable[_Union[_usage_pb2.UsageSummaryItem, _Mapping]]] = ...) -> None: ...

class UsageSummaryQuery(_message.Message):
    __slots__ = ("organization_id", "start_time", "end_time")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, organization_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetUsageSummariesRequest(_message.Message):
    __slots__ = ("queries",)
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[UsageSummaryQuery]
    def __init__(self, queries: _Optional[_Iterable[_Union[UsageSummaryQuery, _Mapping]]] = ...) -> None: ...

class UsageSummary(_message.Message):
    __slots__ = ("organization_id", "start_time", "end_time", "items")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    items: _containers.RepeatedCompositeFieldContainer[_usage_pb2.UsageSummaryItem]
    def __init__(self, organization_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., items: _Optional[_Iterable[_Union[_usage_pb2.UsageSummaryItem, _Mapping]]] = ...) -> None: ...

class GetUsageSummariesResponse(_message.Message):
    __slots__ = ("summaries",)
    SUMMARIES_FIELD_NUMBER: _ClassVar[int]
    summaries: _containers.RepeatedCompositeFieldContainer[UsageSummary]
    def __init__(self, summaries: _Optional[_Iterable[_Union[UsageSummary, _Mapping]]] = ...) -> None: ...

class ListUsageRecordsRequest(_message.Message):
    __slots__ = ("organization_id", "start_time", "end_time", "usage_type", "page_size", "page_token")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    USAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    usage_type: _common_pb2.UsageType
    page_size: int
    page_token: str
    def __init__(self, organization_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., usage_type: _Optional[_Union[_common_pb2.UsageType, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListUsageRecordsResponse(_message.Message):
    __slots__ = ("records", "total_count", "next_page_token")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_usage_pb2.UsageRecord]
    total_count: int
    next_page_token: str
    def __init__(self, records: _Optional[_Iterable[_Union[_usage_pb2.UsageRecord, _Mapping]]] = ..., total_count: _Optional[int] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpsertEntitlementsRequest(_message.Message):
    __slots__ = ("organization_id", "entitlements")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    ENTITLEMENTS_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    entitlements: _usage_pb2.Entitlements
    def __init__(self, organization_id: _Optional[str] = ..., entitlements: _Optional[_Union[_usage_pb2.Entitlements, _Mapping]] = ...) -> None: ...

class UpsertEntitlementsResponse(_message.Message):
    __slots__ = ("entitlements",)
    ENTITLEMENTS_FIELD_NUMBER: _ClassVar[int]
    entitlements: _usage_pb2.Entitlements
    def __init__(self, entitlements: _Optional[_Union[_usage_pb2.Entitlements, _Mapping]] = ...) -> None: ...
