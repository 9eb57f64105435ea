from taskforge.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChargeModel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHARGE_MODEL_UNSPECIFIED: _ClassVar[ChargeModel]
    CHARGE_MODEL_PER_UNIT: _ClassVar[ChargeModel]
    CHARGE_MODEL_GRADUATED: _ClassVar[ChargeModel]
    CHARGE_MODEL_VOLUME: _ClassVar[ChargeModel]
CHARGE_MODEL_UNSPECIFIED: ChargeModel
CHARGE_MODEL_PER_UNIT: ChargeModel
CHARGE_MODEL_GRADUATED: ChargeModel
CHARGE_MODEL_VOLUME: ChargeModel

class PriceBand(_message.Message):
    __slots__ = ("up_to", "unit_price", "flat_fee")
    UP_TO_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    FLAT_FEE_FIELD_NUMBER: _ClassVar[int]
    up_to: str
    unit_price: str
    flat_fee: str
    def __init__(self, up_to: _Optional[str] = ..., unit_price: _Optional[str] = ..., flat_fee: _Optional[str] = ...) -> None: ...

class PlanPrice(_message.Message):
    __slots__ = ("usage_type", "unit_price", "model", "bands", "included")
    USAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BANDS_FIELD_NUMBER: _ClassVar[int]
    INCLUDED_FIELD_NUMBER: _ClassVar[int]
    usage_type: _common_pb2.UsageType
    unit_price: str
    model: ChargeModel
    bands: _containers.RepeatedCompositeFieldContainer[PriceBand]
    included: str
    def __init__(self, usage_type: _Optional[_Union[_common_pb2.UsageType, str]] = ..., unit_price: _Optional[str] = ..., model: _Optional[_Union[ChargeModel, str]] = ..., bands: _Optional[_Iterable[_Union[PriceBand, _Mapping]]] = ..., included: _Optional[str] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("tier", "price_per_month", "currency_code", "limits", "priority_support", "custom_domains", "prices")
    TIER_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_MONTH_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_SUPPORT_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    PRICES_FIELD_NUMBER: _ClassVar[int]
    tier: _common_pb2.Tier
    price_per_month: str
    currency_code: str
    limits: _containers.RepeatedCompositeFieldContainer[_common_pb2.Limit]
    priority_support: bool
    custom_domains: bool
    prices: _containers.RepeatedCompositeFieldContainer[PlanPrice]
    def __init__(self, tier: _Optional[_Union[_common_pb2.Tier, str]] = ..., price_per_month: _Optional[str] = ..., currency_code: _Optional[str] = ..., limits: _Optional[_Iterable[_Union[_common_pb2.Limit, _Mapping]]] = ..., priority_support: _Optional[bool] = ..., custom_domains: _Optional[bool] = ..., prices: _Optional[_Iterable[_Union[PlanPrice, _Mapping]]] = ...) -> None: ...
