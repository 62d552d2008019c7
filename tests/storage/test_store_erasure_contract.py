"""The Store contract for the right to erasure, on every backend: a user's sessions go with
their audit events redacted, and what they left in other sessions is emptied or removed,
batch by batch until nothing is left; other users' data is untouched."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from sessionhub.domain.clock import new_id
from sessionhub.domain.models import (
    ERASED_AUTHOR,
    AuditEvent,
    AuditFilter,
    ErasureCounts,
    Feedback,
    FeedbackKind,
    GranteeKind,
    OwnerScope,
    Person,
    Pin,
    Session,
    SessionFilter,
    Share,
    ShareMode,
    TitleSource,
    ToolInvocation,
    TurnRole,
)
from sessionhub.domain.ports import Store
from sessionhub.domain.query import (
    SearchFilter,
    SearchOrder,
    SearchRequest,
    SearchScope,
    parse_query,
)
from sessionhub.domain.redaction import redact_details
from sessionhub.domain.removals import ContributionErasure, ExpirySweep
from sessionhub.domain.titles import opening_words
from tests.storage.test_store_contract import (
    T0,
    make_session,
    make_template,
    make_turn,
    template_audit,
)

EVERY = SessionFilter(archived=None)


def event(actor: str, action: str, target: str, **details: object) -> AuditEvent:
    return AuditEvent(new_id(), "acme", actor, action, target, T0, dict(details))


def deletion(session: Session) -> AuditEvent:
    return event("root", "session.deleted", f"session:{session.id}", reason="erasure")


async def erase_all(store: Store, entity: str, user: str, batch: int) -> ErasureCounts:
    total = ErasureCounts()
    while True:
        counts, _ = await store.erase_contributions(
            ContributionErasure(entity, user, T0, batch, redact_details, opening_words)
        )
        if counts.is_empty():
            return total
        total.add(counts)


async def find(store: Store, entity: str, owner: str | None, word: str) -> set[str]:
    scope = SearchScope(entity_id=entity, owner_id=owner)
    hits = await store.search(
        SearchRequest(parse_query(word), scope, SearchFilter(), SearchOrder.RELEVANCE, None, 20)
    )
    return {h.session.id for h in hits}


async def test_erasing_sessions_deletes_them_and_redacts_their_events(store: Store) -> None:
    mine = [make_session(owner="bob") for _ in range(3)]
    for s in mine:
        await store.create_session(s, make_turn(s.id, author="bob", content="bobword"), 100)
        await store.append_audit(event("bob", "session.tagged", f"session:{s.id}", added=["x"]))
    theirs = make_session(owner="alice")
    await store.create_session(theirs, make_turn(theirs.id, content="bobword too"), 100)
    await store.append_audit(event("alice", "session.tagged", f"session:{theirs.id}", added=["y"]))

    erased, redacted = await store.erase_sessions(
        [mine[0].id, mine[1].id, "missing"], deletion, redact_details
    )
    assert {s.id for s in erased} == {mine[0].id, mine[1].id} and redacted == 2
    again, redacted_again = await store.erase_sessions([mine[0].id], deletion, redact_details)
    assert again == [] and redacted_again == 0

    assert await store.get_session(mine[0].id) is None
    assert await store.get_session(mine[2].id) is not None
    listed = await store.list_sessions(OwnerScope("acme", "bob"), EVERY, None, 10)
    assert [s.id for s in listed] == [mine[2].id]
    events = await store.list_audit("acme", AuditFilter(), None, 50)
    by_target = {(e.target, e.action): e.details for e in events}
    assert by_target[(f"session:{mine[0].id}", "session.tagged")] == {"redacted": True}
    assert by_target[(f"session:{mine[0].id}", "session.deleted")] == {"reason": "erasure"}
    assert by_target[(f"session:{mine[2].id}", "session.tagged")] == {"added": ["x"]}
    assert by_target[(f"session:{theirs.id}", "session.tagged")] == {"added": ["y"]}
    assert await find(store, "acme", None, "bobword") == {theirs.id, mine[2].id}


async def test_erasing_contributions_empties_their_turns_and_removes_the_rest(
    store: Store,
) -> None:
    alices = [make_session(owner="alice", app="knowledge") for _ in range(3)]
    for s in alices:
        await store.create_session(s, make_turn(s.id, content="alice asks"), 100)
        await store.append_turn(
            make_turn(
                s.id,
                author="bob",
                content="bob answers quokkaword",
                metadata={"mood": "tired"},
                tool_invocations=[ToolInvocation(id="t1", name="lookup", input={"q": "secret"})],
                at=T0 + timedelta(seconds=1),
            ),
            100,
        )
        alice_turn, _ = await store.append_turn(
            make_turn(s.id, content="alice again", at=T0 + timedelta(seconds=2)), 100
        )
        for who in ("bob", "carol"):
            await store.add_feedback(
                alice_turn.id,
                Feedback(who, FeedbackKind.OTHER, f"{who} says", T0, entity_id="acme"),
            )
    await store.pin("acme", Pin("bob", alices[0].id, T0))
    await store.pin("acme", Pin("carol", alices[0].id, T0))
    to_bob = Share(
        new_id(), alices[0].id, "acme", GranteeKind.USER, "acme", "bob", ShareMode.READ, "alice", T0
    )
    to_carol = Share(
        new_id(),
        alices[0].id,
        "acme",
        GranteeKind.USER,
        "acme",
        "carol",
        ShareMode.READ,
        "alice",
        T0,
    )
    link = Share(
        new_id(),
        alices[1].id,
        "acme",
        GranteeKind.LINK,
        None,
        None,
        ShareMode.READ,
        "alice",
        T0,
        token_hash="h" * 64,
    )
    for share in (to_bob, to_carol, link):
        await store.create_share(
            share, event("alice", "share.created", f"session:{share.session_id}")
        )
    await store.record_link_visit(link, "acme", "bob", T0, None)
    await store.record_link_visit(link, "acme", "carol", T0, None)
    await store.append_audit(event("bob", "session.read", f"session:{alices[0].id}", note="hm"))
    # Same user id in another entity: a different person, untouched.
    globex = make_session(entity="globex", owner="alice")
    await store.create_session(
        globex, make_turn(globex.id, author="bob", entity="globex", content="quokkaword"), 100
    )
    await store.pin("globex", Pin("bob", globex.id, T0))
    template = replace(make_template(), created_by="bob")
    await store.create_template(template, template_audit("template.created", template))

    total = await erase_all(store, "acme", "bob", batch=2)

    assert total == ErasureCounts(
        authored_turns=3,
        feedback=3,
        pins=1,
        shares=1,
        link_visits=1,
        participations=3,
        audit_events=1,
    )
    for s in alices:
        turns = await store.list_turns(s.id, limit=10)
        assert [t.seq for t in turns] == [1, 2, 3]
        assert [t.author_id for t in turns] == ["alice", ERASED_AUTHOR, "alice"]
        emptied = turns[1]
        assert (emptied.content, emptied.tool_invocations, emptied.metadata) == (
            "",
            [],
            {"erasedAt": T0.isoformat()},
        )
        assert [f.user_id for f in turns[2].feedback] == ["carol"]
        stored = await store.get_session(s.id)
        assert stored is not None and "bob" not in stored.participants
        assert stored.turn_count == 3
    assert await find(store, "acme", "alice", "quokkaword") == set()
    assert await find(store, "globex", "alice", "quokkaword") == {globex.id}
    assert await store.pinned_session_ids("acme", "bob", [alices[0].id]) == set()
    assert await store.pinned_session_ids("acme", "carol", [alices[0].id]) == {alices[0].id}
    assert await store.pinned_session_ids("globex", "bob", [globex.id]) == {globex.id}
    assert {s.id for s in await store.list_shares(alices[0].id)} == {to_carol.id}
    assert await store.opened_link_ids(alices[1].id, "acme", "bob") == set()
    assert await store.opened_link_ids(alices[1].id, "acme", "carol") == {link.id}
    reads = await store.list_audit("acme", AuditFilter(actor_id="bob"), None, 10)
    assert [e.details for e in reads] == [{"redacted": True}]
    stored_template = await store.get_template("acme", template.template.id)
    assert stored_template is not None and stored_template.created_by == ERASED_AUTHOR
    assert await erase_all(store, "acme", "bob", batch=2) == ErasureCounts()


async def test_erasure_acts_on_one_person_never_on_the_same_id_of_another_entity(
    store: Store,
) -> None:
    """In alice's acme session, acme's gina and globex's gina (an external grantee) each
    write and give feedback. Erasing acme's gina leaves globex's gina whole; erasing
    globex's gina (by globex) reaches her turn, feedback and place in acme's session."""
    session = make_session(owner="alice", app="knowledge")
    _, opening = await store.create_session(
        session, make_turn(session.id, content="alice opens"), 100
    )
    ours, _ = await store.append_turn(
        make_turn(session.id, author="gina", content="acme gina brambleword"), 100
    )
    theirs, _ = await store.append_turn(
        make_turn(session.id, author="gina", entity="globex", content="globex gina quillword"),
        100,
    )
    for entity in ("acme", "globex"):
        await store.add_feedback(
            opening.id,
            Feedback("gina", FeedbackKind.OTHER, f"{entity} says", T0, entity_id=entity),
        )
    # Her events in acme's trail name her entity; acme's gina has hers.
    await store.append_audit(
        event("gina", "session.read", f"session:{session.id}", actorEntityId="globex", note="x")
    )
    await store.append_audit(event("gina", "session.read", f"session:{session.id}", note="y"))

    acme = await erase_all(store, "acme", "gina", batch=2)
    assert acme == ErasureCounts(
        authored_turns=1, feedback=1, participations=1, audit_events=1, titles=0
    )
    turns = {t.id: t for t in await store.list_turns(session.id, limit=10)}
    assert (turns[ours.id].author_id, turns[ours.id].content) == (ERASED_AUTHOR, "")
    assert turns[theirs.id].author == Person("globex", "gina")
    assert turns[theirs.id].content == "globex gina quillword"
    assert [f.given_by for f in turns[opening.id].feedback] == [Person("globex", "gina")]
    stored = await store.get_session(session.id)
    assert stored.people == [Person("acme", "alice"), Person("globex", "gina")]
    assert await find(store, "acme", "alice", "brambleword") == set()
    assert await find(store, "acme", "alice", "quillword") == {session.id}
    details = {
        e.details.get("actorEntityId"): e.details
        for e in await store.list_audit("acme", AuditFilter(actor_id="gina"), None, 10)
    }
    assert details == {
        "globex": {"actorEntityId": "globex", "note": "x"},
        None: {"redacted": True},
    }

    globex = await erase_all(store, "globex", "gina", batch=2)
    assert globex == ErasureCounts(authored_turns=1, feedback=1, participations=1)
    assert (await store.get_turn(opening.id)).feedback == []
    emptied = await store.get_turn(theirs.id)
    assert (emptied.author_id, emptied.content, emptied.external_author) == (
        ERASED_AUTHOR,
        "",
        False,
    )
    assert (await store.get_session(session.id)).people == [Person("acme", "alice")]
    assert await find(store, "acme", "alice", "quillword") == set()
    assert await erase_all(store, "globex", "gina", batch=2) == ErasureCounts()


async def test_erasure_removes_feedback_a_person_gave_in_another_entitys_session(
    store: Store,
) -> None:
    session = make_session(owner="alice", app="knowledge")
    await store.create_session(session, make_turn(session.id), 100)
    answer, _ = await store.append_turn(make_turn(session.id, content="answer"), 100)
    for entity in ("acme", "globex"):
        await store.add_feedback(
            answer.id, Feedback("bob", FeedbackKind.THUMBS_UP, entity, T0, entity_id=entity)
        )
    assert await erase_all(store, "globex", "bob", batch=10) == ErasureCounts(feedback=1)
    kept = await store.get_turn(answer.id)
    assert [(f.given_by, f.comment) for f in kept.feedback] == [(Person("acme", "bob"), "acme")]
    assert await erase_all(store, "acme", "bob", batch=10) == ErasureCounts(feedback=1)
    assert (await store.get_turn(answer.id)).feedback == []


async def test_erasure_takes_back_generated_titles_their_turns_may_have_made(
    store: Store,
) -> None:
    """A title that is not MANUAL, of a session where their turns said something, becomes
    the opening words of the first USER turn left (PENDING), in search too; a MANUAL title
    is the owner's own and stays."""
    generated = make_session(owner="alice", title=None, title_source=TitleSource.PENDING)
    named = make_session(owner="alice", title="Silo by alice", title_source=TitleSource.MANUAL)
    quiet = make_session(owner="alice", title=None, title_source=TitleSource.PENDING)
    for s in (generated, named, quiet):
        await store.create_session(s, make_turn(s.id, content="Hello there, friend!"), 100)
    for s in (generated, named):
        await store.append_turn(make_turn(s.id, author="bob", content="Zorblax silo plan"), 100)
        await store.rename_session(s.id, "Zorblax silo plan", TitleSource.AUTO, T0)
    # bob only ran a tool in the third: no title is made from that.
    await store.append_turn(
        make_turn(quiet.id, author="bob", role=TurnRole.TOOL, content="zorblax tool output"), 100
    )
    await store.rename_session(quiet.id, "Greeting a friend", TitleSource.AUTO, T0)

    total, retitled = ErasureCounts(), []
    while True:
        counts, ids = await store.erase_contributions(
            ContributionErasure("acme", "bob", T0, 100, redact_details, opening_words)
        )
        if counts.is_empty():
            break
        total.add(counts)
        retitled += ids
    assert retitled == [generated.id] and total.titles == 1
    after = await store.get_session(generated.id)
    assert (after.title, after.title_source) == ("Hello there, friend", TitleSource.PENDING)
    assert (await store.get_session(named.id)).title == "Silo by alice"
    assert (await store.get_session(quiet.id)).title == "Greeting a friend"
    assert await find(store, "acme", "alice", "zorblax") == set()
    assert await find(store, "acme", "alice", "friend") == {generated.id, named.id, quiet.id}


