"""Fixtures shared by every test package: settings on a temporary SQLite file, tokens,
an API client that runs the real app (lifespan included) in process, and MongoDB over the
wire (mongoeco servers, databases of their own, a MongoStore on one)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import bson
import pymongo
import pytest
from starlette.testclient import TestClient

from sessionhub.auth.tokens import TokenIssuer
from sessionhub.domain.models import Role, UserType
from sessionhub.domain.redaction import redact_details
from sessionhub.server.app import create_app
from sessionhub.server.settings import Settings, load_settings, token_config
from sessionhub.storage.mongo import MongoStore
from sessionhub.storage.mongo.driver import connect
from tests.support.mongo_wire import MongoEcoServer, MongoEcoUnavailable
from tests.support.mongo_wire import prepare as prepare_mongoeco
from tests.support.mongo_wire import start as start_mongoeco

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def _started_mongoeco(log_path: Path) -> MongoEcoServer:
    try:
        return start_mongoeco(prepare_mongoeco(), log_path)
    except MongoEcoUnavailable as exc:
        pytest.skip(f"no MongoDB-protocol server: {exc}")


@pytest.fixture(scope="session")
def mongoeco(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoEcoServer]:
    """One mongoeco wire server per test process (see tests.support.mongo_wire.py)."""
    server = _started_mongoeco(tmp_path_factory.mktemp("mongoeco") / "log")
    yield server
    server.stop()


@pytest.fixture
def own_mongoeco(tmp_path: Path) -> Iterator[MongoEcoServer]:
    """A mongoeco server for this test alone, which it may stop or freeze."""
    server = _started_mongoeco(tmp_path / "mongoeco.log")
    yield server
    server.stop()


@pytest.fixture
def mongo_database_url(mongoeco: MongoEcoServer) -> Iterator[str]:
    """The URL of a database of its own on the mongoeco server, dropped after the test."""
    with mongoeco.database() as url:
        yield url


@pytest.fixture
def mongo_database(mongo_database_url: str) -> str:
    """The name of that database."""
    return str(pymongo.uri_parser.parse_uri(mongo_database_url)["database"])


@pytest.fixture
async def mongo_store(mongo_database_url: str, mongo_database: str) -> AsyncIterator[MongoStore]:
    """A MongoStore on that database through the real Motor client (`driver.connect`),
    with the domain's redaction rule; opened, and closed after the test."""
    store = MongoStore(connect(mongo_database_url), mongo_database, redact=redact_details)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def backend() -> str:
    """The store the app under test runs on: SQLite, unless a test package asks for both
    (tests/api/conftest.py)."""
    return "sqlite"


@pytest.fixture
def settings_factory(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Callable[..., Settings]:
    database_url = f"sqlite:///{tmp_path / 'sessionhub.db'}"
    if backend == "mongo":
        database_url = request.getfixturevalue("mongo_database_url")

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "jwt_secret": TEST_SECRET,
            "dev_secret_file": tmp_path / "dev-secret",
            # Titles in a thread: the server's worker process would add its start-up (most
            # of a second) to every test that makes a title; tests/server/test_app.py
            # covers the worker process.
            "title_worker_process": False,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


class Api:
    """A GraphQL client for tests: `api.as_("alice", "acme").query(...)`."""

    def __init__(self, client: TestClient, issuer: TokenIssuer) -> None:
        self.client = client
        self.issuer = issuer

    def token(
        self,
        user: str,
        entity: str,
        roles: tuple[Role, ...] = (Role.USER,),
        user_type: UserType = UserType.INTERNAL,
        tz: str | None = None,
    ) -> str:
        return self.issuer.issue(user, entity, roles, user_type=user_type, time_zone=tz)

    def as_(self, user: str, entity: str, *roles: Role, **kwargs: Any) -> Caller:
        return Caller(self.client, self.token(user, entity, roles or (Role.USER,), **kwargs))


class Caller:
    def __init__(self, client: TestClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def post(self, query: str, variables: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        return response.json()

    def ok(self, query: str, variables: dict | None = None) -> dict:
        """The data of a request that must succeed."""
        body = self.post(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    def error_code(self, query: str, variables: dict | None = None) -> str:
        """The code of the first error of a request that must fail."""
        body = self.post(query, variables)
        assert body.get("errors"), f"expected an error, got {body}"
        return body["errors"][0]["extensions"]["code"]


AUDIT = """query($filter: AuditFilter, $first: Int, $after: String) {
  auditLog(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id actorId action target at details } }
    pageInfo { hasNextPage hasPreviousPage endCursor } } }"""


def audit_events(auditor: Caller, page_size: int = 3, **audit_filter: Any) -> list[dict]:
    """Every event the filter selects, newest first, by following the pages."""
    events: list[dict] = []
    after = None
    for _ in range(100):
        page = auditor.ok(AUDIT, {"filter": audit_filter, "first": page_size, "after": after})[
            "auditLog"
        ]
        events += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return events
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("the audit log never ended")


def database_bytes(settings: Settings) -> bytes:
    """Everything the store holds, as it is stored: on SQLite the file and its WAL (and
    shared-memory index) as they are on disk; on MongoDB every document of every
    collection (indexes included) as BSON, read through the server."""
    if settings.database_url.startswith("mongodb"):
        with pymongo.MongoClient(settings.database_url) as client:
            db = client[settings.mongo_database_name]
            return b"".join(
                bson.encode(doc)
                for name in db.list_collection_names()
                for doc in [*db[name].find(), *db[name].list_indexes()]
            )
    db = Path(settings.sqlite_path)
    files = [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
    assert db in files
    return b"".join(p.read_bytes() for p in files)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with TestClient(create_app(settings)) as client:
        yield Api(client, TokenIssuer(token_config(settings)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line on the MongoDB tests, so that a run without a MongoDB-protocol server says
    so instead of passing quietly."""
    outcomes: dict[str, int] = {}
    reasons: set[str] = set()
    for outcome in ("passed", "failed", "error", "skipped", "xfailed"):
        for report in terminalreporter.stats.get(outcome, []):
            if "mongo" not in getattr(report, "nodeid", "").lower():
                continue
            if getattr(report, "when", "call") == "teardown" and outcome != "error":
                continue
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "skipped" and isinstance(report.longrepr, tuple):
                reasons.add(str(report.longrepr[2]))
    if not outcomes:
        return
    counts = ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items())
    terminalreporter.write_sep("-", f"MongoDB backend, over the wire against mongoeco: {counts}")
    for reason in sorted(r for r in reasons if "no MongoDB-protocol server" in r):
        terminalreporter.write_line(reason)
