from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from taskforge_common.clock import ManualClock
from taskforge_common.config import AuthSettings, ConfigError
from taskforge_common.errors import PermissionDenied, Reason, Unauthenticated
from taskforge_common.grpc.auth import (
    AuthInterceptor,
    JwtVerifier,
    Principal,
    Scope,
    ServiceTokenSource,
    current_principal,
    issue_token,
    require_organization,
    require_scope,
)

SECRET = "unit-test-secret-0123456789abcdefghij"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ORG = "0b7f5a52-2f6e-4c1e-9f4e-6f4d7c1b2a10"
OTHER_ORG = "6c1d9b1e-7a3f-4f43-8d0e-2b5a9c8e7f61"
ABSENT: Any = object()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def verifier(clock: ManualClock) -> JwtVerifier:
    return JwtVerifier(AuthSettings(jwt_secret=SECRET), clock=clock)


def token(scopes: tuple[str, ...] = ("billing:read",), **kwargs: Any) -> str:
    return issue_token(SECRET, "user-1", scopes, now=NOW, **kwargs)


def encode(changes: dict[str, Any]) -> str:
    """A signed token with valid claims, changed by `changes` (ABSENT removes a claim)."""
    claims: dict[str, Any] = {
        "sub": "user-1",
        "iss": "taskforge",
        "aud": "taskforge-billing",
        "exp": int((NOW + timedelta(hours=1)).timestamp()),
    }
    for key, value in changes.items():
        if value is ABSENT:
            claims.pop(key)
        else:
            claims[key] = value
    return jwt.encode(claims, SECRET, algorithm="HS256")


def test_a_valid_token_yields_its_principal(verifier: JwtVerifier) -> None:
    principal = verifier.verify(token(("usage:write", "limits:read"), organization_id=ORG))
    assert principal == Principal("user-1", ORG, frozenset({"usage:write", "limits:read"}))


def test_an_unbound_token_has_no_organization(verifier: JwtVerifier) -> None:
    assert verifier.verify(token()).organization_id is None


def test_expiry_is_checked_against_the_clock_with_30s_leeway(
    verifier: JwtVerifier, clock: ManualClock
) -> None:
    issued = token(ttl=timedelta(minutes=5))
    clock.set(NOW + timedelta(minutes=5, seconds=30))
    assert verifier.verify(issued).subject == "user-1"
    clock.set(NOW + timedelta(minutes=5, seconds=31))
    with pytest.raises(Unauthenticated, match="expired") as expired:
        verifier.verify(issued)
    assert expired.value.reason is Reason.TOKEN_EXPIRED


def test_a_token_not_yet_valid_is_refused(verifier: JwtVerifier) -> None:
    early = encode({"nbf": int((NOW + timedelta(minutes=5)).timestamp())})
    with pytest.raises(Unauthenticated, match="not valid yet"):
        verifier.verify(early)


def test_a_forged_signature_is_refused(verifier: JwtVerifier) -> None:
    forged = issue_token(
        "another-secret-0123456789abcdefghijkl", "user-1", ["billing:admin"], now=NOW
    )
    with pytest.raises(Unauthenticated, match="signature is invalid") as refused:
        verifier.verify(forged)
    assert refused.value.reason is Reason.TOKEN_INVALID


def test_a_tampered_payload_is_refused(verifier: JwtVerifier) -> None:
    header, _payload, signature = token().split(".")
    claims = jwt.decode(token(), options={"verify_signature": False})
    claims["scope"] = "billing:admin"
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated, match="signature is invalid"):
        verifier.verify(f"{header}.{payload}.{signature}")


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"aud": "someone-else"}, "not meant for this audience"),
        ({"iss": "evil"}, "unknown issuer"),
        ({"exp": ABSENT}, "lacks the 'exp' claim"),
        ({"sub": ABSENT}, "lacks the 'sub' claim"),
        ({"aud": ABSENT}, "lacks the 'aud' claim"),
        ({"exp": "tomorrow"}, "'exp' claim is not a timestamp"),
        ({"sub": ""}, "'sub' claim must be a non-empty string"),
        ({"scope": ["billing:read"]}, "'scope' claim must be a space-separated string"),
    ],
)
def test_bad_claims_are_refused(
    verifier: JwtVerifier, claims: dict[str, Any], message: str
) -> None:
    with pytest.raises(Unauthenticated, match=message) as refused:
        verifier.verify(encode(claims))
    assert refused.value.reason is Reason.TOKEN_INVALID


