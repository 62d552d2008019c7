"""Probing for what exists (issue 20, point 10), for tests/security/test_speakers_probing.py
and bench/existence_timing.py: a chat app that shares inside its entity only, the documents
a prober sends with the id of another entity's session (or an id nobody has), and whether
an answer is the one for nothing there."""

from __future__ import annotations

from typing import Any

# Shares inside the entity only: a link of acme does not open for globex.
CHAT_APPS = """
[[chat_apps]]
id = "team"
name = "Team"
[chat_apps.settings]
auto_generate_titles = false
allow_sharing = true
allow_external_sharing = false
"""

READ = "query($id: ID!) { session(id: $id) { id } }"
APPEND = """mutation($id: ID!) {
  appendTurn(input: {sessionId: $id, role: USER, content: "hi"}) { id } }"""
SEND_INTO = (
    """mutation($id: ID!) { sendMessage(input: {sessionId: $id, content: "hi"}) { turn { id } } }"""
)
BY_LINK = "query($token: String!) { sessionByShareLink(token: $token) { id } }"


def answers_nothing_there(body: dict[str, Any]) -> bool:
    """Whether a GraphQL answer is the one for nothing there: no field with a value, and
    NOT_FOUND for every error."""
    data = body.get("data") or {}
    return all(value is None for value in data.values()) and all(
        error["extensions"]["code"] == "NOT_FOUND" for error in body.get("errors", ())
    )
