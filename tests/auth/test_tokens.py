from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sessionhub.auth.errors import ExpiredToken, InvalidToken, MissingToken
from sessionhub.auth.tokens import HS256, RS256, TokenConfig, TokenIssuer, TokenVerifier
from sessionhub.domain.models import Role, UserType

SECRET = "a-test-secret-of-sufficient-length-000000"
HS = TokenConfig(HS256, SECRET, SECRET)


def test_issued_tokens_verify_into_the_principal() -> None:
    token = TokenIssuer(HS).issue(
        "dan",
        "partner",
        [Role.USER, Role.AUDITOR],
        user_type=UserType.EXTERNAL,
        time_zone="Europe/Oslo",
    )
    principal = TokenVerifier(HS).principal_from_header(f"Bearer {token}")
    assert principal.user_id == "dan" and principal.entity_id == "partner"
    assert principal.roles == {Role.USER, Role.AUDITOR}
    assert principal.user_type is UserType.EXTERNAL and principal.time_zone == "Europe/Oslo"


def test_rs256_with_a_key_pair() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = TokenIssuer(TokenConfig(RS256, public, private)).issue("alice", "acme")
    assert (
        TokenVerifier(TokenConfig(RS256, public, None)).principal_from_token(token).user_id
        == "alice"
    )
    # An HS256 token made with the public key as secret must not pass (algorithm confusion).
    with pytest.raises(InvalidToken):
        forged = jwt.encode(
            {"sub": "x", "entity": "acme", "exp": time.time() + 60}, "k" * 40, "HS256"
        )
        TokenVerifier(TokenConfig(RS256, public, None)).principal_from_token(forged)


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (None, MissingToken),
        ("", MissingToken),
        ("Basic abc", InvalidToken),
        ("Bearer ", InvalidToken),
        ("Bearer not.a.jwt", InvalidToken),
    ],
)
def test_malformed_headers(header: str | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        TokenVerifier(HS).principal_from_header(header)


def claims(**overrides: object) -> dict:
    base = {"sub": "alice", "entity": "acme", "exp": int(time.time()) + 60}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("payload", "secret", "error"),
    [
        (claims(exp=int(time.time()) - 3600), SECRET, ExpiredToken),
        (claims(), "another-secret-that-is-long-enough-000000", InvalidToken),
        (claims(entity=None), SECRET, InvalidToken),
        (claims(exp=None), SECRET, InvalidToken),
        (claims(sub=""), SECRET, InvalidToken),
        (claims(roles=["wizard"]), SECRET, InvalidToken),
        (claims(roles="admin"), SECRET, InvalidToken),
        (claims(user_type="ALIEN"), SECRET, InvalidToken),
    ],
)
def test_rejected_tokens(payload: dict, secret: str, error: type[Exception]) -> None:
    token = jwt.encode(payload, secret, algorithm="HS256")
    with pytest.raises(error):
        TokenVerifier(HS).principal_from_token(token)


def test_issuer_and_audience_are_checked_when_configured() -> None:
    strict = TokenConfig(HS256, SECRET, SECRET, issuer="sessionhub", audience="chat")
    good = TokenIssuer(strict).issue("alice", "acme")
    assert TokenVerifier(strict).principal_from_token(good).user_id == "alice"
    other = TokenIssuer(HS).issue("alice", "acme")
    with pytest.raises(InvalidToken):
        TokenVerifier(strict).principal_from_token(other)


def test_a_remembered_token_is_checked_again_once_its_time_is_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sessionhub.auth import tokens

    verifier = TokenVerifier(HS)
    token = TokenIssuer(HS).issue("alice", "acme", (Role.USER,), ttl_seconds=60)
    first = verifier.principal_from_token(token)
    assert verifier.principal_from_token(token) is first  # remembered, not decoded again
    later = time.time() + 60 + HS.leeway_seconds + 1
    monkeypatch.setattr(tokens, "now", lambda: later)
    again = verifier.principal_from_token(token)  # past `exp`: verified by PyJWT again
    assert again == first and again is not first
    expired = TokenIssuer(HS).issue("alice", "acme", (Role.USER,), ttl_seconds=-60)
    with pytest.raises(ExpiredToken):
        verifier.principal_from_token(expired)


def test_tokens_are_remembered_only_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionhub.auth import tokens

    monkeypatch.setattr(tokens, "VERIFIED_TOKENS_KEPT", 3)
    verifier = TokenVerifier(HS)
    issuer = TokenIssuer(HS)
    for user in ("a", "b", "c", "d", "e"):
        verifier.principal_from_token(issuer.issue(user, "acme", (Role.USER,)))
    assert len(verifier._verified) == 3
