import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from taskforge.payments.v1 import payment_pb2 as _payment_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SetDefaultPaymentMethodRequest(_message.Message):
    __slots__ = ("organization_id", "payment_method", "payment_token")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    payment_method: _payment_pb2.PaymentMethod
    payment_token: str
    def __init__(self, organization_id: _Optional[str] = ..., payment_method: _Optional[_Union[_payment_pb2.PaymentMethod, str]] = ..., payment_token: _Optional[str] = ...) -> None: ...

class SetDefaultPaymentMethodResponse(_message.Message):
    __slots__ = ("payment_method_on_file",)
    PAYMENT_METHOD_ON_FILE_FIELD_NUMBER: _ClassVar[int]
    payment_method_on_file: _payment_pb2.PaymentMethodOnFile
    def __init__(self, payment_method_on_file: _Optional[_Union[_payment_pb2.PaymentMethodOnFile, _Mapping]] = ...) -> None: ...

class ProcessPaymentRequest(_message.Message):
    __slots__ = ("invoice_id", "payment_method", "payment_token", "request_id")
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    invoice_id: str
    payment_method: _payment_pb2.PaymentMethod
    payment_token: str
    request_id: str
    def __init__(self, invoice_id: _Optional[str] = ..., payment_method: _Optional[_Union[_payment_pb2.PaymentMethod, str]] = ..., payment_token: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ProcessPaymentResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: _payment_pb2.Payment
    def __init__(self, payment: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ...) -> None: ...

class ChargeInvoiceRequest(_message.Message):
    __slots__ = ("invoice_id", "request_id")
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    invoice_id: str
    request_id: str
    def __init__(self, invoice_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ChargeInvoiceResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: _payment_pb2.Payment
    def __init__(self, payment: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ...) -> None: ...

class RefundPaymentRequest(_message.Message):
    __slots__ = ("payment_id", "amount", "reason", "request_id")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    amount: str
    reason: str
    request_id: str
    def __init__(self, payment_id: _Optional[str] = ..., amount: _Optional[str] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RefundPaymentResponse(_message.Message):
    __slots__ = ("refund",)
    REFUND_FIELD_NUMBER: _ClassVar[int]
    refund: _payment_pb2.Refund
    def __init__(self, refund: _Optional[_Union[_payment_pb2.Refund, _Mapping]] = ...) -> None: ...

class GetPaymentRequest(_message.Message):
    __slots__ = ("payment_id",)
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    def __init__(self, payment_id: _Optional[str] = ...) -> None: ...

class GetPaymentResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: _payment_pb2.Payment
    def __init__(self, payment: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ...) -> None: ...

class ListPaymentsRequest(_message.Message):
    __slots__ = ("organization_id", "page_size", "page_token")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    page_size: int
    page_token: str
    def __init__(self, organization_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPaymentsResponse(_message.Message):
    __slots__ = ("payments", "total_count", "next_page_token")
    PAYMENTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    payments: _containers.RepeatedCompositeFieldContainer[_payment_pb2.Payment]
    total_count: int
    next_page_token: str
    def __init__(self, payments: _Optional[_Iterable[_Union[_payment_pb2.Payment, _Mapping]]] = ..., total_count: _Optional[int] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RecordManualPaymentRequest(_message.Message):
    __slots__ = ("invoice_id", "amount", "reference", "received_at", "request_id")
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    invoice_id: str
    amount: str
    reference: str
    received_at: _timestamp_pb2.Timestamp
    request_id: str
    def __init__(self, invoice_id: _Optional[str] = ..., amount: _Optional[str] = ..., reference: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RecordManualPaymentResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: _payment_pb2.Payment
    def __init__(self, payment: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ...) -> None: ...

class RunDunningRequest(_message.Message):
    __slots__ = ("as_of",)
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RunDunningResponse(_message.Message):
    __slots__ = ("attempted", "succeeded", "failed")
    ATTEMPTED_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    attempted: int
    succeeded: int
    failed: int
    def __init__(self, attempted: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class HandleGatewayWebhookRequest(_message.Message):
    __slots__ = ("gateway", "payload", "headers")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    gateway: str
    payload: bytes
    headers: _containers.ScalarMap[str, str]
    def __init__(self, gateway: _Optional[str] = ..., payload: _Optional[bytes] = ..., headers: _Optional[_Mapping[str, str]] = ...) -> None: ...

class HandleGatewayWebhookResponse(_message.Message):
    __slots__ = ("accepted", "event_id", "duplicate")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    event_id: str
    duplicate: bool
    def __init__(self, accepted: _Optional[bool] = ..., event_id: _Optional[str] = ..., duplicate: _Optional[bool] = ...) -> None: ...
