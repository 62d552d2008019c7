"""SQLite files that store benchmarks fill without the store: how large (their options),
created empty with the store's schema (its migrations, run by opening it), and the words of
their plain turns."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import options

from sessionhub.storage.sqlite.store import SqliteStore

# A support chat's words, drawn at random for turns whose text does not matter.
PRINTER_WORDS = (
    "the", "printer", "jams", "when", "the", "tray", "is", "full", "so", "we", "reset", "the",
    "spooler",
)  # fmt: skip


def add_size_options(parser: argparse.ArgumentParser, turns: int, per_session: int) -> None:
    """--turns, --per-session and the --seed of what is drawn."""
    parser.add_argument("--turns", type=int, default=turns, help=f"turns in all [{turns}]")
    parser.add_argument(
        "--per-session", type=int, default=per_session, help=f"turns a session [{per_session}]"
    )
    options.add_seed(parser, 7)


def create_schema(path: Path) -> None:
    """The store's schema in a new file at `path`, as its migrations make it."""

    async def run() -> None:
        store = SqliteStore(str(path), readers=1)
        await store.open()
        await store.close()

    asyncio.run(run())
