"""MkDocs hooks: the parts of the site made from the code and the data at build time.

A page holds a marker (an HTML comment on a line of its own) where the hook writes the
configuration reference from the Settings model, or tables from bench/history.yaml; what
they show therefore cannot drift from what they are made of.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import yaml
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic.fields import FieldInfo

from sessionhub.server.settings import ENV_PREFIX, Settings

HISTORY = Path(__file__).resolve().parent.parent / "bench" / "history.yaml"


def on_page_markdown(markdown: str, **_: Any) -> str:
    for marker, render in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown


# Configuration reference


def settings_reference() -> str:
    rows = ["| Variable | Type | Default | Meaning |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise ValueError(f"Settings.{name} has no description: give it Field(description=…)")
        rows.append(
            f"| `{ENV_PREFIX}{name.upper()}` | {_type(field)} | {_default(field)} "
            f"| {_cell(field.description)} |"
        )
    return "\n".join(rows) + "\n"


def _type(field: FieldInfo) -> str:
    annotation = field.annotation
    optional = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        annotation = members[0]
    if typing.get_origin(annotation) is typing.Literal:
        text = " \\| ".join(f"`{value}`" for value in typing.get_args(annotation))
    else:
        text = TYPE_NAMES.get(annotation.__name__, annotation.__name__)
    bounds = [_bound(item) for item in field.metadata]
    text += "".join(f", {bound}" for bound in bounds if bound)
    return text + (", optional" if optional else "")


TYPE_NAMES = {
    "SecretStr": "secret",
    "Path": "path",
    "str": "text",
    "bool": "boolean",
    "int": "integer",
    "float": "number",
}


def _bound(item: object) -> str | None:
    match item:
        case Ge(ge=value):
            return f"≥ {value:,}"
        case Gt(gt=value):
            return f"> {value:,}"
        case Le(le=value):
            return f"≤ {value:,}"
        case Lt(lt=value):
            return f"< {value:,}"
        case MinLen(min_length=1):
            return "not empty"
        case MinLen(min_length=value):
            return f"at least {value} characters"
        case MaxLen(max_length=value):
            return f"at most {value} characters"
    return None


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        # The factory's value depends on where the package is installed: say what it is.
        return _cell((field.default_factory.__doc__ or "computed at start").strip())
    if field.default is None:
        return "unset"
    value = field.default
    if isinstance(value, bool):
        value = str(value).lower()
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# Benchmarks


def _history() -> dict[str, Any]:
    # Every value as the text it was written as: 1.20 ms stays 1.20, a date stays a date.
    return yaml.load(HISTORY.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)


def current_figures() -> str:
    """One table of the runs marked `current`, a row per result."""
    rows = [
        "| benchmark | scenario | c | p50 ms | p99 ms | server p99 ms | req/s | other figures "
        "| target | run |",
        "|" + " --- |" * 10,
    ]
    for run in _history()["runs"]:
        if run.get("current") != "true":
            continue
        for result in _split_orders(run["results"]):
            other = "; ".join(
                f"{COLUMN_NAMES.get(key, key)}: {value}"
                for key, value in result.items()
                if key not in CURRENT_COLUMNS
            )
            cells = [
                f"`{run['benchmark']}`",
                *(result.get(key, "") for key in CURRENT_COLUMNS[:-1]),
                other,
                result.get("target", ""),
                f"{run['date']}, `{run['machine']}`",
            ]
            rows.append("| " + " | ".join(_cell(str(cell)) for cell in cells) + " |")
    return "\n".join(rows) + "\n"


CURRENT_COLUMNS = ("scenario", "c", "p50_ms", "p99_ms", "srv_p99_ms", "req_s", "target")


def _split_orders(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A search result holds both orders as "p50 / p99"; the current table gives each its
    own row with the figures in their columns."""
    split = []
    for result in results:
        orders = [key for key in ("relevance_ms", "newest_ms") if key in result]
        if not orders:
            split.append(result)
            continue
        for key in orders:
            p50, p99 = str(result[key]).split(" / ", 1)
            order = key.removesuffix("_ms").upper()
            split.append(
                {"scenario": f"{result['scenario']}, {order}", "p50_ms": p50, "p99_ms": p99}
            )
    return split


def full_history() -> str:
    """Every run, newest first, as a heading and a table of its results."""
    history = _history()
    machines = history["machines"]
    lines = ["Machines:", ""]
    lines += [f"- `{key}`: {_cell(text)}" for key, text in machines.items()]
    lines.append("")
    # Newest first; undated runs are the oldest.
    for run in sorted(history["runs"], key=_date, reverse=True):
        if run["machine"] not in machines:
            raise ValueError(f"bench/history.yaml: unknown machine {run['machine']!r}")
        commit = f", commit `{run['commit']}`" if run.get("commit") else ""
        lines += [
            f"### {run['date']} · `{run['benchmark']}` · {run['data']}",
            "",
            f"Machine `{run['machine']}`{commit}.",
        ]
        if run.get("command"):
            lines += ["", "```sh", run["command"].strip(), "```"]
        if note := run.get("note"):
            lines += ["", _cell(note[0].upper() + note[1:])]
        lines += ["", *_results_table(run["results"]), ""]
    return "\n".join(lines)


def _date(run: dict[str, Any]) -> str:
    return "" if run["date"] == "undated" else str(run["date"])


def _results_table(results: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for result in results:
        columns += [key for key in result if key not in columns]
    header = [COLUMN_NAMES.get(key, key) for key in columns]
    rows = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(columns)]
    for result in results:
        rows.append("| " + " | ".join(_cell(str(result.get(k, ""))) for k in columns) + " |")
    return rows


COLUMN_NAMES = {
    "c": "c",
    "p50_ms": "p50 ms",
    "p99_ms": "p99 ms",
    "max_ms": "max ms",
    "srv_p50_ms": "server p50 ms",
    "srv_p99_ms": "server p99 ms",
    "srv_cpu_ms": "server CPU ms/req",
    "req_s": "req/s",
    "relevance_ms": "RELEVANCE p50 / p99 ms",
    "newest_ms": "NEWEST p50 / p99 ms",
    "start_mb": "start MB",
    "end_mb": "end MB",
    "max_mb": "max MB",
}

MARKERS = {
    "<!-- settings-reference -->": settings_reference,
    "<!-- bench-current -->": current_figures,
    "<!-- bench-history -->": full_history,
}
