"""Bearer-token authentication and scope checks (API.md Authentication, SPEC.md §10).

`AuthInterceptor` verifies the token and the method's scope before the servicer runs and makes the
caller visible to it through `current_principal()`; servicers then check organisation access with
`require_organization`.

It also makes requests that cannot be decoded answer as SPEC §11 says, UNAUTHENTICATED without a
valid token and INVALID_ARGUMENT with one, where grpc.aio would answer UNKNOWN and log an error:
the handler's request deserializer hands the behaviour `_UNDECODABLE` instead of raising.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
import jwt
from google.protobuf.message import DecodeError

from taskforge_common.clock import Clock, SystemClock, ensure_utc
from taskforge_common.config import JWT_PUBLIC_KEY_VAR, AuthSettings, ConfigError
from taskforge_common.errors import (
    BillingError,
    InvalidArgument,
    PermissionDenied,
    Reason,
    Unauthenticated,
)
from taskforge_common.grpc.errors import abort
from taskforge_common.validation import parse_uuid

if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor

logger = logging.getLogger(__name__)

LEEWAY = timedelta(seconds=30)
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
# Services anyone may call without a token: probes and tooling need them.
PUBLIC_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


class Scope(StrEnum):
    USAGE_WRITE = "usage:write"
    LIMITS_READ = "limits:read"
    BILLING_READ = "billing:read"
    BILLING_WRITE = "billing:write"
    BILLING_ADMIN = "billing:admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller of one request."""

    subject: str
    organization_id: str | None
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return Scope.BILLING_ADMIN in self.scopes

    def has(self, scope: str) -> bool:
        """billing:admin implies every other scope."""
        return scope in self.scopes or self.is_admin

    def can_access(self, organization_id: str) -> bool:
        """A token bound to an organisation reaches only that one, even with billing:admin
        (SPEC §10: never another organisation's data); an unbound token reaches any."""
        return self.organization_id is None or self.organization_id == organization_id


def require_scope(principal: Principal, scope: Scope) -> None:
    if not principal.has(scope):
        raise PermissionDenied(
            f"the token lacks the {scope.value} scope", reason=Reason.SCOPE_MISSING
        )


def require_organization(principal: Principal, organization_id: str) -> None:
    # Same message whether or not the organisation exists: the answer must not reveal that.
    if not principal.can_access(organization_id):
        raise PermissionDenied(
            "the token does not grant access to this organization",
            reason=Reason.ORGANIZATION_FORBIDDEN,
        )


_current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar(
    "taskforge_principal"
)


def current_principal() -> Principal:
    """The caller of the RPC being served; set by AuthInterceptor."""
    principal = _current_principal.get(None)
    if principal is None:
        raise Unauthenticated("the call carries no verified token", reason=Reason.TOKEN_MISSING)
    return principal


def issue_token(
    secret: str,
    subject: str,
    scopes: Iterable[str],
    organization_id: str | None = None,
    ttl: timedelta = timedelta(hours=1),
    *,
    now: datetime,
    issuer: str = "taskforge",
    audience: str = "taskforge-billing",
) -> str:
    """An HS256 token as API.md describes it (dev runner, service-to-service calls, tests)."""
    issued_at = ensure_utc(now)
    claims: dict[str, Any] = {
        "sub": subject,
        "scope": " ".join(scopes),
        "iss": issuer,
        "aud": audience,
        "iat": int(issued_at.timestamp()),
        "exp": int((issued_at + ttl).timestamp()),
    }
    if organization_id is not None:
        claims["org_id"] = organization_id
    return jwt.encode(claims, secret, algorithm="HS256")


