"""SQLite's two ways of answering a search: exactly from every match (a narrow query) and,
for a broad query, by walking the newest sessions (newest first) or ranking only the newest
matches (relevance). Newest first must give the same pages either way, for every scope and
filter; relevance on a broad query ranks the recent matches."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Protocol

import pytest

from sessionhub.domain.clock import new_id
from sessionhub.domain.expansion import expand
from sessionhub.domain.models import (
    GranteeKind,
    Person,
    Session,
    Share,
    ShareMode,
    TitleSource,
    TurnRole,
)
from sessionhub.domain.query import (
    SearchCursor,
    SearchFilter,
    SearchOrder,
    SearchRequest,
    SearchScope,
    SessionHit,
    parse_query,
)
from sessionhub.domain.redaction import redact_details
from sessionhub.domain.removals import ContributionErasure
from sessionhub.storage.sqlite import migrate
from sessionhub.storage.sqlite.search import Searcher, index, phrases
from sessionhub.storage.sqlite.search.tuning import SearchTuning
from sessionhub.storage.sqlite.store import SqliteStore

from .test_store_contract import T0, make_session, make_turn, session_audit

WORDS = ["kettle", "teapot", "saucer", "biscuit", "lemon"]


@pytest.fixture
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SqliteStore]:
    """A store in memory, with the tuning a test passes as the fixture's param."""
    store = SqliteStore(":memory:", search_tuning=getattr(request, "param", SearchTuning()))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


class Searching(Protocol):
    async def search(self, request: SearchRequest) -> list[SessionHit]: ...


def tuned(store: SqliteStore, **tuning: Any) -> Searcher:
    """The store's search with other bounds between its ways of answering."""
    return Searcher(store.connections, SearchTuning(**tuning))


async def search(
    searching: Searching,
    text: str,
    scope: SearchScope,
    search_filter: SearchFilter,
    order: SearchOrder,
    after: SearchCursor | None,
    limit: int,
) -> list[SessionHit]:
    return await searching.search(
        SearchRequest(parse_query(text), scope, search_filter, order, after, limit)
    )


async def corpus(store: SqliteStore) -> list[Session]:
    """60 sessions of alice's, bob's and carol's over two chat apps, some archived, tagged
    or shared with alice; every turn says "tea", and some more words in a fixed rhythm."""
    sessions = []
    owners = itertools.cycle(["alice", "alice", "bob", "carol"])
    for i in range(60):
        at = T0 + timedelta(hours=i)
        session = make_session(
            owner=next(owners),
            app="knowledge" if i % 3 else "support",
            at=at,
            title=f"Session {i} about {WORDS[i % 5]}",
            tags=["brew"] if i % 4 == 0 else [],
        )
        await store.create_session(session, None, 100)
        for j in range(3):
            role = TurnRole.USER if j % 2 == 0 else TurnRole.ASSISTANT
            words = f"tea {WORDS[(i + j) % 5]} {'milk' if (i * j) % 7 == 1 else ''}"
            await store.append_turn(
                make_turn(
                    session.id,
                    author="dave" if j == 2 and i % 5 == 0 else session.owner_id,
                    role=role,
                    content=words,
                    at=at + timedelta(minutes=j),
                ),
                100,
            )
        if i % 6 == 0:
            await store.set_archived(session.id, at, at)
        if session.owner_id == "bob" and i % 8 == 2:
            share = Share(
                new_id(),
                session.id,
                "acme",
                GranteeKind.USER,
                "acme",
                "alice",
                ShareMode.READ,
                "bob",
                at,
            )
            await store.create_share(share, session_audit("share.created", session.id))
        sessions.append(session)
    return sessions


async def pages(
    store: Searching,
    text: str,
    scope: SearchScope,
    search_filter: SearchFilter,
    order: SearchOrder,
    page: int = 7,
) -> list[list[str]]:
    result: list[list[str]] = []
    cursor: SearchCursor | None = None
    for _ in range(200):  # more pages than the corpus has sessions: the cursor is stuck
        hits = await search(store, text, scope, search_filter, order, cursor, page)
        if not hits:
            return result
        result.append([h.session.id for h in hits])
        cursor = SearchCursor(hits[-1].sort_key, hits[-1].session.id)
    raise AssertionError(f"paging through {text!r} never ended")


