"""The Atlas Search index definition that ships with the MongoDB backend, and the command
that applies it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sessionhub.server.cli import cli
from sessionhub.storage.mongo.atlas import search_index_spec


def test_the_definition_indexes_turn_text_and_the_scope() -> None:
    spec = search_index_spec()
    assert (spec["name"], spec["collection"]) == ("turns_search", "turns")
    fields = spec["definition"]["mappings"]["fields"]
    assert spec["definition"]["mappings"]["dynamic"] is False
    assert fields["content"] == {"type": "string", "analyzer": "lucene.standard"}
    for token in ("entity_id", "chat_app_id", "session_id", "author_id"):
        assert fields[token] == {"type": "token"}
    assert fields["created_at"] == {"type": "date"}


def test_the_command_needs_a_mongodb_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONHUB_DATABASE_URL", "sqlite:///:memory:")
    result = CliRunner().invoke(cli, ["mongo", "apply-search-index"])
    assert result.exit_code == 2
    assert "not a mongodb" in result.output


def test_the_command_reports_an_unreachable_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SESSIONHUB_DATABASE_URL", "mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=200"
    )
    result = CliRunner().invoke(cli, ["mongo", "apply-search-index"])
    assert result.exit_code == 1
    assert "could not be applied" in result.output
