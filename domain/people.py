"""Who a person in a session is shown as, to whom: the one place that decides it.

A session's entity brings people of other entities in (EXTERNAL shares, links) and sees
everyone who took part as they are: user id and entity. A viewer of another entity, a
guest, sees the session's entity's people and those of their own entity as they are, but
a guest of a third entity only as `UNNAMED`: neither their user id nor their entity. Who
else the host invited, and from where, is the host's to know, not a fellow guest's
(globex's gina and initech's ivan in acme's session each see the other as someone
external).

Every session, turn and live event leaves the domain through these functions, with the
entity of whoever reads it; the API, exports, the agent context and live events show
what they return.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .models import Feedback, Person, Session, Turn

UNNAMED_USER = "external"
"""The user id shown for someone of an entity the viewer is not shown."""
UNNAMED = Person(None, UNNAMED_USER)
"""Someone of another entity than the session's and the viewer's."""


def shown(person: Person, session_entity_id: str, viewer_entity_id: str) -> bool:
    """Whether a viewer of `viewer_entity_id` sees who `person` is, in a session of
    `session_entity_id`."""
    return viewer_entity_id == session_entity_id or person.entity_id in (
        session_entity_id,
        viewer_entity_id,
    )


def session_seen_by(viewer_entity_id: str, session: Session) -> Session:
    """The session as a viewer of `viewer_entity_id` sees it: external participants they
    may not know as one UNNAMED (whose place is the first of them)."""
    people: list[Person] = []
    for person in session.external_participants:
        if not shown(person, session.entity_id, viewer_entity_id):
            person = UNNAMED
        if person not in people:
            people.append(person)
    if people == session.external_participants:
        return session
    return replace(session, external_participants=people)


def turn_seen_by(viewer_entity_id: str, turn: Turn) -> Turn:
    """The turn as a viewer of `viewer_entity_id` sees it: its author, feedback givers and
    verifier, each as they are or UNNAMED."""
    entity_id = turn.entity_id
    if viewer_entity_id == entity_id:
        return turn
    changes: dict[str, Any] = {}
    if not shown(turn.author, entity_id, viewer_entity_id):
        changes.update(author_id=UNNAMED_USER, author_entity_id=None)
    if any(not shown(f.given_by, entity_id, viewer_entity_id) for f in turn.feedback):
        changes["feedback"] = [
            _feedback_seen(f, entity_id, viewer_entity_id) for f in turn.feedback
        ]
    v = turn.verification
    if v is not None and not shown(v.verifier, entity_id, viewer_entity_id):
        changes["verification"] = replace(v, verified_by=UNNAMED_USER, verified_by_entity_id=None)
    return replace(turn, **changes) if changes else turn


def turns_seen_by(viewer_entity_id: str, turns: list[Turn]) -> list[Turn]:
    return [turn_seen_by(viewer_entity_id, t) for t in turns]


def _feedback_seen(f: Feedback, session_entity_id: str, viewer_entity_id: str) -> Feedback:
    if shown(f.given_by, session_entity_id, viewer_entity_id):
        return f
    return replace(f, user_id=UNNAMED_USER, entity_id=None)