def shared_with_alice(sessions: list[Session]) -> tuple[str, ...]:
    return tuple(s.id for i, s in enumerate(sessions) if s.owner_id == "bob" and i % 8 == 2)


async def test_newest_first_walk_gives_the_exact_pages(store: SqliteStore) -> None:
    sessions = await corpus(store)
    # Some of the oldest conversations resumed last: the newest sessions of a walk step
    # then began at both ends of the index, and a step reads the rows since the recent
    # beginnings while naming the tokens of the resumed sessions.
    for i, session in enumerate(sessions[:20:3]):
        await store.append_turn(
            make_turn(
                session.id,
                author=session.owner_id,
                content="tea kettle again" if i % 2 else "back to tea",
                at=T0 + timedelta(days=30, minutes=i),
            ),
            100,
        )
    # Sessions begun in the reverse order of their creation, so that session rowids and
    # first turns disagree, each matching "session" by its title only; and a session of
    # another entity shared with alice, the newest of all.
    reversed_sessions = [
        make_session(owner="alice", title=f"Session notes {n}", at=T0 + timedelta(days=31))
        for n in range(6)
    ]
    for session in reversed_sessions:
        await store.create_session(session, None, 100)
    for n, session in enumerate(reversed(reversed_sessions)):
        at = T0 + timedelta(days=31, minutes=n)
        await store.append_turn(make_turn(session.id, content="plain tea", at=at), 100)
    elsewhere = make_session(entity="globex", owner="erin", at=T0 + timedelta(days=32))
    await store.create_session(elsewhere, None, 100)
    await store.append_turn(
        make_turn(
            elsewhere.id,
            author="erin",
            entity="globex",
            content="tea kettle",
            at=elsewhere.created_at,
        ),
        100,
    )
    scopes = [
        SearchScope("acme", "alice", (*shared_with_alice(sessions), elsewhere.id)),
        SearchScope("acme", None),
        SearchScope("acme", "carol"),
    ]
    filters = [
        SearchFilter(),
        SearchFilter(include_archived=True),
        SearchFilter(chat_app_ids=("support",)),
        SearchFilter(tags=("brew",), include_archived=True),
        SearchFilter(participants=(Person("acme", "dave"),)),
        SearchFilter(roles=(TurnRole.ASSISTANT,)),
        SearchFilter(since=T0 + timedelta(hours=20), until=T0 + timedelta(hours=41)),
    ]
    queries = ["tea", "teapot", "tea -milk", "kettle OR", "session", '"tea kettle"']
    checked = 0
    exactly = tuned(store, broad_matches=1_000_000)
    for text, scope, search_filter in itertools.product(queries, scopes, filters):
        exact = await pages(exactly, text, scope, search_filter, SearchOrder.NEWEST)
        # A whole walk, a walk that hands over to the exact path; each step reading the
        # rows since its sessions' first turns, naming the tokens of those begun before
        # what fits, or naming all their tokens.
        for steps, since_rows in itertools.product((1000, 2), (2_000, 6, 0)):
            walking = tuned(
                store,
                broad_matches=1,
                walk_steps=(2, 3, 5),
                walk_max_steps=steps,
                since_rows_max=since_rows,
            )
            walked = await pages(walking, text, scope, search_filter, SearchOrder.NEWEST)
            assert walked == exact, (text, scope, search_filter, steps, since_rows)
        checked += bool(exact)
    assert checked > 60  # most combinations find something


