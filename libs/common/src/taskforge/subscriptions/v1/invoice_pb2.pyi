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

class InvoiceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVOICE_KIND_UNSPECIFIED: _ClassVar[InvoiceKind]
    INVOICE_KIND_SUBSCRIPTION_START: _ClassVar[InvoiceKind]
    INVOICE_KIND_PERIOD_END: _ClassVar[InvoiceKind]
    INVOICE_KIND_PRORATION: _ClassVar[InvoiceKind]

class InvoiceStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVOICE_STATUS_UNSPECIFIED: _ClassVar[InvoiceStatus]
    INVOICE_STATUS_DRAFT: _ClassVar[InvoiceStatus]
    INVOICE_STATUS_SENT: _ClassVar[InvoiceStatus]
    INVOICE_STATUS_VIEWED: _ClassVar[InvoiceStatus]
    INVOICE_STATUS_PAID: _ClassVar[InvoiceStatus]
    INVOICE_STATUS_OVERDUE: _ClassVar[InvoiceStatus]
    INVOICE_STATUS_CANCELLED: _ClassVar[InvoiceStatus]
    INVOICE_STATUS_VOID: _ClassVar[InvoiceStatus]
    INVOICE_STATUS_REFUNDED: _ClassVar[InvoiceStatus]

class LineItemKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINE_ITEM_KIND_UNSPECIFIED: _ClassVar[LineItemKind]
    LINE_ITEM_KIND_FEE: _ClassVar[LineItemKind]
    LINE_ITEM_KIND_USAGE: _ClassVar[LineItemKind]
    LINE_ITEM_KIND_PRORATION: _ClassVar[LineItemKind]
INVOICE_KIND_UNSPECIFIED: InvoiceKind
INVOICE_KIND_SUBSCRIPTION_START: InvoiceKind
INVOICE_KIND_PERIOD_END: InvoiceKind
INVOICE_KIND_PRORATION: InvoiceKind
INVOICE_STATUS_UNSPECIFIED: InvoiceStatus
INVOICE_STATUS_DRAFT: InvoiceStatus
INVOICE_STATUS_SENT: InvoiceStatus
INVOICE_STATUS_VIEWED: InvoiceStatus
INVOICE_STATUS_PAID: InvoiceStatus
INVOICE_STATUS_OVERDUE: InvoiceStatus
INVOICE_STATUS_CANCELLED: InvoiceStatus
INVOICE_STATUS_VOID: InvoiceStatus
INVOICE_STATUS_REFUNDED: InvoiceStatus
LINE_ITEM_KIND_UNSPECIFIED: LineItemKind
LINE_ITEM_KIND_FEE: LineItemKind
LINE_ITEM_KIND_USAGE: LineItemKind
LINE_ITEM_KIND_PRORATION: LineItemKind

class RatedUsage(_message.Message):
    __slots__ = ("start_time", "end_time", "quantity", "amount", "unit_price")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    quantity: str
    amount: str
    unit_price: str
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., quantity: _Optional[str] = ..., amount: _Optional[str] = ..., unit_price: _Optional[str] = ...) -> None: ...

class InvoiceLineItem(_message.Message):
    __slots__ = ("id", "kind", "description", "usage_type", "quantity", "unit_price", "amount", "period_start", "period_end", "rated_from")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    USAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    RATED_FROM_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: LineItemKind
    description: str
    usage_type: _common_pb2.UsageType
    quantity: str
    unit_price: str
    amount: str
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    rated_from: _containers.RepeatedCompositeFieldContainer[RatedUsage]
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[LineItemKind, str]] = ..., description: _Optional[str] = ..., usage_type: _Optional[_Union[_common_pb2.UsageType, str]] = ..., quantity: _Optional[str] = ..., unit_price: _Optional[str] = ..., amount: _Optional[str] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rated_from: _Optional[_Iterable[_Union[RatedUsage, _Mapping]]] = ...) -> None: ...

class Invoice(_message.Message):
    __slots__ = ("id", "organization_id", "subscription_id", "invoice_number", "kind", "status", "issue_date", "due_date", "period_start", "period_end", "currency_code", "line_items", "subtotal", "tax_rate", "tax_amount", "total_amount", "credit_applied", "amount_due", "paid_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ISSUE_DATE_FIELD_NUMBER: _ClassVar[int]
    DUE_DATE_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    LINE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    SUBTOTAL_FIELD_NUMBER: _ClassVar[int]
    TAX_RATE_FIELD_NUMBER: _ClassVar[int]
    TAX_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CREDIT_APPLIED_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_DUE_FIELD_NUMBER: _ClassVar[int]
    PAID_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    subscription_id: str
    invoice_number: str
    kind: InvoiceKind
    status: InvoiceStatus
    issue_date: _timestamp_pb2.Timestamp
    due_date: _timestamp_pb2.Timestamp
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    currency_code: str
    line_items: _containers.RepeatedCompositeFieldContainer[InvoiceLineItem]
    subtotal: str
    tax_rate: str
    tax_amount: str
    total_amount: str
    credit_applied: str
    amount_due: str
    paid_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., subscription_id: _Optional[str] = ..., invoice_number: _Optional[str] = ..., kind: _Optional[_Union[InvoiceKind, str]] = ..., status: _Optional[_Union[InvoiceStatus, str]] = ..., issue_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., currency_code: _Optional[str] = ..., line_items: _Optional[_Iterable[_Union[InvoiceLineItem, _Mapping]]] = ..., subtotal: _Optional[str] = ..., tax_rate: _Optional[str] = ..., tax_amount: _Optional[str] = ..., total_amount: _Optional[str] = ..., credit_applied: _Optional[str] = ..., amount_due: _Optional[str] = ..., paid_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
