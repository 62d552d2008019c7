"""Unexpected failures are masked for the client and logged with the request id."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import strawberry
from structlog.testing import capture_logs

from sessionhub.auth.permissions import auth_field
from sessionhub.domain.errors import NotFound
from sessionhub.domain.models import Principal
from sessionhub.schema.build import build_schema
from sessionhub.server.error_codes import ErrorCodes


@dataclass
class FakeContext:
    principal: Principal | None
    request_id: str = "req-42"


def _boom() -> str:
    raise RuntimeError("password=hunter2 leaked in a stack trace")


def _missing() -> str:
    raise NotFound("Session 'x' was not found.")


@strawberry.type
class Query:
    boom: str = auth_field(_boom)
    missing: str = auth_field(_missing)


@strawberry.type
class Mutation:
    noop: str = auth_field(lambda: "ok")


SCHEMA = build_schema([Query], [Mutation], extensions=[ErrorCodes])


ANYONE = Principal("a", "e")


def run(query: str, principal: Principal | None = ANYONE):
    return asyncio.run(SCHEMA.execute(query, context_value=FakeContext(principal)))


def test_unexpected_errors_are_masked_and_logged() -> None:
    with capture_logs() as logs:
        result = run("{ boom }")
    error = result.errors[0].formatted
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "hunter2" not in error["message"] and "req-42" in error["message"]
    assert logs[0]["request_id"] == "req-42" and logs[0]["log_level"] == "error"


def test_domain_errors_keep_code_and_message() -> None:
    error = run("{ missing }").errors[0].formatted
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["message"] == "Session 'x' was not found."


def test_document_errors_are_bad_user_input() -> None:
    for query in ("{ nope }", "{ boom(", "query($x: Int!) { boom }"):
        error = run(query).errors[0].formatted
        assert error["extensions"]["code"] == "BAD_USER_INPUT", query


def test_no_principal_is_unauthenticated() -> None:
    error = run("{ missing }", principal=None).errors[0].formatted
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
