"""`sessionhub serve`, `token`, `schema`, `mongo ...` and `retention run`."""

from __future__ import annotations

import contextlib
import gc
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import __version__
from ..auth.tokens import TokenIssuer
from ..domain.models import Role, UserType
from .errors import SettingsError
from .settings import Settings, load_settings, token_config

cli = typer.Typer(help="sessionhub: keeps the conversations of AI chat apps.", no_args_is_help=True)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"sessionhub {__version__}")
        raise typer.Exit()


@cli.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """sessionhub: keeps the conversations of AI chat apps."""


def _settings_or_exit(**overrides: object):
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


def freeze_long_lived_heap() -> None:
    """What is alive once the app is built (modules, the schema, the app) lives as long as
    the process: out of the collector's sight, a full collection no longer walks it, and
    such collections stop showing as the slowest requests (bench/history.yaml has the
    figures)."""
    gc.collect()
    gc.freeze()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `serve` asks of uvicorn (bench/bare_endpoint.py runs with the same)."""
    return {
        "log_level": settings.log_level,
        "proxy_headers": True,
        "lifespan": "on",
        # h11 refuses a request line and headers beyond its limit before the app sees
        # them; httptools has no such limit (a 10 MB header reached the app whole).
        "http": "h11",
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "ws_max_size": settings.max_body_bytes,
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
    }


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (SESSIONHUB_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (SESSIONHUB_PORT).")] = None,
) -> None:
    """Start the GraphQL server under uvicorn."""
    import uvicorn

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = _settings_or_exit(**overrides)
    from .app import create_app

    try:
        app = create_app(settings)
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    freeze_long_lived_heap()
    typer.echo(
        f"sessionhub on http://{settings.host}:{settings.port}/graphql "
        f"(store: {settings.database_url_for_logs})",
        err=True,
    )
    from .shutdown import BoundedServer

    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, **uvicorn_options(settings)
    )
    server = BoundedServer(config, hard_deadline=2 * settings.shutdown_timeout_seconds)
    # uvicorn raises the signal it stopped for again once it is done: SIGTERM then ends
    # the process as a SIGTERM does, and Ctrl-C arrives here as KeyboardInterrupt.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        # uvicorn's own code for a start that failed (it exits with it on most paths).
        raise typer.Exit(3)


@cli.command()
def token(
    user: Annotated[str, typer.Option(help="User id (the `sub` claim).")],
    entity: Annotated[str, typer.Option(help="Entity (organisation) id.")],
    roles: Annotated[
        str, typer.Option(help="Comma-separated: user, entity-admin, auditor, admin, service.")
    ] = "user",
    external: Annotated[bool, typer.Option(help="Mark the user EXTERNAL to the entity.")] = False,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.", min=1)] = 3600,
    tz: Annotated[str | None, typer.Option(help="IANA time zone for date groups.")] = None,
) -> None:
    """Print a signed JWT for development."""
    settings = _settings_or_exit()
    try:
        parsed_roles = [Role(r.strip()) for r in roles.split(",") if r.strip()]
    except ValueError as exc:
        typer.echo(f"--roles: {exc}; known: {', '.join(r.value for r in Role)}", err=True)
        raise typer.Exit(2) from exc
    config = token_config(settings)
    if config.signing_key is None:
        typer.echo(
            "RS256 is configured: set SESSIONHUB_JWT_PRIVATE_KEY_FILE to sign tokens.", err=True
        )
        raise typer.Exit(2)
    issuer = TokenIssuer(config)
    typer.echo(
        issuer.issue(
            user,
            entity,
            parsed_roles,
            user_type=UserType.EXTERNAL if external else UserType.INTERNAL,
            ttl_seconds=ttl,
            time_zone=tz,
        )
    )


@cli.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the SDL to this file.")
    ] = None,
) -> None:
    """Print the GraphQL schema (SDL) that clients and code generators use; the repository
    keeps it as schema.graphql."""
    from .app import build_api_schema

    sdl = build_api_schema().as_str() + "\n"
    if output is None:
        typer.echo(sdl, nl=False)
    else:
        output.write_text(sdl, encoding="utf-8")


mongo = typer.Typer(help="MongoDB maintenance.", no_args_is_help=True)
cli.add_typer(mongo, name="mongo")


@mongo.command("apply-search-index")
def apply_search_index() -> None:
    """Create or update the Atlas Search index on turns (storage/mongo/atlas_search_index.json)
    in the database of SESSIONHUB_DATABASE_URL."""
    import asyncio

    from ..domain.errors import DomainError
    from ..storage.mongo.atlas import apply_search_index as apply

    settings = _settings_or_exit()
    if not settings.mongo:
        typer.echo("SESSIONHUB_DATABASE_URL is not a mongodb:// or mongodb+srv:// URL.", err=True)
        raise typer.Exit(2)
    try:
        typer.echo(asyncio.run(apply(settings.database_url, settings.mongo_database_name)))
    except DomainError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from exc


retention = typer.Typer(help="Removing sessions past their retention.", no_args_is_help=True)
cli.add_typer(retention, name="retention")


@retention.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be removed; change nothing.")
    ] = False,
    chat_app: Annotated[
        str | None, typer.Option("--chat-app", help="Only this chat app's sessions.")
    ] = None,
    batch: Annotated[
        int, typer.Option(help="Sessions per batch (one transaction each).", min=1, max=10_000)
    ] = 500,
) -> None:
    """Remove every session past its expires_at (with its turns, pins, shares and search
    entries, each audited as session.expired), in batches, on the store of
    SESSIONHUB_DATABASE_URL; then print what was removed per chat app."""
    import asyncio

    from ..domain.clock import SystemClock
    from ..domain.errors import DomainError
    from ..domain.retention import BatchProgress, RetentionReport, RetentionService
    from .app import build_store

    settings = _settings_or_exit()
    verb = "would remove" if dry_run else "removed"

    def progress(p: BatchProgress) -> None:
        typer.echo(f"batch {p.batch}: {verb} {p.sessions} sessions ({p.total} so far)", err=True)

    async def run() -> RetentionReport:
        store = build_store(settings)
        await store.open()
        try:
            service = RetentionService(store, SystemClock())
            return await service.run(chat_app, dry_run=dry_run, batch=batch, progress=progress)
        finally:
            await store.close()

    try:
        report = asyncio.run(run())
    except DomainError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from exc
    rows = [(a.chat_app_id, str(a.removed), str(a.turns)) for a in report.chat_apps]
    rows.append(("total", str(report.removed), str(report.turns)))
    header = ("chat app", "would remove" if dry_run else "removed", "turns")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def main() -> None:
    sys.exit(cli())


if __name__ == "__main__":
    main()
