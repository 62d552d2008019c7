"""Settings, read once from SESSIONHUB_* environment variables, cast and validated at start.

A bad value stops the server with a message that names the variable.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..auth.tokens import HS256, RS256, TokenConfig
from .errors import SettingsError

ENV_PREFIX = "SESSIONHUB_"
MIN_SECRET_CHARS = 32


def _default_chat_apps_file() -> Path:
    return Path(str(resources.files("sessionhub.server") / "chat_apps.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str = Field(
        "sqlite:///./sessionhub.db",
        description="sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite:///:memory:",
    )
    environment: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    jwt_secret: SecretStr | None = None
    jwt_public_key_file: Path | None = None
    jwt_private_key_file: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = Field(30, ge=0, le=600)
    dev_secret_file: Path = Path(".sessionhub/dev-jwt-secret")
    chat_apps_file: Path = Field(default_factory=_default_chat_apps_file)
    graphiql: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = False
    sqlite_readers: int = Field(4, ge=1, le=64)
    sqlite_busy_timeout_ms: int = Field(5000, ge=0, le=600_000)
    share_expiry_sweep_seconds: float = Field(
        15.0, gt=0, le=3600, description="How often ended shares are recorded and enforced."
    )
    max_content_chars: int = Field(100_000, ge=1, le=10_000_000)
    max_title_chars: int = Field(200, ge=10, le=10_000)

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value.startswith("sqlite:///"):
            if value == "sqlite:///":
                raise ValueError("the SQLite URL names no file")
            return value
        if value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError(
                "the MongoDB backend is not available in this build yet; use sqlite:///"
            )
        raise ValueError("must start with sqlite:/// (MongoDB URLs are not supported yet)")

    @field_validator("jwt_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(f"must be at least {MIN_SECRET_CHARS} characters")
        return value

    @field_validator("jwt_public_key_file", "jwt_private_key_file", "chat_apps_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @property
    def sqlite_path(self) -> str:
        return self.database_url.removeprefix("sqlite:///")

    @property
    def production(self) -> bool:
        return self.environment == "production"


def load_settings(**overrides: object) -> Settings:
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ENV_PREFIX + "_".join(str(p) for p in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(problems)) from exc
    token_config(settings)
    return settings


@dataclass(frozen=True, slots=True)
class _Keys:
    algorithm: str
    verify: str | bytes
    sign: str | bytes | None


def _keys(settings: Settings) -> _Keys:
    if settings.jwt_public_key_file is not None:
        if settings.jwt_secret is not None:
            raise SettingsError(
                f"{ENV_PREFIX}JWT_SECRET and {ENV_PREFIX}JWT_PUBLIC_KEY_FILE are both set; "
                "choose HS256 (secret) or RS256 (public key)."
            )
        public = settings.jwt_public_key_file.read_bytes()
        if b"PUBLIC KEY" not in public:
            raise SettingsError(
                f"{ENV_PREFIX}JWT_PUBLIC_KEY_FILE: {settings.jwt_public_key_file} "
                "holds no PEM public key."
            )
        private = (
            settings.jwt_private_key_file.read_bytes() if settings.jwt_private_key_file else None
        )
        return _Keys(RS256, public, private)
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value()
        return _Keys(HS256, secret, secret)
    if settings.production:
        raise SettingsError(
            f"{ENV_PREFIX}JWT_SECRET or {ENV_PREFIX}JWT_PUBLIC_KEY_FILE must be set in production."
        )
    secret = _development_secret(settings.dev_secret_file)
    return _Keys(HS256, secret, secret)


def _development_secret(path: Path) -> str:
    """A random secret kept beside the data, so `sessionhub token` and the server agree
    without anyone shipping a known default."""
    if path.is_file():
        secret = path.read_text().strip()
        if len(secret) >= MIN_SECRET_CHARS:
            return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret)
    return secret


def token_config(settings: Settings) -> TokenConfig:
    keys = _keys(settings)
    return TokenConfig(
        algorithm=keys.algorithm,
        verify_key=keys.verify,
        signing_key=keys.sign,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway_seconds=settings.jwt_leeway_seconds,
    )
