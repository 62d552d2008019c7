"""schema.graphql, the contract clients and code generators read, is what
`sessionhub schema` prints: a change to the schema that leaves the file behind fails."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from sessionhub.server.cli import cli

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
REGENERATE = "make schema (or: sessionhub schema --output schema.graphql)"


def test_the_committed_sdl_is_the_schema_the_server_serves() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0, result.output
    assert SCHEMA_FILE.is_file(), f"schema.graphql is missing: run {REGENERATE}"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == result.stdout, (
        f"schema.graphql is stale: run {REGENERATE} and commit it"
    )


def test_the_command_writes_the_same_sdl_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    result = CliRunner().invoke(cli, ["schema", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == CliRunner().invoke(cli, ["schema"]).stdout
