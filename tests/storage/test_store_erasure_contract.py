"""The Store contract for the right to erasure, on every backend: a user's sessions go with
their audit events redacted, and what they left in other sessions is emptied or removed,
batch by batch until nothing is left; other users' data is untouched."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

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
    Pin,
    Session,
    SessionFilter,
    Share,
    ShareMode,
    ToolInvocation,
)
from sessionhub.domain.query import (
    SearchFilter,
    SearchOrder,
    SearchScope,
    parse_query,
)
from sessionhub.domain.redaction import redact_details
from sessionhub.domain.titles import opening_words
from sessionhub.storage.protocol import Store
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
            entity, user, T0, batch, redact_details, opening_words
        )
        if counts.is_empty():
            return total
        total.add(counts)


async def find(store: Store, entity: str, owner: str | None, word: str) -> set[str]:
    scope = SearchScope(entity_id=entity, owner_id=owner)
    hits = await store.search(
        parse_query(word), scope, SearchFilter(), SearchOrder.RELEVANCE, None, 20
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