# The window's floor from the listed matches, or found by counting (more than listed).
@pytest.mark.parametrize("listed_max", [5_000, 0])
async def test_broad_relevance_ranks_the_newest_matches(
    store: SqliteStore, listed_max: int
) -> None:
    sessions = await corpus(store)
    everyone = SearchScope("acme", None)
    every = SearchFilter(include_archived=True)
    ranking_all = tuned(store, listed_max=listed_max, ranked_rows=1_000_000)
    ranked_all = await pages(ranking_all, "tea", everyone, every, SearchOrder.RELEVANCE, page=100)
    assert sorted(ranked_all[0]) == sorted(s.id for s in sessions)

    # 30 to 60 rows: the newest ten to twenty sessions' three turns each.
    ranking = tuned(store, listed_max=listed_max, ranked_rows=30)
    ranked_recent = await pages(ranking, "tea", everyone, every, SearchOrder.RELEVANCE, page=4)
    flat = [sid for page in ranked_recent for sid in page]
    assert len(flat) == len(set(flat))
    assert {s.id for s in sessions[-10:]} <= set(flat) <= {s.id for s in sessions[-20:]}
    hits = await search(ranking, "tea", everyone, every, SearchOrder.RELEVANCE, None, 10)
    assert [h.score for h in hits] == sorted(h.score for h in hits)
    assert all(h.turns for h in hits)
    # Titles are ranked with turns, from their own newest rows.
    titled = await pages(ranking, "session", everyone, every, SearchOrder.RELEVANCE, page=50)
    assert sorted(titled[0]) == sorted(s.id for s in sessions[-30:])


# The window's floor from the listed matches, or found by counting (more than listed).
@pytest.mark.parametrize("listed_max", [5_000, 0])
async def test_broad_phrase_ranks_the_matches_among_the_newest_rows_with_its_words(
    store: SqliteStore, listed_max: int
) -> None:
    sessions = await corpus(store)
    everyone = SearchScope("acme", None)
    every = SearchFilter(include_archived=True)
    phrase = '"tea kettle"'
    ranking_all = tuned(store, listed_max=listed_max, ranked_rows=1_000_000)
    (exact,) = await pages(ranking_all, phrase, everyone, every, SearchOrder.RELEVANCE, page=100)
    # Every turn holds "tea", every fifth "kettle": the newest 10 to 20 rows with the
    # phrase's pairs reach some way back; the phrase's matches there are found, older not.
    ranking = tuned(store, listed_max=listed_max, ranked_rows=10)
    (windowed,) = await pages(ranking, phrase, everyone, every, SearchOrder.RELEVANCE, page=100)
    age = {s.id: i for i, s in enumerate(sessions)}
    left_out = set(exact) - set(windowed)
    assert windowed and set(windowed) <= set(exact) and left_out
    assert min(age[sid] for sid in windowed) > max(age[sid] for sid in left_out)