class ServiceTokenSource:
    """A service's own token for calls to its peers, reissued when half of its lifetime is gone.

    Pass it as `token_provider` to `create_channel`.
    """

    def __init__(
        self,
        settings: AuthSettings,
        subject: str,
        scopes: Iterable[Scope],
        *,
        clock: Clock | None = None,
        ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self._settings = settings
        self._subject = subject
        self._scopes = tuple(scopes)
        self._clock = clock or SystemClock()
        self._ttl = ttl
        self._token = ""
        self._renew_at: datetime | None = None

    def __call__(self) -> str:
        now = self._clock.now()
        if self._renew_at is None or now >= self._renew_at:
            self._token = issue_token(
                self._settings.jwt_secret,
                self._subject,
                self._scopes,
                ttl=self._ttl,
                now=now,
                issuer=self._settings.issuer,
                audience=self._settings.audience,
            )
            self._renew_at = now + self._ttl / 2
        return self._token


class JwtVerifier:
    """Verifies bearer tokens: HS256 with the shared secret, RS256 when a public key is configured.

    The algorithm is taken from the token header but each algorithm is only ever checked against its
    own kind of key, so an RS256 public key can never be used as an HMAC secret. Verified tokens are
    cached (bounded LRU, until they expire) because every call pays for verification. Time checks
    use the injected clock.
    """

    def __init__(
        self,
        settings: AuthSettings,
        *,
        clock: Clock | None = None,
        cache_size: int = 10_000,
        leeway: timedelta = LEEWAY,
    ) -> None:
        self._settings = settings
        self._clock = clock or SystemClock()
        self._leeway = leeway.total_seconds()
        self._keys: dict[str, Any] = {"HS256": settings.jwt_secret}
        if settings.jwt_public_key:
            try:
                self._keys["RS256"] = jwt.get_algorithm_by_name("RS256").prepare_key(
                    settings.jwt_public_key
                )
            except NotImplementedError:
                raise ConfigError(
                    f"{JWT_PUBLIC_KEY_VAR} needs the 'cryptography' package for RS256"
                ) from None
            except (ValueError, jwt.InvalidKeyError) as err:
                raise ConfigError(
                    f"{JWT_PUBLIC_KEY_VAR} is not a usable RSA public key: {err}"
                ) from err
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_size = cache_size

    def verify(self, token: str) -> Principal:
        """The caller named by `token`; Unauthenticated if it is malformed, forged or expired."""
        now = self._clock.now().timestamp()
        cached = self._cache.get(token)
        if cached is not None:
            principal, expires_at = cached
            if now <= expires_at + self._leeway:
                self._cache.move_to_end(token)
                return principal
            del self._cache[token]
        principal, expires_at = self._decode(token, now)
        self._cache[token] = (principal, expires_at)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    def _decode(self, token: str, now: float) -> tuple[Principal, float]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            key = self._keys.get(algorithm) if isinstance(algorithm, str) else None
            if key is None:
                raise Unauthenticated(f"tokens signed with {algorithm!r} are not accepted")
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                # exp and nbf are checked below against the injected clock.
                options={
                    "require": REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the token signature is invalid") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token is not meant for this audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the token has an unknown issuer") from None
        except jwt.MissingRequiredClaimError as err:
            raise Unauthenticated(f"the token lacks the {err.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("the token is malformed") from None
        expires_at = _number_claim(claims, "exp")
        if now > expires_at + self._leeway:
            raise Unauthenticated("the token has expired", reason=Reason.TOKEN_EXPIRED)
        if "nbf" in claims and now < _number_claim(claims, "nbf") - self._leeway:
            raise Unauthenticated("the token is not valid yet")
        return _principal(claims), expires_at


def _number_claim(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthenticated(f"the token's {name!r} claim is not a timestamp")
    return float(value)


def _principal(claims: Mapping[str, Any]) -> Principal:
    subject = claims["sub"]
    scope = claims.get("scope", "")
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("the token's 'sub' claim must be a non-empty string")
    if not isinstance(scope, str):
        raise Unauthenticated("the token's 'scope' claim must be a space-separated string")
    return Principal(subject, _organization(claims), frozenset(scope.split()))


def _organization(claims: Mapping[str, Any]) -> str | None:
    """The canonical id of the organisation the token is bound to; None when the claim is
    absent (API.md). A null or empty claim must not turn a bound token into an unbound one, and
    the canonical form makes it compare equal to the canonical ids requests are checked with."""
    if "org_id" not in claims:
        return None
    value = claims["org_id"]
    try:
        if isinstance(value, str):
            return parse_uuid(value, "org_id")
    except InvalidArgument:
        pass
    raise Unauthenticated("the token's 'org_id' claim must be an organization id (UUID)")


_Behavior = Callable[[Any, Any], Any]
_Deserializer = Callable[[bytes], Any]

# What AuthInterceptor's request deserializers answer for bytes that do not decode, in place of
# raising; the behaviour refuses it, so no servicer ever sees it.
_UNDECODABLE = object()
UNDECODABLE_MESSAGE = "the request could not be decoded"


class AuthInterceptor(_ServerInterceptor):
    """Requires a valid bearer token carrying the method's scope before a servicer method runs.

    `method_scopes` maps full method names ("/taskforge.metering.v1.MeteringService/RecordUsage")
    to the scope they need. Methods of `public_services` (health, reflection) need no token; any
    other method missing from the map is refused, so a forgotten entry fails closed.

    A unary request that cannot be decoded reaches no servicer: it is refused like any other
    request without a valid token, and answered INVALID_ARGUMENT (UNDECODABLE_REQUEST) with one.
    Servicer behaviours are async, as grpc.aio servicers are.
    """

    def __init__(
        self,
        verifier: JwtVerifier,
        method_scopes: Mapping[str, Scope],
        *,
        public_services: Collection[str] = PUBLIC_SERVICES,
    ) -> None:
        self._verifier = verifier
        self._method_scopes = dict(method_scopes)
        self._public_services = frozenset(public_services)
        # Per configured method (so bounded): the handler the continuation gave and its guarded
        # copy, built once: rebuilding a handler on every call cost 11 us per call.
        self._guarded: dict[str, tuple[_Handler, _Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.lstrip("/").split("/")[0] in self._public_services:
            return handler
        try:
            scope = self._method_scopes.get(method)
            if scope is None:
                logger.error("refused %s: no scope is configured for it", method)
                raise PermissionDenied(
                    "this method is not available", reason=Reason.METHOD_NOT_ALLOWED
                )
            principal = self._verifier.verify(_bearer_token(handler_call_details))
            require_scope(principal, scope)
        except BillingError as err:
            return _denial(handler, err)
        # grpc.aio runs a call's interceptors and its handler in one task of the call's own, so
        # the principal set here is what the handler sees, and it ends with the call; no
        # per-call handler wrapper needed. The tests check both.
        _current_principal.set(principal)
        guarded = self._guarded.get(method)
        if guarded is None or guarded[0] is not handler:
            guarded = self._guarded[method] = (handler, _guard(handler, method))
        return guarded[1]


def _bearer_token(details: grpc.HandlerCallDetails) -> str:
    """The bearer token of the call; without a usable header there is no token (TOKEN_MISSING)."""
    values = [value for key, value in details.invocation_metadata or () if key == "authorization"]
    if not values:
        raise Unauthenticated(
            "missing bearer token: send 'authorization: Bearer <token>' metadata",
            reason=Reason.TOKEN_MISSING,
        )
    if len(values) > 1:
        raise Unauthenticated(
            "more than one 'authorization' metadata entry", reason=Reason.TOKEN_MISSING
        )
    value = values[0].decode() if isinstance(values[0], bytes) else values[0]
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "the 'authorization' metadata must be 'Bearer <token>'", reason=Reason.TOKEN_MISSING
        )
    return token.strip()


def _rebuild(
    handler: _Handler,
    make: Callable[[_Behavior, bool], _Behavior],
    request_deserializer: _Deserializer | None,
) -> _Handler:
    """A copy of `handler` whose behaviour is `make(original behaviour, response_streaming)`."""
    if handler.request_streaming and handler.response_streaming:
        factory, behavior = grpc.stream_stream_rpc_method_handler, handler.stream_stream
    elif handler.request_streaming:
        factory, behavior = grpc.stream_unary_rpc_method_handler, handler.stream_unary
    elif handler.response_streaming:
        factory, behavior = grpc.unary_stream_rpc_method_handler, handler.unary_stream
    else:
        factory, behavior = grpc.unary_unary_rpc_method_handler, handler.unary_unary
    assert behavior is not None, "a handler always carries the behaviour of its kind"
    return factory(
        make(behavior, handler.response_streaming),
        request_deserializer=request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _denial(handler: _Handler, err: BillingError) -> _Handler:
    """`handler` answering `err` whatever the request: it is never read, so one that does not
    decode is refused the same."""
    return _rebuild(
        handler, lambda _behavior, streaming: _aborting(err, streaming), _tolerant(handler)
    )


def _aborting(err: BillingError, streaming: bool) -> _Behavior:
    if streaming:
        # An async generator, as a streaming behaviour is to an outer interceptor that iterates
        # it (the tracing one): a coroutine there fails with TypeError and answers UNKNOWN.
        async def refuse_stream(_request: Any, context: Any) -> AsyncIterator[Any]:
            await abort(context, err)
            yield  # type: ignore[unreachable]  # only makes this a generator

        return refuse_stream

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await abort(context, err)

    return refuse


def _tolerant(handler: _Handler) -> _Deserializer | None:
    """The handler's request deserializer, answering `_UNDECODABLE` where it would raise.
    Unchanged for streaming requests: their servicer reads the messages itself."""
    deserializer = handler.request_deserializer
    if deserializer is None or handler.request_streaming:
        return deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return _UNDECODABLE

    return deserialize


def _guard(handler: _Handler, method: str) -> _Handler:
    if handler.request_streaming:
        return handler
    return _rebuild(
        handler,
        lambda behavior, streaming: _guarded(behavior, streaming, method),
        _tolerant(handler),
    )


def _guarded(behavior: _Behavior, streaming: bool, method: str) -> _Behavior:
    """`behavior`, refusing a request that did not decode. It runs on every call: one identity
    check, then the behaviour."""
    if streaming and inspect.isasyncgenfunction(behavior):

        async def guarded_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            if request is _UNDECODABLE:
                await _refuse_undecodable(context, method)
            async for response in behavior(request, context):
                yield response

        return guarded_stream

    async def guarded(request: Any, context: Any) -> Any:
        if request is _UNDECODABLE:
            await _refuse_undecodable(context, method)
        return await behavior(request, context)

    return guarded


async def _refuse_undecodable(context: grpc.aio.ServicerContext[Any, Any], method: str) -> NoReturn:
    # The caller's mistake, not the server's: a warning without a traceback.
    logger.warning("refused a request to %s that could not be decoded", method)
    await abort(context, InvalidArgument(UNDECODABLE_MESSAGE, reason=Reason.UNDECODABLE_REQUEST))
