"""Attacks on who is who (issue 20, points 5 and 7): a user id names a person only within
its entity. acme's gina and globex's gina (who writes in acme's sessions through an
EXTERNAL share) are two people: one's erasure, feedback, participation or search filter
never reaches the other. Erasure takes back generated titles made from the erased
person's words, and deleting a session leaves none of its content in the audit trail,
down to the bytes of the SQLite files."""

from __future__ import annotations

import base64
import json

from sessionhub.domain.models import Role
from sessionhub.server.settings import Settings
from tests.api.test_erasure_api import bytes_hold
from tests.conftest import Api, Caller, audit_events

SEND = """mutation($i: SendMessageInput!) { sendMessage(input: $i) {
  session { id } turn { id } } }"""
APPEND = "mutation($i: AppendTurnInput!) { appendTurn(input: $i) { id } }"
SHARE = "mutation($i: ShareInput!) { shareSession(input: $i) { id } }"
FEEDBACK = """mutation($t: ID!, $k: FeedbackKind!, $c: String) {
  addFeedback(turnId: $t, input: {kind: $k, comment: $c}) { id } }"""
ERASE = "mutation($u: ID!) { eraseUserData(userId: $u) { authoredTurns feedback } }"
TURNS = """query($id: ID!) { session(id: $id) { participants turns(first: 50) { nodes {
  id authorId content feedback { userId kind comment } } } } }"""
PEOPLE = """query($id: ID!) { session(id: $id) {
  participants people { userId entityId external }
  turns(first: 50) { nodes { content author { userId entityId external }
    feedback { userId comment givenBy { userId entityId external } } } }
  context { messages { content author { userId entityId external } } } } }"""
TITLE = "query($id: ID!) { session(id: $id) { title titleSource } }"
SEARCH = """query($q: String!, $f: SearchFilter) { searchSessions(query: $q, filter: $f) {
  edges { node { session { id } } } } }"""
EXPORT = """mutation($ids: [ID!]!, $f: ExportFormat!) { exportSessions(ids: $ids, format: $f) {
  contentBase64 } }"""

# Words only one person ever writes (porter stemming leaves each as it is).
ACME_GINA = "Brambleworth"
GLOBEX_GINA = "Quillfeather"


def start(caller: Caller, text: str) -> str:
    return caller.ok(SEND, {"i": {"chatAppId": "knowledge", "content": text}})["sendMessage"][
        "session"
    ]["id"]


def say(caller: Caller, session_id: str, text: str) -> str:
    return caller.ok(SEND, {"i": {"sessionId": session_id, "content": text}})["sendMessage"][
        "turn"
    ]["id"]


def share(owner: Caller, session_id: str, user: str, entity: str) -> None:
    kind = "USER" if entity == "acme" else "EXTERNAL"
    grantee = {"userId": user} | ({} if entity == "acme" else {"entityId": entity})
    owner.ok(
        SHARE, {"i": {"sessionId": session_id, "granteeKind": kind, "mode": "INTERACT", **grantee}}
    )


def found(caller: Caller, word: str, **search_filter: object) -> set[str]:
    edges = caller.ok(SEARCH, {"q": word, "f": search_filter or None})["searchSessions"]["edges"]
    return {e["node"]["session"]["id"] for e in edges}


def settle(api: Api) -> None:
    """Wait until the background title worker has done what was asked of it."""
    api.client.portal.call(api.client.app.state.components.titles.drain)