@pytest.mark.parametrize(
    "org_id",
    [
        None,  # JSON null: not the same as an absent claim
        "",
        "acme",
        42,
        [ORG],
        ORG.replace("-", ""),
        "{" + ORG + "}",
        "urn:uuid:" + ORG,
        ORG + "\n",
        " " + ORG,
        ORG[:-1] + "g",
    ],
    ids=repr,
)
def test_an_org_id_claim_that_is_not_a_uuid_is_refused(
    verifier: JwtVerifier, org_id: object
) -> None:
    with pytest.raises(Unauthenticated, match="'org_id' claim must be an organization id") as bad:
        verifier.verify(encode({"org_id": org_id}))
    assert bad.value.reason is Reason.TOKEN_INVALID


def test_an_org_id_claim_is_held_in_canonical_form(verifier: JwtVerifier) -> None:
    principal = verifier.verify(encode({"org_id": ORG.upper()}))
    assert principal.organization_id == ORG
    assert principal.can_access(ORG)


def test_a_token_without_scope_claim_has_no_scopes(verifier: JwtVerifier) -> None:
    principal = verifier.verify(encode({}))
    assert principal.scopes == frozenset()
    assert not principal.has(Scope.BILLING_READ)


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c"])
def test_garbage_is_refused(verifier: JwtVerifier, garbage: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed") as refused:
        verifier.verify(garbage)
    assert refused.value.reason is Reason.TOKEN_INVALID


def test_unsigned_tokens_are_refused(verifier: JwtVerifier) -> None:
    unsigned = jwt.encode(jwt.decode(token(), options={"verify_signature": False}), "", "none")
    with pytest.raises(Unauthenticated, match="'none' are not accepted"):
        verifier.verify(unsigned)


def test_rs256_is_refused_without_a_public_key(verifier: JwtVerifier) -> None:
    _header, payload, signature = token().split(".")
    rs256 = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').rstrip(b"=").decode()
    with pytest.raises(Unauthenticated, match="'RS256' are not accepted"):
        verifier.verify(f"{rs256}.{payload}.{signature}")


def test_rs256_tokens_verify_with_the_configured_public_key(clock: ManualClock) -> None:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = JwtVerifier(AuthSettings(jwt_secret=SECRET, jwt_public_key=public_pem), clock=clock)
    claims = {
        "sub": "svc-subscriptions",
        "scope": "billing:admin",
        "iss": "taskforge",
        "aud": "taskforge-billing",
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
    }
    principal = verifier.verify(jwt.encode(claims, private_key, algorithm="RS256"))
    assert principal.subject == "svc-subscriptions"
    assert principal.is_admin
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthenticated):
        verifier.verify(jwt.encode(claims, other_key, algorithm="RS256"))


def test_a_malformed_public_key_fails_at_startup() -> None:
    settings = AuthSettings(jwt_secret=SECRET, jwt_public_key="-----BEGIN PUBLIC KEY-----")
    with pytest.raises(ConfigError):
        JwtVerifier(settings)


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real_decode: Callable[..., dict[str, Any]] = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    return calls


def test_verified_tokens_are_cached(verifier: JwtVerifier, decode_calls: list[str]) -> None:
    issued = token()
    assert verifier.verify(issued) == verifier.verify(issued)
    assert decode_calls == [issued]


def test_the_cache_does_not_outlive_the_token(
    verifier: JwtVerifier, clock: ManualClock, decode_calls: list[str]
) -> None:
    issued = token(ttl=timedelta(minutes=1))
    verifier.verify(issued)
    clock.advance(timedelta(minutes=2))
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(issued)
    assert decode_calls == [issued, issued]


def test_the_cache_is_bounded(clock: ManualClock, decode_calls: list[str]) -> None:
    verifier = JwtVerifier(AuthSettings(jwt_secret=SECRET), clock=clock, cache_size=1)
    first, second = token(("billing:read",)), token(("billing:write",))
    for issued in (first, second, first):
        verifier.verify(issued)
    assert decode_calls == [first, second, first]


