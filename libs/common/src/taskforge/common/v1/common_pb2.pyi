from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UsageType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_TYPE_UNSPECIFIED: _ClassVar[UsageType]
    USAGE_TYPE_JOB_EXECUTION: _ClassVar[UsageType]
    USAGE_TYPE_JOB_PROCESSING_TIME: _ClassVar[UsageType]
    USAGE_TYPE_WORKER_HOURS: _ClassVar[UsageType]
    USAGE_TYPE_API_CALL: _ClassVar[UsageType]
    USAGE_TYPE_DATA_TRANSFER: _ClassVar[UsageType]
    USAGE_TYPE_QUEUE_STORAGE: _ClassVar[UsageType]
    USAGE_TYPE_STORAGE: _ClassVar[UsageType]
    USAGE_TYPE_ACTIVE_WORKERS: _ClassVar[UsageType]
    USAGE_TYPE_QUEUES: _ClassVar[UsageType]

class Tier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIER_UNSPECIFIED: _ClassVar[Tier]
    TIER_STARTER: _ClassVar[Tier]
    TIER_PRO: _ClassVar[Tier]
    TIER_ENTERPRISE: _ClassVar[Tier]
    TIER_CUSTOM: _ClassVar[Tier]

class BillingCycle(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BILLING_CYCLE_UNSPECIFIED: _ClassVar[BillingCycle]
    BILLING_CYCLE_MONTHLY: _ClassVar[BillingCycle]
    BILLING_CYCLE_QUARTERLY: _ClassVar[BillingCycle]
    BILLING_CYCLE_ANNUALLY: _ClassVar[BillingCycle]
USAGE_TYPE_UNSPECIFIED: UsageType
USAGE_TYPE_JOB_EXECUTION: UsageType
USAGE_TYPE_JOB_PROCESSING_TIME: UsageType
USAGE_TYPE_WORKER_HOURS: UsageType
USAGE_TYPE_API_CALL: UsageType
USAGE_TYPE_DATA_TRANSFER: UsageType
USAGE_TYPE_QUEUE_STORAGE: UsageType
USAGE_TYPE_STORAGE: UsageType
USAGE_TYPE_ACTIVE_WORKERS: UsageType
USAGE_TYPE_QUEUES: UsageType
TIER_UNSPECIFIED: Tier
TIER_STARTER: Tier
TIER_PRO: Tier
TIER_ENTERPRISE: Tier
TIER_CUSTOM: Tier
BILLING_CYCLE_UNSPECIFIED: BillingCycle
BILLING_CYCLE_MONTHLY: BillingCycle
BILLING_CYCLE_QUARTERLY: BillingCycle
BILLING_CYCLE_ANNUALLY: BillingCycle

class Limit(_message.Message):
    __slots__ = ("usage_type", "max")
    USAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    usage_type: UsageType
    max: str
    def __init__(self, usage_type: _Optional[_Union[UsageType, str]] = ..., max: _Optional[str] = ...) -> None: ...