class TwoGinas:
    """alice's acme session, in which acme's gina and bob (USER shares) and globex's gina
    and bob (EXTERNAL shares) each write and rate the agent's answer."""

    def __init__(self, api: Api) -> None:
        self.alice = api.as_("alice", "acme")
        self.agent = api.as_("agent", "acme", Role.SERVICE)
        self.people = {
            (user, entity): api.as_(user, entity)
            for user in ("gina", "bob")
            for entity in ("acme", "globex")
        }
        self.session = start(self.alice, "Planning the joint roadmap")
        for user, entity in self.people:
            share(self.alice, self.session, user, entity)
        self.acme_turn = say(self.gina("acme"), self.session, f"{ACME_GINA} roadmap notes")
        self.globex_turn = say(self.gina("globex"), self.session, f"{GLOBEX_GINA} roadmap notes")
        self.answer = self.agent.ok(
            APPEND, {"i": {"sessionId": self.session, "role": "ASSISTANT", "content": "Noted."}}
        )["appendTurn"]["id"]
        for (user, entity), caller in self.people.items():
            caller.ok(
                FEEDBACK,
                {"t": self.answer, "k": "THUMBS_UP", "c": f"{entity} {user} likes it"},
            )

    def gina(self, entity: str) -> Caller:
        return self.people[("gina", entity)]

    def turns(self) -> dict[str, dict]:
        nodes = self.alice.ok(TURNS, {"id": self.session})["session"]["turns"]["nodes"]
        return {t["id"]: t for t in nodes}

    def comments_on_answer(self) -> set[str]:
        return {f["comment"] for f in self.turns()[self.answer]["feedback"]}


def test_the_same_user_id_of_two_entities_keeps_two_feedbacks(api: Api) -> None:
    """globex's bob giving THUMBS_UP no longer replaces acme's bob's THUMBS_UP."""
    w = TwoGinas(api)
    assert w.comments_on_answer() == {
        "acme gina likes it",
        "globex gina likes it",
        "acme bob likes it",
        "globex bob likes it",
    }
    # Giving it again replaces only the giver's own.
    w.people[("bob", "globex")].ok(
        FEEDBACK, {"t": w.answer, "k": "THUMBS_UP", "c": "globex bob changed his mind"}
    )
    assert w.comments_on_answer() == {
        "acme gina likes it",
        "globex gina likes it",
        "acme bob likes it",
        "globex bob changed his mind",
    }


def test_acme_erasing_gina_leaves_globex_gina_whole(api: Api, settings: Settings) -> None:
    w = TwoGinas(api)
    admin = api.as_("root", "acme", Role.ADMIN)
    report = admin.ok(ERASE, {"u": "gina"})["eraseUserData"]
    assert (report["authoredTurns"], report["feedback"]) == (1, 1)

    turns = w.turns()
    assert (turns[w.acme_turn]["authorId"], turns[w.acme_turn]["content"]) == ("erased", "")
    assert turns[w.globex_turn]["authorId"] == "gina"
    assert turns[w.globex_turn]["content"] == f"{GLOBEX_GINA} roadmap notes"
    assert w.comments_on_answer() == {
        "globex gina likes it",
        "acme bob likes it",
        "globex bob likes it",
    }
    assert found(w.alice, GLOBEX_GINA.lower()) == {w.session}
    assert found(w.alice, ACME_GINA.lower()) == set()
    # globex's gina still reads and writes the session her share grants her.
    say(w.gina("globex"), w.session, "Still here")
    assert bytes_hold(settings, GLOBEX_GINA)
    assert not bytes_hold(settings, ACME_GINA)
    session = w.alice.ok(PEOPLE, {"id": w.session})["session"]
    assert {"userId": "gina", "entityId": "globex", "external": True} in session["people"]
    assert {"userId": "gina", "entityId": "acme", "external": False} not in session["people"]


def test_their_own_entity_erases_what_they_wrote_in_another_entitys_session(
    api: Api, settings: Settings
) -> None:
    """globex's admin erases globex's gina: her turn and feedback in acme's session go, and
    acme's gina, the same user id, keeps hers."""
    w = TwoGinas(api)
    report = api.as_("root", "globex", Role.ADMIN).ok(ERASE, {"u": "gina"})["eraseUserData"]
    assert (report["authoredTurns"], report["feedback"]) == (1, 1)
    turns = w.turns()
    assert (turns[w.globex_turn]["authorId"], turns[w.globex_turn]["content"]) == ("erased", "")
    assert turns[w.acme_turn]["content"] == f"{ACME_GINA} roadmap notes"
    assert w.comments_on_answer() == {
        "acme gina likes it",
        "acme bob likes it",
        "globex bob likes it",
    }
    assert found(w.alice, GLOBEX_GINA.lower()) == set()
    assert not bytes_hold(settings, GLOBEX_GINA)
    assert bytes_hold(settings, ACME_GINA)
    people = w.alice.ok(PEOPLE, {"id": w.session})["session"]["people"]
    assert {"userId": "gina", "entityId": "acme", "external": False} in people
    assert {"userId": "gina", "entityId": "globex", "external": True} not in people