class CountingRedaction:
    """A redaction rule as the domain hands it to the store, counting what it was given:
    what the store does with earlier events is the domain's rule, applied once each."""

    def __init__(self) -> None:
        self.given: list[object] = []

    def __call__(self, details: object) -> dict:
        self.given.append(details)
        return {"cut": "by the domain's rule", "redacted": True}


async def test_every_deletion_redacts_earlier_events_by_the_rule_it_is_given(
    store: Store,
) -> None:
    """deleteSession, retention and erasure alike redact the earlier events about a deleted
    session with the rule the domain passes, once per event (never a second time with
    another rule), and leave the events of other sessions and the deletion's own alone."""
    deleted, expired, erased, kept = (
        make_session(),
        make_session(expires_at=T0),
        make_session(owner="bob"),
        make_session(),
    )
    for s in (deleted, expired, erased, kept):
        await store.create_session(s, None, 10)
        await store.append_audit(
            event("alice", "session.tagged", f"session:{s.id}", added=["secretword"])
        )
        await store.append_audit(event("alice", "session.read", f"session:{s.id}", access="READ"))
    rule = CountingRedaction()
    assert await store.delete_session(
        deleted.id,
        event("alice", "session.deleted", f"session:{deleted.id}", ownerId="alice"),
        rule,
    )
    removed = await store.remove_expired(ExpirySweep(T0 + timedelta(days=1), 10, deletion, rule))
    assert [s.id for s in removed] == [expired.id]
    gone, redacted = await store.erase_sessions([erased.id], deletion, rule)
    assert ([s.id for s in gone], redacted) == ([erased.id], 2)

    assert len(rule.given) == 6, "each earlier event is redacted exactly once"
    assert {"added": ["secretword"]} in rule.given and {"access": "READ"} in rule.given
    events = await store.list_audit("acme", AuditFilter(), None, 50)
    about = {(e.target, e.action): e.details for e in events}
    for s in (deleted, expired, erased):
        for action in ("session.tagged", "session.read"):
            assert about[(f"session:{s.id}", action)] == {
                "cut": "by the domain's rule",
                "redacted": True,
            }
    assert about[(f"session:{deleted.id}", "session.deleted")] == {"ownerId": "alice"}
    assert about[(f"session:{kept.id}", "session.tagged")] == {"added": ["secretword"]}
    assert about[(f"session:{kept.id}", "session.read")] == {"access": "READ"}