async def test_upgrading_an_old_file_backfills_tokens_blocks_stretches_and_pairs(
    tmp_path,
) -> None:
    """A file written before migrations 0006 to 0010 (one index row per turn under the
    turn's own rowid, five scope tokens, no entity numbers, turn time blocks, turn
    sessions or phrase index): after the upgrade a colleague finds the sessions shared
    with the entity through its shared token (their scope need not name each one), a
    revoked share takes that away, an entity-wide search finds its entity's rows in the
    entity's stretch and nothing of another entity, also within a date range, and a
    phrase is found through the phrase index, under the same scope."""
    path = str(tmp_path / "old.db")
    every_migration = migrate.scripts()
    old = SqliteStore(path)
    await old.open()
    shares = []
    for title in ("Team okapi notes", "Okapi budget"):
        session = make_session(owner="alice", app="knowledge", title=title)
        await old.create_session(session, make_turn(session.id, content="okapi plan"), 100)
        share = Share(
            new_id(),
            session.id,
            "acme",
            GranteeKind.ENTITY,
            "acme",
            None,
            ShareMode.READ,
            "alice",
            T0,
        )
        await old.create_share(share, session_audit("share.created", session.id))
        shares.append(share)
    elsewhere = make_session(entity="globex", owner="gus", app="knowledge", title="Okapi zoo")
    await old.create_session(
        elsewhere, make_turn(elsewhere.id, author="gus", entity="globex", content="okapi feed"), 100
    )

    def as_before_0006(conn) -> None:  # the index as migrations 1-5 left it
        conn.execute("DROP TABLE search_index")
        conn.execute("DROP TABLE search_pairs")
        conn.execute("DROP TABLE search_words")
        conn.execute("DROP TABLE search_stems")
        conn.execute("DROP TABLE search_entities")
        conn.execute("DROP TABLE turn_time_blocks")
        conn.execute("DROP TRIGGER turn_sessions_on_insert")
        conn.execute("DROP TRIGGER turn_sessions_on_delete")
        conn.execute("DROP TABLE turn_sessions")
        conn.execute("DROP INDEX sessions_by_entity_span")
        conn.execute("ALTER TABLE sessions DROP COLUMN span_level")
        conn.execute("DROP INDEX sessions_with_external_participants")
        conn.execute("ALTER TABLE sessions DROP COLUMN external_participants")
        conn.execute("ALTER TABLE turns DROP COLUMN author_entity_id")
        conn.execute("ALTER TABLE sessions DROP COLUMN title_version")
        conn.execute("PRAGMA user_version = 5")
        for statement in migrate.split_sql(every_migration[2][1]):
            conn.execute(statement)

    await old.connections.write(as_before_0006)
    await old.close()

    upgraded = SqliteStore(path)
    await upgraded.open()
    first, second = (share.session_id for share in shares)
    naming_the_second = SearchScope("acme", "bob", (second,))
    try:

        async def found(scope: SearchScope) -> set[str]:
            hits = await search(
                upgraded, "okapi", scope, SearchFilter(), SearchOrder.RELEVANCE, None, 10
            )
            return {h.session.id for h in hits}

        assert await found(naming_the_second) == {first, second}
        assert await found(SearchScope("acme", "carol", ())) == set()
        assert await found(SearchScope("acme", None, ())) == {first, second}
        assert await found(SearchScope("globex", None, ())) == {elsewhere.id}
        in_time = await search(
            upgraded,
            "plan",
            SearchScope("acme", None, ()),
            SearchFilter(since=T0 - timedelta(days=1), until=T0 + timedelta(days=1)),
            SearchOrder.NEWEST,
            None,
            10,
        )
        assert {h.session.id for h in in_time} == {first, second}

        async def phrase_found(scope: SearchScope) -> set[str]:
            hits = await search(
                upgraded, '"okapi plan"', scope, SearchFilter(), SearchOrder.NEWEST, None, 10
            )
            return {h.session.id for h in hits}

        assert await phrase_found(SearchScope("acme", None, ())) == {first, second}
        assert await phrase_found(SearchScope("globex", None, ())) == set()
        await upgraded.revoke_share(
            shares[0].id, T0, "alice", session_audit("share.revoked", first)
        )
        assert await found(naming_the_second) == {second}
        assert await phrase_found(naming_the_second) == {second}
    finally:
        await upgraded.close()


@pytest.mark.parametrize("ranked_rows", [1_000_000, 4])
async def test_each_entity_reads_only_its_own_stretch_of_the_index(
    store: SqliteStore, ranked_rows: int
) -> None:
    """Three entities write in turn, so their rows interleave in time; an entity-wide
    search bounds the rowid to its entity's stretch and must find exactly that entity's
    sessions (and the one shared with it from another entity), whatever the filter, order
    or ranking window."""
    ranking = tuned(store, ranked_rows=ranked_rows)
    owned: dict[str, set[str]] = {"acme": set(), "globex": set(), "initech": set()}
    for i in range(12):
        for entity in owned:
            session = make_session(entity=entity, owner="alice", title=f"Okapi {entity} {i}")
            await store.create_session(session, None, 100)
            await store.append_turn(make_turn(session.id, content=f"okapi tea {i}"), 100)
            owned[entity].add(session.id)
    from_globex = sorted(owned["globex"])[0]
    share = Share(
        new_id(),
        from_globex,
        "globex",
        GranteeKind.USER,
        "acme",
        "alice",
        ShareMode.READ,
        "alice",
        T0,
    )
    await store.create_share(share, session_audit("share.created", from_globex))
    filters = [
        SearchFilter(),
        SearchFilter(roles=(TurnRole.USER,)),
        SearchFilter(chat_app_ids=("support",)),
    ]
    for entity, sessions in owned.items():
        for search_filter, order, text in itertools.product(
            filters, SearchOrder, ["okapi", "tea", '"okapi tea"']
        ):
            entity_wide = SearchScope(entity, None, ())
            found = set(
                itertools.chain(*await pages(ranking, text, entity_wide, search_filter, order))
            )
            assert found <= sessions, (entity, search_filter, order, text)
            if ranked_rows > 100:
                assert found == sessions, (entity, search_filter, order, text)
    with_share = SearchScope("acme", None, (from_globex,))
    for order in SearchOrder:
        found = set(
            itertools.chain(*await pages(ranking, "okapi", with_share, SearchFilter(), order))
        )
        if ranked_rows > 100 or order is SearchOrder.NEWEST:
            assert found == owned["acme"] | {from_globex}
        assert found <= owned["acme"] | {from_globex}