def test_people_of_two_entities_never_merge_in_what_a_session_shows(api: Api) -> None:
    w = TwoGinas(api)
    session = w.alice.ok(PEOPLE, {"id": w.session})["session"]
    # `participants` keeps its meaning: users of the session's entity who wrote in it.
    assert session["participants"] == ["alice", "gina", "agent"]
    assert session["people"] == [
        {"userId": user, "entityId": "acme", "external": False}
        for user in ("alice", "gina", "agent")
    ] + [{"userId": "gina", "entityId": "globex", "external": True}]
    by_content = {t["content"]: t for t in session["turns"]["nodes"]}
    assert by_content[f"{ACME_GINA} roadmap notes"]["author"] == {
        "userId": "gina",
        "entityId": "acme",
        "external": False,
    }
    assert by_content[f"{GLOBEX_GINA} roadmap notes"]["author"] == {
        "userId": "gina",
        "entityId": "globex",
        "external": True,
    }
    givers = {(f["comment"], f["givenBy"]["entityId"]) for f in by_content["Noted."]["feedback"]}
    assert ("globex bob likes it", "globex") in givers and ("acme bob likes it", "acme") in givers
    # A collaborator's message starts with a line that says so (test_speakers_attacks.py).
    messages = {m["content"].splitlines()[-1]: m["author"] for m in session["context"]["messages"]}
    assert messages[f"{GLOBEX_GINA} roadmap notes"]["external"] is True
    assert messages[f"{ACME_GINA} roadmap notes"]["external"] is False

    exported = w.alice.ok(EXPORT, {"ids": [w.session], "f": "JSON"})["exportSessions"]
    (document,) = json.loads(base64.b64decode(exported["contentBase64"]))["sessions"]
    authors = {t["content"]: t["author"] for t in document["turns"]}
    assert authors[f"{GLOBEX_GINA} roadmap notes"] == {
        "userId": "gina",
        "entityId": "globex",
        "external": True,
    }
    markdown = w.alice.ok(EXPORT, {"ids": [w.session], "f": "MARKDOWN"})["exportSessions"]
    text = base64.b64decode(markdown["contentBase64"]).decode()
    assert "gina (external, globex)" in text


def test_the_participant_filter_names_users_of_the_callers_entity(api: Api) -> None:
    """alice filters her search on gina: the session globex's gina took part in is not
    one acme's gina took part in."""
    alice = api.as_("alice", "acme")
    with_ours = start(alice, "Roadmap with our gina")
    with_theirs = start(alice, "Roadmap with their gina")
    share(alice, with_ours, "gina", "acme")
    share(alice, with_theirs, "gina", "globex")
    say(api.as_("gina", "acme"), with_ours, "Agreed")
    say(api.as_("gina", "globex"), with_theirs, "Agreed")
    assert found(alice, "roadmap") == {with_ours, with_theirs}
    assert found(alice, "roadmap", participants=["gina"]) == {with_ours}
    assert found(alice, "roadmap", participants=["alice"]) == {with_ours, with_theirs}


# Point 7: generated titles, and what the audit trail keeps of a deleted session

BOB_WORDS = "Zorblaxian quindlewhisk reconciliation for the grain silo"


