"""JWTs in and out: verification into a Principal, and issuing tokens for development.

Claims: `sub` (user id), `entity` (entity id), `roles` (list), `user_type`
(INTERNAL | EXTERNAL), optional `tz` (IANA time zone), `exp`, `iat`, and `iss` / `aud`
when the deployment sets them.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import jwt

from ..domain.models import Principal, Role, UserType
from .errors import ExpiredToken, InvalidToken, MissingToken

HS256 = "HS256"
RS256 = "RS256"


@dataclass(frozen=True, slots=True)
class TokenConfig:
    algorithm: str
    verify_key: str | bytes
    signing_key: str | bytes | None
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = 30


# Verified tokens remembered (by a digest), most recently used kept: a client sends the
# same token with every request, and checking its signature again cost a sixth of a cheap
# read.
VERIFIED_TOKENS_KEPT = 10_000
# Far above any token an identity provider issues (an RS256 token with a few dozen claims
# is 1-2 KB); checked before anything decodes or hashes it.
MAX_TOKEN_CHARACTERS = 8 * 1024


class TokenVerifier:
    def __init__(self, config: TokenConfig) -> None:
        self._config = config
        self._verified: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    def principal_from_header(self, authorization: str | None) -> Principal:
        if not authorization:
            raise MissingToken()
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken("Use the form 'Authorization: Bearer <token>'.")
        return self.principal_from_token(token.strip())

    def principal_from_token(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_CHARACTERS:
            raise InvalidToken(
                f"The token has {len(token):,} characters; the limit is {MAX_TOKEN_CHARACTERS:,}."
            )
        key = hashlib.blake2b(token.encode(errors="surrogatepass"), digest_size=16).digest()
        remembered = self._verified.get(key)
        if remembered is not None:
            principal, valid_until = remembered
            if now() <= valid_until:
                self._verified.move_to_end(key)
                return principal
            del self._verified[key]
        config = self._config
        try:
            claims = jwt.decode(
                token,
                config.verify_key,
                algorithms=[config.algorithm],
                issuer=config.issuer,
                audience=config.audience,
                leeway=config.leeway_seconds,
                options={"require": ["sub", "exp", "entity"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise ExpiredToken() from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"The token lacks the {exc.claim!r} claim.") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"The token is not valid: {exc}.") from exc
        principal = _principal(claims)
        self._verified[key] = (principal, float(claims["exp"]) + config.leeway_seconds)
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return principal


def now() -> float:
    """Seconds since the epoch, the clock `exp` is read against (tests move it)."""
    return time.time()


def _principal(claims: dict) -> Principal:
    user_id, entity_id = claims["sub"], claims["entity"]
    if (
        not isinstance(user_id, str)
        or not user_id
        or not isinstance(entity_id, str)
        or not entity_id
    ):
        raise InvalidToken("The token's 'sub' and 'entity' claims must be non-empty strings.")
    raw_roles = claims.get("roles", [Role.USER.value])
    if not isinstance(raw_roles, list):
        raise InvalidToken("The token's 'roles' claim must be a list.")
    try:
        roles = frozenset(Role(r) for r in raw_roles)
        user_type = UserType(claims.get("user_type", UserType.INTERNAL.value))
    except ValueError as exc:
        raise InvalidToken(f"The token names something this server does not know: {exc}.") from exc
    tz = claims.get("tz")
    return Principal(
        user_id=user_id,
        entity_id=entity_id,
        user_type=user_type,
        roles=roles,
        time_zone=tz if isinstance(tz, str) else None,
    )


class TokenIssuer:
    def __init__(self, config: TokenConfig) -> None:
        if config.signing_key is None:
            raise ValueError("No signing key is configured for issuing tokens.")
        self._config = config

    def issue(
        self,
        user_id: str,
        entity_id: str,
        roles: Iterable[Role] = (Role.USER,),
        *,
        user_type: UserType = UserType.INTERNAL,
        ttl_seconds: int = 3600,
        time_zone: str | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict = {
            "sub": user_id,
            "entity": entity_id,
            "roles": [Role(r).value for r in roles],
            "user_type": user_type.value,
            "iat": now,
            "exp": now + ttl_seconds,
        }
        if time_zone:
            claims["tz"] = time_zone
        if self._config.issuer:
            claims["iss"] = self._config.issuer
        if self._config.audience:
            claims["aud"] = self._config.audience
        assert self._config.signing_key is not None
        return jwt.encode(claims, self._config.signing_key, algorithm=self._config.algorithm)