async def test_a_tag_change_and_its_event_are_one_write_that_a_deletion_redacts(
    store: Store,
) -> None:
    """The event of a tag change (which names the tags) is written with the change: the
    deletion after it redacts it, and a tag change that comes after the deletion finds no
    session and leaves no event (a tagSessions that loaded the session before it was
    deleted)."""
    s = make_session()
    await store.create_session(s, None, 10)
    target = f"session:{s.id}"
    tagged = await store.set_tags(
        s.id,
        ["snorkelwimbly"],
        T0,
        event("alice", "session.tagged", target, added=["snorkelwimbly"]),
    )
    assert tagged.tags == ["snorkelwimbly"]
    events = await store.list_audit("acme", AuditFilter(), None, 50)
    assert [(e.action, e.details) for e in events] == [
        ("session.tagged", {"added": ["snorkelwimbly"]})
    ]
    assert await store.delete_session(
        s.id, event("alice", "session.deleted", target), redact_details
    )
    late = event("alice", "session.tagged", target, added=["flumpernickel"])
    assert await store.set_tags(s.id, ["flumpernickel"], T0, late) is None
    about = {
        e.action: e.details
        for e in await store.list_audit("acme", AuditFilter(), None, 50)
        if e.target == target
    }
    assert about == {"session.tagged": {"redacted": True}, "session.deleted": {}}


