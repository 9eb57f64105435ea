import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from taskforge.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EntitlementStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTITLEMENT_STATUS_UNSPECIFIED: _ClassVar[EntitlementStatus]
    ENTITLEMENT_STATUS_ACTIVE: _ClassVar[EntitlementStatus]
    ENTITLEMENT_STATUS_PAST_DUE: _ClassVar[EntitlementStatus]
    ENTITLEMENT_STATUS_NONE: _ClassVar[EntitlementStatus]
ENTITLEMENT_STATUS_UNSPECIFIED: EntitlementStatus
ENTITLEMENT_STATUS_ACTIVE: EntitlementStatus
ENTITLEMENT_STATUS_PAST_DUE: EntitlementStatus
ENTITLEMENT_STATUS_NONE: EntitlementStatus

class UsageEvent(_message.Message):
    __slots__ = ("organization_id", "usage_type", "quantity", "timestamp", "idempotency_key", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    usage_type: _common_pb2.UsageType
    quantity: str
    timestamp: _timestamp_pb2.Timestamp
    idempotency_key: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, organization_id: _Optional[str] = ..., usage_type: _Optional[_Union[_common_pb2.UsageType, str]] = ..., quantity: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UsageRecord(_message.Message):
    __slots__ = ("id", "organization_id", "usage_type", "quantity", "timestamp", "idempotency_key", "metadata", "recorded_at")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    usage_type: _common_pb2.UsageType
    quantity: str
    timestamp: _timestamp_pb2.Timestamp
    idempotency_key: str
    metadata: _containers.ScalarMap[str, str]
    recorded_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., usage_type: _Optional[_Union[_common_pb2.UsageType, str]] = ..., quantity: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordUsageResult(_message.Message):
    __slots__ = ("record", "duplicate", "error_code", "error_message", "error_reason", "error_field")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_FIELD_NUMBER: _ClassVar[int]
    record: UsageRecord
    duplicate: bool
    error_code: str
    error_message: str
    error_reason: str
    error_field: str
    def __init__(self, record: _Optional[_Union[UsageRecord, _Mapping]] = ..., duplicate: _Optional[bool] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., error_reason: _Optional[str] = ..., error_field: _Optional[str] = ...) -> None: ...

class LimitStatus(_message.Message):
    __slots__ = ("usage_type", "limit", "current", "remaining", "exceeded", "reserved")
    USAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    EXCEEDED_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    usage_type: _common_pb2.UsageType
    limit: str
    current: str
    remaining: str
    exceeded: bool
    reserved: str
    def __init__(self, usage_type: _Optional[_Union[_common_pb2.UsageType, str]] = ..., limit: _Optional[str] = ..., current: _Optional[str] = ..., remaining: _Optional[str] = ..., exceeded: _Optional[bool] = ..., reserved: _Optional[str] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("id", "organization_id", "usage_type", "quantity", "expires_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    usage_type: _common_pb2.UsageType
    quantity: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., usage_type: _Optional[_Union[_common_pb2.UsageType, str]] = ..., quantity: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CurrentUsage(_message.Message):
    __slots__ = ("jobs_executed", "active_workers", "queues", "storage_used_gb", "api_calls_made", "data_transferred_gb", "period_start", "period_end")
    JOBS_EXECUTED_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_WORKERS_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    STORAGE_USED_GB_FIELD_NUMBER: _ClassVar[int]
    API_CALLS_MADE_FIELD_NUMBER: _ClassVar[int]
    DATA_TRANSFERRED_GB_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    jobs_executed: str
    active_workers: str
    queues: str
    storage_used_gb: str
    api_calls_made: str
    data_transferred_gb: str
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    def __init__(self, jobs_executed: _Optional[str] = ..., active_workers: _Optional[str] = ..., queues: _Optional[str] = ..., storage_used_gb: _Optional[str] = ..., api_calls_made: _Optional[str] = ..., data_transferred_gb: _Optional[str] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UsageSummaryItem(_message.Message):
    __slots__ = ("usage_type", "quantity")
    USAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    usage_type: _common_pb2.UsageType
    quantity: str
    def __init__(self, usage_type: _Optional[_Union[_common_pb2.UsageType, str]] = ..., quantity: _Optional[str] = ...) -> None: ...

class Entitlements(_message.Message):
    __slots__ = ("status", "tier", "billing_cycle", "period_anchor", "current_period_start", "current_period_end", "limits", "usage_closed_before", "version")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    BILLING_CYCLE_FIELD_NUMBER: _ClassVar[int]
    PERIOD_ANCHOR_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    USAGE_CLOSED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    status: EntitlementStatus
    tier: _common_pb2.Tier
    billing_cycle: _common_pb2.BillingCycle
    period_anchor: _timestamp_pb2.Timestamp
    current_period_start: _timestamp_pb2.Timestamp
    current_period_end: _timestamp_pb2.Timestamp
    limits: _containers.RepeatedCompositeFieldContainer[_common_pb2.Limit]
    usage_closed_before: _timestamp_pb2.Timestamp
    version: int
    def __init__(self, status: _Optional[_Union[EntitlementStatus, str]] = ..., tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., billing_cycle: _Optional[_Union[_common_pb2.BillingCycle, str]] = ..., period_anchor: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limits: _Optional[_Iterable[_Union[_common_pb2.Limit, _Mapping]]] = ..., usage_closed_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...
