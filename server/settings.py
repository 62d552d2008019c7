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
from urllib.parse import unquote

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..auth.secret_strength import weakness
from ..auth.tokens import HS256, RS256, TokenConfig
from .errors import SettingsError
from .rate_limits import parse_rate

ENV_PREFIX = "SESSIONHUB_"
MIN_SECRET_CHARS = 32
MONGO_SCHEMES = ("mongodb://", "mongodb+srv://")


def _mongo_hosts(url: str) -> str:
    rest = url.split("://", 1)[1]
    return rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]


def _mongo_path(url: str) -> str:
    rest = url.split("://", 1)[1].split("?", 1)[0]
    return unquote(rest.split("/", 1)[1]) if "/" in rest else ""


def _default_chat_apps_file() -> Path:
    """The shipped server/chat_apps.toml."""
    return Path(str(resources.files("sessionhub.server") / "chat_apps.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str = Field(
        "sqlite:///./sessionhub.db",
        description="sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite:///:memory:,"
        " mongodb://host[:port][,host...]/[database][?options] or mongodb+srv://...",
    )
    mongo_database: str = Field(
        "sessionhub", min_length=1, description="MongoDB database when the URL names none."
    )
    mongo_search: Literal["stems", "atlas"] = Field(
        "stems",
        description="How MongoDB answers searches: stems (stored Porter stems, any MongoDB) or "
        "atlas (Atlas Search $search; apply its indexes with `sessionhub mongo "
        "apply-search-index`).",
    )
    mongo_transactions: Literal["detect", "on", "off"] = Field(
        "detect",
        description="Whether MongoDB writes that touch several collections run in "
        "multi-document transactions: detect (the server's `hello` decides: a replica set "
        "member or mongos has them), on, or off (each write step by step, ordered so that "
        "an interruption leaves nothing half-done).",
    )
    mongo_create_indexes: bool = Field(
        True,
        description="Whether the server creates the MongoDB collections' missing indexes at "
        "start (storage/mongo/indexes.py). false leaves them to the operator: on a large "
        "cluster an index build is scheduled (a rolling build), not run by whichever "
        "instance starts first.",
    )
    environment: Literal["development", "production"] = Field(
        "development",
        description="production refuses to start without a JWT key, or with a secret that is "
        "easy to guess; development makes a random secret of its own (SESSIONHUB_DEV_SECRET_FILE).",
    )
    host: str = Field(
        "127.0.0.1", description="Address `sessionhub serve` listens on (also --host)."
    )
    port: int = Field(
        8000, ge=1, le=65535, description="Port `sessionhub serve` listens on (also --port)."
    )
    jwt_secret: SecretStr | None = Field(
        None,
        description="HS256 secret: at least 32 characters and, in production, at least 80 bits "
        "by an entropy estimate (placeholder words such as changeme, runs such as aaaa or 1234 "
        "and repetition taken out); development starts below it and logs "
        "settings.weak_jwt_secret. Make one with "
        "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`.",
    )
    jwt_public_key_file: Path | None = Field(
        None, description="PEM public key for RS256, instead of the secret."
    )
    jwt_private_key_file: Path | None = Field(
        None, description="PEM private key, only for `sessionhub token` with RS256."
    )
    jwt_issuer: str | None = Field(None, description="Checked against `iss` when set.")
    jwt_audience: str | None = Field(None, description="Checked against `aud` when set.")
    jwt_leeway_seconds: int = Field(
        30, ge=0, le=600, description="Clock skew allowed when checking `exp`."
    )
    dev_secret_file: Path = Field(
        Path(".sessionhub/dev-jwt-secret"),
        description="Where development keeps its random JWT secret, shared by the server and "
        "`sessionhub token`.",
    )
    chat_apps_file: Path = Field(
        default_factory=_default_chat_apps_file,
        description="The chat apps and their session settings (TOML).",
    )
    graphiql: bool = Field(True, description="Serve GraphiQL on GET /graphql for browsers.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level logged."
    )
    log_json: bool = Field(False, description="Log JSON lines instead of readable text.")
    sqlite_readers: int = Field(
        4, ge=1, le=64, description="SQLite reader connections beside the one writer."
    )
    sqlite_busy_timeout_ms: int = Field(
        5000,
        ge=0,
        le=600_000,
        description="How long a SQLite connection waits for a lock held by another process.",
    )
    share_expiry_sweep_seconds: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="How often expired shares are recorded and their live subscriptions ended "
        "(access itself is checked on every request).",
    )
    retention_interval_seconds: float = Field(
        3600.0,
        ge=0,
        le=7 * 86_400,
        description="How often the server removes sessions past their retention (0: never; "
        "`sessionhub retention run` does it on demand). Expired sessions are invisible anyway.",
    )
    max_content_chars: int = Field(
        100_000, ge=1, le=10_000_000, description="Characters of one turn's content."
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest HTTP request body and WebSocket message; refused by its declared "
        "length before it is read, and while it streams in.",
    )
    max_header_bytes: int = Field(
        32 * 1024,
        ge=4096,
        le=1024 * 1024,
        description="Largest request line and headers of an HTTP request (`serve` runs uvicorn "
        "with h11 and this as its limit; larger requests are refused before the app sees them).",
    )
    max_document_chars: int = Field(
        64 * 1024, ge=1024, le=10 * 1024 * 1024, description="Largest GraphQL document."
    )
    max_query_tokens: int = Field(
        10_000, ge=100, le=1_000_000, description="Tokens of a GraphQL document, while parsing."
    )
    max_query_depth: int = Field(15, ge=2, le=100, description="Nesting of fields.")
    max_query_aliases: int = Field(50, ge=0, le=10_000, description="Aliases in an operation.")
    max_query_selections: int = Field(
        2_000,
        ge=100,
        le=1_000_000,
        description="Fields of an operation once its fragments are spread.",
    )
    max_query_cost: int = Field(
        20_000,
        ge=100,
        le=100_000_000,
        description="Objects an operation may return: estimated before it runs from its page "
        "sizes and the lists' declared sizes, and counted as its response is made.",
    )
    document_cache_bytes: int = Field(
        32 * 1024 * 1024,
        ge=0,
        le=16 * 1024**3,
        description="Memory for prepared GraphQL documents (parsed and validated), estimated.",
    )
    fast_path: bool = Field(
        True,
        description="Complete selections of plain attributes without graphql-core's per-field "
        "machinery (same results; off: every field the usual way). Its fallbacks are counted "
        "in /metrics as sessionhub_fast_path_fallbacks_total.",
    )
    max_title_chars: int = Field(
        200, ge=10, le=10_000, description="Characters of a session title."
    )
    title_first_turns: int = Field(
        6, ge=2, le=100, description="Opening turns the first automatic title is made from."
    )
    title_shift_every_turns: int = Field(
        6,
        ge=0,
        le=10_000,
        description="Check for a topic shift every N turns, against the last N (0: never).",
    )
    title_shift_threshold: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Retitle when the share of the title's (weighted) terms still used by the "
        "recent turns falls below this.",
    )
    title_queue_size: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Sessions waiting for a title; when full, a session is skipped until its "
        "next turn.",
    )
    title_workers: int = Field(2, ge=1, le=64, description="Tasks that make titles.")
    title_worker_process: bool = Field(
        True,
        description="Make titles and topic checks in one worker process, started on first "
        "use, off the server's GIL "
        "(false: in a thread, where each one holds up requests for milliseconds).",
    )
    title_llm_url: str | None = Field(
        None,
        description="An OpenAI-compatible chat-completions endpoint that writes titles instead "
        "of the offline generator, e.g. http://127.0.0.1:11434/v1 (/chat/completions is added "
        "unless given).",
    )
    title_llm_model: str | None = Field(
        None,
        validate_default=True,
        description="Model name; required with SESSIONHUB_TITLE_LLM_URL.",
    )
    title_llm_api_key: SecretStr | None = Field(
        None, description="Sent as `Authorization: Bearer …` when set."
    )
    title_llm_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="The whole request to the title endpoint; past it the offline title is used.",
    )
    export_workers: int = Field(
        2,
        ge=1,
        le=64,
        description="Worker processes that render exports (started on the first export).",
    )
    export_queue_size: int = Field(
        8,
        ge=0,
        le=10_000,
        description="Exports that may wait for a worker; past them, LIMIT_EXCEEDED (try later).",
    )
    export_time_budget_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="How long one export may render; past it its worker is killed and "
        "replaced, and the export answers LIMIT_EXCEEDED.",
    )
    export_max_in_progress_per_principal: int = Field(
        2,
        ge=1,
        le=1000,
        description="Exports one user (entity and user id) may have in progress at once, "
        "whatever the transport (one WebSocket runs many operations); past them, "
        "LIMIT_EXCEEDED.",
    )
    export_max_turns: int = Field(
        20_000, ge=1, le=10_000_000, description="Turns of all the sessions of one export."
    )
    export_max_chars: int = Field(
        20_000_000,
        ge=1,
        le=2_000_000_000,
        description="Characters of one export's turns (payloads counted as their JSON).",
    )
    export_max_pdf_chars: int = Field(
        2_000_000,
        ge=1,
        le=2_000_000_000,
        description="Characters of one PDF export, whose layout is far slower than the other "
        "formats' (see the export benchmark).",
    )
    export_max_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024,
        le=2**31,
        description="Bytes of one exported document.",
    )
    redis_url: str | None = Field(
        None,
        description="redis://, rediss:// or unix:// URL of the pub/sub broker that joins several "
        "instances; unset: in-process (one instance).",
    )
    shutdown_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=600,
        description="After SIGTERM, how long requests in flight may take to finish before "
        "they are cancelled; a process still running twice this long after the signal (its "
        "event loop stuck in work) exits at once with code 1.",
    )
    link_open_rate: str = Field(
        "10/minute",
        description="Share links one principal (entity and user id) may try to open "
        "(sessionByShareLink), an unknown token counting like a good one: `N/second`, "
        "`N/minute`, `N/hour`, `N/day` or `N per 5 minutes`, several joined by `;` (each must "
        "allow it; a try one refuses counts for none). A moving window: a burst of N at once, "
        "then one more as each try leaves the window. With SESSIONHUB_REDIS_URL the instances "
        "count together in Redis; a Redis that does not answer within 1 s is left alone for "
        "5 s, each instance counting on its own meanwhile.",
    )
    ws_init_timeout_seconds: float = Field(
        10.0, gt=0, le=600, description="How long a WebSocket may wait before connection_init."
    )
    ws_max_connections_per_principal: int = Field(
        32,
        ge=1,
        le=10_000,
        description="WebSocket connections one user (entity and user id) may hold open at once.",
    )
    ws_keepalive_seconds: float = Field(
        15.0, gt=0, le=600, description="Interval of `ka` messages on legacy graphql-ws sockets."
    )
    subscription_queue_limit: int = Field(
        1000,
        ge=10,
        le=1_000_000,
        description="Messages a subscription may have waiting for its socket before it is "
        "ended as too slow.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value.startswith("sqlite:///"):
            if value == "sqlite:///":
                raise ValueError("the SQLite URL names no file")
            return value
        if value.startswith(MONGO_SCHEMES):
            if not _mongo_hosts(value):
                raise ValueError("the MongoDB URL names no host")
            return value
        raise ValueError("must start with sqlite:///, mongodb:// or mongodb+srv://")

    @field_validator("title_llm_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @field_validator("title_llm_model")
    @classmethod
    def _model_with_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("title_llm_url") and not value:
            raise ValueError("must be set when SESSIONHUB_TITLE_LLM_URL is")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("link_open_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            items = parse_rate(value)
        except ValueError as exc:
            raise ValueError(f"{exc}; write e.g. 10/minute or 10/minute;100/hour") from exc
        if any(item.amount < 1 for item in items):
            raise ValueError("each rate must allow at least one attempt")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            return value
        if len(value.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(f"must be at least {MIN_SECRET_CHARS} characters")
        # Refused in production; development warns at start (jwt_secret_weakness), as its
        # fixtures and local setups use known secrets on purpose.
        problem = weakness(value.get_secret_value())
        if problem is not None and info.data.get("environment") == "production":
            raise ValueError(problem)
        return value

    @field_validator("jwt_public_key_file", "jwt_private_key_file", "chat_apps_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @property
    def mongo(self) -> bool:
        return self.database_url.startswith(MONGO_SCHEMES)

    @property
    def mongo_database_name(self) -> str:
        """The database the MongoDB URL names (mongodb://host/NAME?...), else mongo_database."""
        return _mongo_path(self.database_url) or self.mongo_database

    @property
    def database_url_for_logs(self) -> str:
        """The URL without the password a MongoDB URL may carry (user:password@host)."""
        scheme, sep, rest = self.database_url.partition("://")
        userinfo, at, hosts = rest.partition("@")
        if not at or ":" not in userinfo or not self.mongo:
            return self.database_url
        return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{hosts}"

    @property
    def sqlite_path(self) -> str:
        return self.database_url.removeprefix("sqlite:///")

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def jwt_secret_weakness(self) -> str | None:
        """Why the JWT secret is too easy to guess (in development, where it is allowed)."""
        return None if self.jwt_secret is None else weakness(self.jwt_secret.get_secret_value())


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