class Stopped(Exception):
    """The process stopping at that point."""


def stop_here(text: str) -> str:
    raise Stopped


async def test_an_erasure_stopped_after_emptying_turns_takes_the_title_back_when_run_again(
    store: Store,
) -> None:
    """Erasure promises that running it again finishes an interrupted one. The store calls
    `opening_words` once the person's turns are emptied, to make the stand-in of a title
    that may hold their words: stopping there and running again must still take the
    generated title back (and leave nothing else of theirs)."""
    session = make_session(title="Zorblax silo plan", title_source=TitleSource.AUTO)
    await store.create_session(session, make_turn(session.id, content="Hello there friend"), 10)
    await store.append_turn(make_turn(session.id, author="bob", content="zorblax silo"), 10)
    with pytest.raises(Stopped):
        await store.erase_contributions(
            ContributionErasure("acme", "bob", T0, 10, redact_details, stop_here)
        )

    counts = await erase_all(store, "acme", "bob", 10)
    assert counts.titles == 1
    after = await store.get_session(session.id)
    assert (after.title, after.title_source) == (
        opening_words("Hello there friend"),
        TitleSource.PENDING,
    )
    assert after.participants == ["alice"]
    assert [t.content for t in await store.list_turns(session.id, limit=10)] == [
        "Hello there friend",
        "",
    ]
    assert await find(store, "acme", "alice", "zorblax") == set()
    assert (await erase_all(store, "acme", "bob", 10)).is_empty()