@pytest.mark.parametrize(
    "store", [SearchTuning(time_block_shift=2)], ids=["blocks of four turns"], indirect=True
)
async def test_a_date_range_finds_turns_whatever_order_their_times_were_written_in(
    store: SqliteStore,
) -> None:
    """Turns whose times do not follow the order they were written in (imports, clients'
    clocks): a date range bounds the index rows read by the blocks' earliest and latest
    times, and must still find every session with a turn inside it."""
    rng = random.Random(7)
    times: dict[str, list] = {}
    for i in range(30):
        session = make_session(owner="alice", title=f"Session {i}")
        await store.create_session(session, None, 100)
        times[session.id] = []
        for _ in range(3):
            at = T0 + timedelta(hours=rng.randrange(24 * 30))
            await store.append_turn(make_turn(session.id, content="heron", at=at), 100)
            times[session.id].append(at)
    entity_wide, own = SearchScope("acme", None, ()), SearchScope("acme", "alice", ())
    for first_day, last_day in [(0, 3), (10, 12), (29, 30), (5, 25)]:
        since, until = T0 + timedelta(days=first_day), T0 + timedelta(days=last_day)
        expected = {sid for sid, at in times.items() if any(since <= t < until for t in at)}
        assert expected
        for scope, order in itertools.product([entity_wide, own], SearchOrder):
            search_filter = SearchFilter(since=since, until=until)
            found = set(itertools.chain(*await pages(store, "heron", scope, search_filter, order)))
            assert found == expected, (first_day, last_day, scope, order)


async def test_a_turn_written_where_a_deleted_one_was_is_found_in_its_own_session(
    store: SqliteStore,
) -> None:
    """SQLite gives a new turn the rowid of the newest turn once that one is deleted; the
    turn-to-session map must follow, or newest-first search would name the wrong session
    (or the write would fail)."""
    kept, dropped = make_session(owner="alice"), make_session(owner="alice")
    await store.create_session(kept, make_turn(kept.id, content="okapi"), 100)
    await store.create_session(dropped, make_turn(dropped.id, content="okapi walrus"), 100)
    assert await store.delete_session(
        dropped.id, session_audit("session.deleted", dropped.id), redact_details
    )
    await store.append_turn(make_turn(kept.id, content="walrus"), 100)
    for order in SearchOrder:
        hits = await search(
            store, "walrus", SearchScope("acme", None, ()), SearchFilter(), order, None, 10
        )
        assert [h.session.id for h in hits] == [kept.id]


PHRASE_WORDS = ["red", "kettle", "boils", "over", "blue", "teapot", "café"]


async def phrase_corpus(store: SqliteStore) -> list[Session]:
    """40 sessions of alice's and bob's whose turns are runs of a few words, so that
    phrases match in some rows, their words stand apart in others (the phrase index's
    pairs are there without the phrase: "red kettle" and "kettle boils" in "red kettle red
    kettle boils"), and some rows are not ASCII."""
    rng = random.Random(3)
    sessions = []
    for i in range(40):
        at = T0 + timedelta(hours=i)
        session = make_session(
            owner="alice" if i % 3 else "bob",
            app="knowledge" if i % 2 else "support",
            at=at,
            title=" ".join(rng.choice(PHRASE_WORDS) for _ in range(3)),
        )
        await store.create_session(session, None, 100)
        for j in range(4):
            words = [rng.choice(PHRASE_WORDS) for _ in range(rng.randint(3, 12))]
            await store.append_turn(
                make_turn(
                    session.id,
                    author=session.owner_id,
                    role=TurnRole.USER if j % 2 == 0 else TurnRole.ASSISTANT,
                    content=", ".join(words) if j == 3 else " ".join(words).capitalize(),
                    at=at + timedelta(minutes=j),
                ),
                100,
            )
        sessions.append(session)
    return sessions