def test_a_generated_title_made_of_the_erased_persons_words_is_taken_back(
    api: Api, settings: Settings
) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    agent = api.as_("agent", "acme", Role.SERVICE)
    # A greeting has nothing to title: the title is made from bob's words.
    titled = start(alice, "Hello!")
    named = start(alice, "Hello again!")
    alice.ok(
        "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { id } }",
        {"id": named, "t": "Silo notes by alice"},
    )
    for session_id in (titled, named):
        share(alice, session_id, "bob", "acme")
        say(bob, session_id, BOB_WORDS)
        agent.ok(
            APPEND,
            {"i": {"sessionId": session_id, "role": "ASSISTANT", "content": "Sure, I can help."}},
        )
    settle(api)
    before = alice.ok(TITLE, {"id": titled})["session"]
    assert before["titleSource"] == "AUTO" and "Zorblaxian" in before["title"]
    assert found(alice, "zorblaxian") == {titled, named}

    admin = api.as_("root", "acme", Role.ADMIN)
    admin.ok(ERASE, {"u": "bob"})
    assert alice.ok(TITLE, {"id": titled})["session"] == {
        "title": "Hello",
        "titleSource": "PENDING",
    }
    (erased,) = audit_events(admin, page_size=100, action="user.erased")
    assert erased["details"]["titles"] == 1
    for word in ("Zorblaxian", "quindlewhisk"):
        assert not bytes_hold(settings, word), f"{word} is still in the database files"
        assert found(alice, word.lower()) == set()
    settle(api)
    # Nothing left to title (a greeting and an answer): the stand-in stays. A title the
    # owner gave is hers, and stays as she wrote it.
    assert alice.ok(TITLE, {"id": titled})["session"]["titleSource"] == "PENDING"
    assert alice.ok(TITLE, {"id": named})["session"] == {
        "title": "Silo notes by alice",
        "titleSource": "MANUAL",
    }
    assert not bytes_hold(settings, "Zorblaxian")


def test_deleting_sessions_leaves_their_tags_nowhere_in_the_audit_or_the_files(
    api: Api, settings: Settings
) -> None:
    alice = api.as_("alice", "acme")
    auditor = api.as_("aud", "acme", Role.AUDITOR)
    deleted, bulk_deleted, kept = (start(alice, text) for text in ("One", "Two", "Three"))
    for session_id, tag in (
        (deleted, "snorkelwimbly"),
        (bulk_deleted, "flumpernickel"),
        (kept, "grommetfaddle"),
    ):
        alice.ok(
            "mutation($id: ID!, $tag: String!) { tagSessions(ids: [$id], add: [$tag]) "
            "{ results { status } } }",
            {"id": session_id, "tag": tag},
        )
    assert all(bytes_hold(settings, t) for t in ("snorkelwimbly", "flumpernickel"))

    assert alice.ok("mutation($id: ID!) { deleteSession(id: $id) }", {"id": deleted})
    alice.ok(
        "mutation($ids: [ID!]!) { bulkDelete(ids: $ids) { results { status } } }",
        {"ids": [bulk_deleted]},
    )

    for tag in ("snorkelwimbly", "flumpernickel"):
        assert not bytes_hold(settings, tag), f"{tag} is still in the database files"
    assert bytes_hold(settings, "grommetfaddle")
    events = audit_events(auditor, page_size=100)
    for session_id in (deleted, bulk_deleted):
        about = {
            e["action"]: e["details"] for e in events if e["target"] == f"session:{session_id}"
        }
        assert about["session.tagged"] == {"redacted": True}
        assert about["session.deleted"] == {
            "chatAppId": "knowledge",
            "ownerId": "alice",
            "turnCount": 1,
        }
    kept_events = [e for e in events if e["target"] == f"session:{kept}"]
    assert [e["details"] for e in kept_events] == [{"added": ["grommetfaddle"], "removed": []}]


# Guests of two other entities in one session: neither learns who the other is

GUEST_VIEW = """query($id: ID!) { session(id: $id) {
  participants people { userId entityId external }
  turns(first: 50) { nodes { content authorId author { userId entityId external }
    feedback { userId givenBy { userId entityId external } } } }
  context { messages { content name author { userId entityId external } } } } }"""
