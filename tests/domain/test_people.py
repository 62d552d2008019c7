"""Who a person is shown as, to whom (domain/people.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from sessionhub.domain.models import (
    Feedback,
    FeedbackKind,
    Grade,
    Person,
    Session,
    TitleSource,
    Turn,
    TurnRole,
    Verification,
)
from sessionhub.domain.people import UNNAMED, session_seen_by, turn_seen_by

AT = datetime(2026, 12, 1, tzinfo=UTC)
GINA, IVAN, OLGA = Person("globex", "gina"), Person("initech", "ivan"), Person("oscorp", "olga")


def acme_session() -> Session:
    return Session(
        "s1", "acme", "app", "alice", "Title", TitleSource.MANUAL, AT, AT, AT,
        participants=["alice"], external_participants=[GINA, IVAN, OLGA],
    )  # fmt: skip


def gina_turn() -> Turn:
    return Turn(
        "t1", "s1", 2, TurnRole.USER, "gina", "hello", AT,
        feedback=[
            Feedback("ivan", FeedbackKind.THUMBS_UP, None, AT, entity_id="initech"),
            Feedback("bob", FeedbackKind.THUMBS_UP, None, AT, entity_id="acme"),
        ],
        verification=Verification(Grade.A, 1.0, None, AT, "olga", verified_by_entity_id="oscorp"),
        entity_id="acme", author_entity_id="globex",
    )  # fmt: skip


def test_the_sessions_own_entity_sees_everyone_as_they_are() -> None:
    session, turn = acme_session(), gina_turn()
    assert session_seen_by("acme", session) is session
    assert turn_seen_by("acme", turn) is turn


def test_a_guest_sees_the_hosts_and_their_own_and_no_one_else() -> None:
    seen = session_seen_by("initech", acme_session())
    # gina and olga, of two other entities, are one unnamed guest at gina's place.
    assert seen.people == [Person("acme", "alice"), UNNAMED, IVAN]
    turn = turn_seen_by("initech", gina_turn())
    assert (turn.author, turn.author_id, turn.external_author) == (UNNAMED, "external", True)
    assert [f.given_by for f in turn.feedback] == [IVAN, Person("acme", "bob")]
    assert turn.verification.verifier == UNNAMED
    assert turn.content == "hello"
    # Seeing their own entity's guest as they are.
    assert turn_seen_by("globex", gina_turn()).author == GINA