def described(hits: list) -> list[tuple]:
    return [
        (
            h.session.id,
            round(h.score, 9),
            h.title_snippet,
            [(t.turn_id, t.snippet, round(t.score, 9)) for t in h.turns],
        )
        for h in hits
    ]


async def every_page(store, text, scope, search_filter, order, page=6) -> list[tuple]:
    result: list[tuple] = []
    cursor: SearchCursor | None = None
    for _ in range(100):
        hits = await search(store, text, scope, search_filter, order, cursor, page)
        if not hits:
            return result
        result += described(hits)
        cursor = SearchCursor(hits[-1].sort_key, hits[-1].session.id)
    raise AssertionError(f"paging through {text!r} never ended")


async def test_the_phrase_index_finds_what_the_main_index_finds(store: SqliteStore) -> None:
    """Every page of a phrase search through the phrase index (pairs, settled and marked
    from the row's text) holds the same sessions, scores and snippets as through the main
    index's positions, in both orders, walking or not, for every scope and filter."""
    await phrase_corpus(store)
    scopes = [SearchScope("acme", "alice"), SearchScope("acme", None)]
    filters = [
        SearchFilter(include_archived=True),
        SearchFilter(chat_app_ids=("support",)),
        SearchFilter(roles=(TurnRole.ASSISTANT,)),
        SearchFilter(since=T0 + timedelta(hours=10), until=T0 + timedelta(hours=30)),
    ]
    queries = [
        '"red kettle"',
        '"kettle boils over"',
        '"red kettle boils"',
        '"blue teapot" -over',
        '"kettle boils" -"red kettle"',
        '"red kettle" "blue teapot"',
        '"café red"',
        '"teapot teapot"',
    ]
    checked = 0
    for text, scope, search_filter in itertools.product(queries, scopes, filters):
        assert phrases.phrase_query(expand(parse_query(text), {})) is not None
        for order, broad in [
            (SearchOrder.RELEVANCE, 1_000_000),
            (SearchOrder.NEWEST, 1_000_000),
            (SearchOrder.NEWEST, 1),
        ]:
            bounds = {"ranked_rows": 1_000_000, "broad_matches": broad}
            main_index_only = tuned(store, phrase_index=False, **bounds)
            expected = await every_page(main_index_only, text, scope, search_filter, order)
            through_phrases = tuned(store, **bounds)
            found = await every_page(through_phrases, text, scope, search_filter, order)
            assert found == expected, (text, scope, search_filter, order, broad)
            checked += len(expected)
    assert checked > 500


async def test_the_phrase_index_follows_every_change(store: SqliteStore) -> None:
    """A phrase is found through the phrase index as soon as a turn or a title says it, and
    no longer once the session is deleted, renamed or its turns erased; an ENTITY share
    rescopes its rows there too (a colleague's scope then names the entity's shared token,
    not the session)."""
    everyone = SearchScope("acme", None)
    session = make_session(owner="alice", title="Notes")
    await store.create_session(session, make_turn(session.id, content="the blue teapot"), 100)
    bob = SearchScope("acme", "bob", (session.id,))

    async def found(text: str, scope: SearchScope = everyone) -> set[str]:
        hits = await search(store, text, scope, SearchFilter(), SearchOrder.NEWEST, None, 10)
        return {h.session.id for h in hits}

    assert await found('"blue teapot"') == {session.id}
    assert await found('"red kettle"') == set()
    await store.append_turn(make_turn(session.id, author="dave", content="a red kettle"), 100)
    assert await found('"red kettle"') == {session.id}
    await store.rename_session(session.id, "Kettle boils over", TitleSource.MANUAL, T0)
    assert await found('"kettle boils over"') == {session.id}
    await store.rename_session(session.id, "Notes", TitleSource.MANUAL, T0)
    assert await found('"kettle boils over"') == set()
    share = Share(
        new_id(),
        session.id,
        "acme",
        GranteeKind.ENTITY,
        "acme",
        None,
        ShareMode.READ,
        "alice",
        T0,
    )
    await store.create_share(share, session_audit("share.created", session.id))
    assert await found('"blue teapot"', bob) == {session.id}
    await store.revoke_share(share.id, T0, "alice", session_audit("share.revoked", session.id))
    await store.erase_contributions(
        ContributionErasure("acme", "dave", T0, 100, lambda details: details, lambda text: text)
    )
    assert await found('"red kettle"') == set()
    assert await found('"blue teapot"') == {session.id}
    await store.delete_session(
        session.id, session_audit("session.deleted", session.id), redact_details
    )
    assert await found('"blue teapot"') == set()


