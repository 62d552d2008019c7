"""Reading a page of turns on SQLite: the people of a turn belong to its session's entity
unless they name another, so the rows need that entity, which the store reads once per
call, never once per row (a subquery on `sessions` for each of the 50 turns of a page)."""

from __future__ import annotations

from sessionhub.storage.sqlite.store import SqliteStore

from .test_store_contract import make_session, make_turn


async def test_a_page_of_turns_reads_its_sessions_entity_once() -> None:
    store = SqliteStore(":memory:")
    await store.open()
    try:
        session = make_session(entity="acme")
        await store.create_session(session, None, 100)
        for n in range(60):
            await store.append_turn(make_turn(session.id, content=f"turn {n}"), 100)
        statements: list[str] = []
        await store.connections.read(lambda conn: conn.set_trace_callback(statements.append))
        page = await store.list_turns(session.id, limit=50, newest_first=True)
        await store.connections.read(lambda conn: conn.set_trace_callback(None))

        assert [t.seq for t in page] == list(range(60, 10, -1))
        assert {(t.entity_id, t.author_entity_id) for t in page} == {("acme", "acme")}
        selects = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
        plans = [
            detail
            for sql in selects
            for *_, detail in await store.connections.read(
                lambda conn, sql=sql: conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            )
        ]
        assert not [p for p in plans if "CORRELATED" in p], plans
        assert sum("sessions" in sql for sql in selects) == 1, selects
    finally:
        await store.close()