LIVE_TURNS = """subscription($id: ID!, $after: Int) { sessionEvents(sessionId: $id, afterSeq: $after)
  { __typename ... on TurnAdded { seq turn { content authorId author { userId entityId external } } }
    ... on SessionUpdated { session { people { userId entityId external } } } } }"""
SOMEONE_ELSES_GUEST = {"userId": "external", "entityId": None, "external": True}


def test_a_guest_of_another_entity_sees_a_third_entitys_guest_without_their_identity(
    api: Api,
) -> None:
    """acme's alice shares her session with globex's gina and initech's ivan. Each guest
    sees alice's entity's people and their own entity's as they are, but the other guest
    only as someone external: neither their user id nor their entity, in the session's
    people, turn authors, feedback, the agent context, exports, or live events."""
    alice = api.as_("alice", "acme")
    gina, ivan = api.as_("gina", "globex"), api.as_("ivan", "initech")
    session = start(alice, "Planning the joint roadmap")
    share(alice, session, "gina", "globex")
    share(alice, session, "ivan", "initech")
    say(gina, session, "We can ship in May")
    answer = api.as_("agent", "acme", Role.SERVICE).ok(
        APPEND, {"i": {"sessionId": session, "role": "ASSISTANT", "content": "Noted."}}
    )["appendTurn"]["id"]
    gina.ok(FEEDBACK, {"t": answer, "k": "THUMBS_UP", "c": "good"})
    say(ivan, session, "We agree too")

    with api.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {ivan.token}"}}
        )
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json(
            {
                "id": "ev",
                "type": "subscribe",
                "payload": {"query": LIVE_TURNS, "variables": {"id": session, "after": 0}},
            }
        )
        say(gina, session, "One more thing from us")
        live = []
        while len([m for m in live if m["__typename"] == "TurnAdded"]) < 5:
            message = ws.receive_json()
            assert message["type"] == "next", message
            live.append(message["payload"]["data"]["sessionEvents"])
    seen = ivan.ok(GUEST_VIEW, {"id": session})["session"]
    exported = [
        base64.b64decode(
            ivan.ok(EXPORT, {"ids": [session], "f": f})["exportSessions"]["contentBase64"]
        ).decode()
        for f in ("JSON", "MARKDOWN")
    ]
    authors = {t["content"]: (t["authorId"], t["author"]) for t in seen["turns"]["nodes"]}
    assert authors["We can ship in May"] == ("external", SOMEONE_ELSES_GUEST)
    assert authors["We agree too"] == (
        "ivan",
        {"userId": "ivan", "entityId": "initech", "external": True},
    )
    assert authors["Noted."][1] == {"userId": "agent", "entityId": "acme", "external": False}
    (feedback,) = next(t for t in seen["turns"]["nodes"] if t["content"] == "Noted.")["feedback"]
    assert (feedback["userId"], feedback["givenBy"]) == ("external", SOMEONE_ELSES_GUEST)
    assert seen["people"] == [
        {"userId": "alice", "entityId": "acme", "external": False},
        {"userId": "agent", "entityId": "acme", "external": False},
        SOMEONE_ELSES_GUEST,
        {"userId": "ivan", "entityId": "initech", "external": True},
    ]
    live_authors = {e["turn"]["content"]: e["turn"]["author"] for e in live if "turn" in e}
    assert live_authors["One more thing from us"] == SOMEONE_ELSES_GUEST
    everything = json.dumps([live, seen]) + "".join(exported)
    assert "globex" not in everything.lower()
    assert '"gina"' not in everything and "gina (" not in everything

    # The host's entity sees everyone as they are; gina sees ivan as ivan saw her.
    hosts = alice.ok(GUEST_VIEW, {"id": session})["session"]["people"]
    assert {"userId": "gina", "entityId": "globex", "external": True} in hosts
    assert {"userId": "ivan", "entityId": "initech", "external": True} in hosts
    ginas = gina.ok(GUEST_VIEW, {"id": session})["session"]
    assert "initech" not in json.dumps(ginas).lower()
    assert {"userId": "gina", "entityId": "globex", "external": True} in ginas["people"]
