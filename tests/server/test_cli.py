"""The command line as an operator meets it: `sessionhub --version`, and help without
arguments."""

from __future__ import annotations

from typer.testing import CliRunner

from sessionhub import __version__
from sessionhub.server.cli import cli


def test_version_is_printed_and_nothing_else_runs() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"sessionhub {__version__}\n"


def test_without_arguments_the_commands_are_listed() -> None:
    result = CliRunner().invoke(cli, [])
    assert "serve" in result.output and "schema" in result.output and "--version" in result.output