async def test_newest_first_walk_finds_sessions_that_span_the_end_of_a_date_range(
    store: SqliteStore,
) -> None:
    """Sessions that began before a date range ends and were active after it rank first;
    the walk finds them through their span levels, whatever their length (seconds to
    months), and gives the same pages as the exact path."""
    spans = [
        timedelta(0),
        timedelta(seconds=30),
        timedelta(hours=2),
        timedelta(days=3),
        timedelta(days=40),
        timedelta(days=200),
    ]
    for i in range(60):
        at = T0 + timedelta(hours=12 * i)
        session = make_session(owner="alice" if i % 2 else "bob", at=at, title=f"Okapi {i}")
        await store.create_session(session, make_turn(session.id, content="okapi", at=at), 100)
        later = at + spans[i % len(spans)]
        await store.append_turn(make_turn(session.id, content="zebra", at=later), 100)
    windows = [
        (T0 + timedelta(days=5), T0 + timedelta(days=9)),
        (T0, T0 + timedelta(days=20)),
        (T0 + timedelta(days=29, hours=5), T0 + timedelta(days=29, hours=7)),
        (None, T0 + timedelta(days=10)),
    ]
    exactly = tuned(store, broad_matches=1_000_000)
    walking = tuned(store, broad_matches=1, walk_steps=(2, 3, 5))
    checked = spanning_pages = 0
    for (since, until), scope, text in itertools.product(
        windows, [SearchScope("acme", None), SearchScope("acme", "alice")], ["okapi", "zebra"]
    ):
        search_filter = SearchFilter(since=since, until=until)
        exact = await pages(exactly, text, scope, search_filter, SearchOrder.NEWEST, page=3)
        walked = await pages(walking, text, scope, search_filter, SearchOrder.NEWEST, page=3)
        assert walked == exact, (since, until, scope, text)
        checked += len(exact)
        first = await search(walking, text, scope, search_filter, SearchOrder.NEWEST, None, 1)
        spanning_pages += bool(first) and first[0].session.last_activity_at >= until
    assert checked > 20 and spanning_pages > 3


async def test_a_title_compare_and_set_that_writes_nothing_leaves_the_index_alone(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = make_session(title=None, title_source=TitleSource.PENDING)
    await store.create_session(session, None, 10)
    indexed: list[str] = []
    index_title = index.index_title
    monkeypatch.setattr(
        index,
        "index_title",
        lambda conn, session_id, *languages: (
            indexed.append(session_id),
            index_title(conn, session_id, *languages),
        ),
    )
    assert await store.rename_session(
        session.id, "Router setup", TitleSource.AUTO, T0, if_title_version=0
    )
    assert indexed == [session.id]
    # A late job over the version it read, and an AUTO title under a MANUAL one.
    assert (
        await store.rename_session(
            session.id, "Wifi troubles", TitleSource.AUTO, T0, if_title_version=0
        )
        is None
    )
    await store.rename_session(session.id, "My router", TitleSource.MANUAL, T0)
    assert await store.rename_session(session.id, "Wifi", TitleSource.AUTO, T0) is None
    assert indexed == [session.id, session.id]
