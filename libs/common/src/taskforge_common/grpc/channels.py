"""Client channels for peer services: a deadline on every call and the service's own token."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import grpc

if TYPE_CHECKING:
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
    _StreamUnary = grpc.aio.StreamUnaryClientInterceptor[Any, Any]
    _StreamStream = grpc.aio.StreamStreamClientInterceptor[Any, Any]
else:
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor
    _StreamUnary = grpc.aio.StreamUnaryClientInterceptor
    _StreamStream = grpc.aio.StreamStreamClientInterceptor


class _CallDefaults:
    """Fills in what a call leaves out: the default deadline and the authorization metadata."""

    def __init__(self, default_timeout: float, token_provider: Callable[[], str] | None) -> None:
        self._default_timeout = default_timeout
        self._token_provider = token_provider

    def _complete(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        if self._token_provider is not None and "authorization" not in metadata:
            metadata["authorization"] = f"Bearer {self._token_provider()}"
        timeout = details.timeout if details.timeout is not None else self._default_timeout
        return grpc.aio.ClientCallDetails(
            details.method, timeout, metadata, details.credentials, details.wait_for_ready
        )


# grpc.aio files each interceptor under the first call kind it implements, so one class per kind.
class _UnaryUnaryDefaults(_CallDefaults, _UnaryUnary):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._complete(details), request)


class _UnaryStreamDefaults(_CallDefaults, _UnaryStream):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._complete(details), request)


class _StreamUnaryDefaults(_CallDefaults, _StreamUnary):
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._complete(details), requests)


class _StreamStreamDefaults(_CallDefaults, _StreamStream):
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._complete(details), requests)


def create_channel(
    target: str,
    *,
    default_timeout: float,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    token_provider: Callable[[], str] | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """An insecure grpc.aio channel to `target` ("host:port").

    Calls without a timeout get `default_timeout` seconds; with `token_provider`, every call carries
    `authorization: Bearer <token>` unless it sets its own. `interceptors` (e.g. the telemetry
    client interceptors) run inside these, so they see the completed call details. Create one
    channel per peer and keep it for the life of the process.
    """
    # grpc-stubs types client interceptors as "cast me" placeholders.
    defaults = [
        cast(grpc.aio.ClientInterceptor, kind(default_timeout, token_provider))
        for kind in (
            _UnaryUnaryDefaults,
            _UnaryStreamDefaults,
            _StreamUnaryDefaults,
            _StreamStreamDefaults,
        )
    ]
    return grpc.aio.insecure_channel(
        target, options=options, interceptors=[*defaults, *interceptors]
    )
