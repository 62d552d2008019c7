"""The schema's versions: the scripts under migrations/, applied in order to a file that
has not had them yet (its `user_version` says how far it is)."""

from __future__ import annotations

from importlib import resources

from . import driver


def scripts() -> list[tuple[int, str]]:
    """(version, SQL) of every migration, in order."""
    folder = resources.files(__package__) / "migrations"
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            found.append((int(item.name.split("_", 1)[0]), item.read_text()))
    return sorted(found)


def apply(conn: driver.Connection, migrations: list[tuple[int, str]]) -> None:
    """The migrations newer than the file's version, in one transaction."""
    # WAL must be switched on outside a transaction; it is a property of the file.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        (current,) = conn.execute("PRAGMA user_version").fetchone()
        for version, script in migrations:
            if version <= current:
                continue
            for statement in split_sql(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def split_sql(script: str) -> list[str]:
    """Statements of a migration, keeping trigger bodies (which contain ';') whole."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if driver.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
