"""Automatic titles as a GraphQL client sees them: PENDING opening words at once, a
generated AUTO title after the first exchange, found by search, and never over a name
someone gave."""

from __future__ import annotations

SEND = """mutation($i: SendMessageInput!) {
  sendMessage(input: $i) { session { id title titleSource } } }"""
APPEND = "mutation($i: AppendTurnInput!) { appendTurn(input: $i) { id } }"
VIEW = "query($id: ID!) { session(id: $id) { title titleSource } }"
SEARCH = """query($q: String!) { searchSessions(query: $q) {
  edges { node { session { id title } titleSnippet } } } }"""
RENAME = "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { title } }"


def settle(api) -> None:
    """Wait until the background title worker has done what was asked of it."""
    api.client.portal.call(api.client.app.state.components.titles.drain)


def test_the_first_exchange_titles_the_session_and_search_finds_it(api) -> None:
    alice = api.as_("alice", "acme")
    sent = alice.ok(
        SEND,
        {
            "i": {
                "chatAppId": "knowledge",
                "content": "Why are there two high tides a day and not just one facing the Moon?",
            }
        },
    )["sendMessage"]["session"]
    # The answer to sendMessage does not wait for a title: the opening words stand in.
    assert sent["titleSource"] == "PENDING"
    assert sent["title"] == "Why are there two high tides a day and not just one facing"
    alice.ok(
        APPEND,
        {
            "i": {
                "sessionId": sent["id"],
                "content": "The Moon's pull differs across the Earth, so the oceans bulge on "
                "both sides and each place passes through two high tides.",
            }
        },
    )
    settle(api)
    session = alice.ok(VIEW, {"id": sent["id"]})["session"]
    assert session["titleSource"] == "AUTO"
    assert "tides" in session["title"].lower() and len(session["title"]) <= 60

    (edge,) = alice.ok(SEARCH, {"q": "tides"})["searchSessions"]["edges"]
    assert edge["node"]["session"] == {"id": sent["id"], "title": session["title"]}
    assert "<mark>" in edge["node"]["titleSnippet"]


def test_a_name_given_by_hand_is_kept(api) -> None:
    alice = api.as_("alice", "acme")
    sid = alice.ok(
        SEND, {"i": {"chatAppId": "support", "content": "My HP printer shows offline."}}
    )["sendMessage"]["session"]["id"]
    alice.ok(RENAME, {"id": sid, "t": "Office printer"})
    for text in ("Reserve its IP address in the router.", "Then add the printer again."):
        alice.ok(APPEND, {"i": {"sessionId": sid, "content": text}})
        alice.ok(SEND, {"i": {"sessionId": sid, "content": "Done, what next?"}})
    settle(api)
    assert alice.ok(VIEW, {"id": sid})["session"] == {
        "title": "Office printer",
        "titleSource": "MANUAL",
    }


SIDEBAR = "subscription { mySessions { change sessionId session { id title } } }"
EVENTS = """subscription($id: ID!, $after: Int) { sessionEvents(sessionId: $id, afterSeq: $after) {
  __typename ... on TurnAdded { seq } ... on SessionUpdated { session { id title } } } }"""


def test_an_automatic_title_reaches_live_clients(api) -> None:
    alice = api.as_("alice", "acme")
    sid = alice.ok(
        SEND,
        {
            "i": {
                "chatAppId": "knowledge",
                "content": "How do I reset the admin password on my router?",
            }
        },
    )["sendMessage"]["session"]["id"]
    with api.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {alice.token}"}}
        )
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "side", "type": "subscribe", "payload": {"query": SIDEBAR}})
        ws.send_json(
            {
                "id": "ev",
                "type": "subscribe",
                "payload": {"query": EVENTS, "variables": {"id": sid, "after": 1}},
            }
        )
        alice.ok(
            APPEND,
            {"i": {"sessionId": sid, "content": "Hold the router's reset button for 7 seconds."}},
        )
        settle(api)
        title = alice.ok(VIEW, {"id": sid})["session"]["title"]
        assert "router" in title.lower()

        seen: dict[str, list[dict]] = {"side": [], "ev": []}
        event = {"__typename": "SessionUpdated", "session": {"id": sid, "title": title}}
        sidebar = {"change": "UPDATED", "sessionId": sid, "session": {"id": sid, "title": title}}
        for _ in range(20):
            if event in seen["ev"] and sidebar in seen["side"]:
                break
            message = ws.receive_json()
            if message.get("type") == "next":
                seen[message["id"]].append(next(iter(message["payload"]["data"].values())))
        else:
            raise AssertionError(f"the title did not reach the subscriptions: {seen}")
        # In order on the session's own feed: the answer, then the title it brought.
        assert seen["ev"][0] == {"__typename": "TurnAdded", "seq": 2}