def test_admin_implies_every_scope() -> None:
    admin = Principal("ops", None, frozenset({"billing:admin"}))
    reader = Principal("app", ORG, frozenset({"billing:read"}))
    assert all(admin.has(scope) for scope in Scope)
    assert reader.has(Scope.BILLING_READ)
    assert not reader.has(Scope.BILLING_WRITE)
    assert not reader.has(Scope.BILLING_ADMIN)


def test_organization_access_rules() -> None:
    bound = Principal("app", ORG, frozenset({"billing:read"}))
    bound_admin = Principal("app", ORG, frozenset({"billing:admin"}))
    unbound_service = Principal("svc-subscriptions", None, frozenset({"usage:write"}))
    assert bound.can_access(ORG)
    assert not bound.can_access(OTHER_ORG)
    assert not bound_admin.can_access(OTHER_ORG)  # a bound token never leaves its organisation
    assert unbound_service.can_access(ORG)
    assert unbound_service.can_access(OTHER_ORG)


def test_require_helpers() -> None:
    bound = Principal("app", ORG, frozenset({"billing:read"}))
    require_scope(bound, Scope.BILLING_READ)
    require_organization(bound, ORG)
    with pytest.raises(PermissionDenied, match="lacks the billing:write scope") as lacking:
        require_scope(bound, Scope.BILLING_WRITE)
    assert lacking.value.reason is Reason.SCOPE_MISSING
    with pytest.raises(PermissionDenied) as denied:
        require_organization(bound, OTHER_ORG)
    assert OTHER_ORG not in denied.value.message
    assert denied.value.reason is Reason.ORGANIZATION_FORBIDDEN


def test_current_principal_outside_a_call_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated) as refused:
        current_principal()
    assert refused.value.reason is Reason.TOKEN_MISSING


def test_issue_token_claims() -> None:
    claims = jwt.decode(
        token(("usage:write", "limits:read"), organization_id=ORG, ttl=timedelta(minutes=10)),
        SECRET,
        algorithms=["HS256"],
        audience="taskforge-billing",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "sub": "user-1",
        "org_id": ORG,
        "scope": "usage:write limits:read",
        "iss": "taskforge",
        "aud": "taskforge-billing",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=10)).timestamp()),
    }


def test_issue_token_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        issue_token(SECRET, "user-1", [], now=datetime(2025, 3, 1))  # noqa: DTZ001


def test_service_token_source_reissues_after_half_its_lifetime(
    verifier: JwtVerifier, clock: ManualClock
) -> None:
    source = ServiceTokenSource(
        AuthSettings(jwt_secret=SECRET),
        "svc-subscriptions",
        [Scope.USAGE_WRITE, Scope.LIMITS_READ],
        clock=clock,
        ttl=timedelta(minutes=10),
    )
    first = source()
    clock.advance(timedelta(minutes=4, seconds=59))
    assert source() == first
    clock.advance(timedelta(seconds=1))
    renewed = source()
    assert renewed != first
    clock.advance(timedelta(minutes=9))
    assert verifier.verify(renewed) == Principal(
        "svc-subscriptions", None, frozenset({"usage:write", "limits:read"})
    )


async def test_the_guarded_handler_is_built_once_per_method(verifier: JwtVerifier) -> None:
    """The per-call cost stays one identity check: no handler is rebuilt on the hot path."""
    method = "/taskforge.test.v1.S/Get"
    interceptor = AuthInterceptor(verifier, {method: Scope.BILLING_READ})
    details = cast(
        "grpc.HandlerCallDetails",
        SimpleNamespace(
            method=method, invocation_metadata=(("authorization", f"Bearer {token()}"),)
        ),
    )

    async def echo(request: bytes, context: object) -> bytes:
        return request

    handlers = [grpc.unary_unary_rpc_method_handler(echo) for _ in range(2)]

    def continuation(handler: Any) -> Callable[[grpc.HandlerCallDetails], Awaitable[Any]]:
        async def resolve(_details: grpc.HandlerCallDetails) -> Any:
            return handler

        return resolve

    first = await interceptor.intercept_service(continuation(handlers[0]), details)
    assert await interceptor.intercept_service(continuation(handlers[0]), details) is first
    # Another handler for the method (a server with new servicers): guarded afresh.
    other = await interceptor.intercept_service(continuation(handlers[1]), details)
    assert other is not first
    assert await interceptor.intercept_service(continuation(handlers[1]), details) is other
