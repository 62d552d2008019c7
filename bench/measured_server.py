"""The `sessionhub serve` a benchmark measures, as the end-to-end tests run it
(tests/support/servers.py): in a folder of its own, on a fresh SQLite file there or on a
given one, stopped on leaving; and tokens for it that outlast any run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import _paths  # noqa: F401  (tests.support importable)

from tests.support import servers
from tests.support.servers import Server

TOKEN_TTL_S = 7 * 24 * 3600


@contextmanager
def running_server(
    folder: Path, database: Path | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """`sessionhub serve` on `database` (a fresh bench.db in `folder` by default), its
    secret, log and working files in `folder`, with `extra_env` added to its settings (a
    SESSIONHUB_DATABASE_URL there names another store). It logs at warning
    (`environment`): no access log line per request, which would be measured too."""
    settings = {"SESSIONHUB_DATABASE_URL": f"sqlite:///{database or folder / 'bench.db'}"}
    env = servers.environment(folder, **(settings | (extra_env or {})))
    with servers.running_server(folder, env) as server:
        yield server


def token_for(server: Server, user: str, entity: str, *options: str) -> str:
    """A token from `sessionhub token` (more `options`, such as `--roles`, as given)."""
    return server.token(user, entity, "--ttl", str(TOKEN_TTL_S), *options)
