"""The composition root as the server runs it."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

from starlette.testclient import TestClient

from sessionhub.auth.tokens import TokenIssuer
from sessionhub.server.app import create_app
from sessionhub.server.settings import Settings, token_config
from tests.conftest import Api


def test_titles_are_made_in_a_worker_process_that_stops_with_the_server(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(title_worker_process=True)
    with TestClient(create_app(settings)) as client:
        gql = Api(client, TokenIssuer(token_config(settings))).as_("alice", "acme").ok

        # Nothing to title yet: no worker.
        assert multiprocessing.active_children() == []
        sid = gql(
            "mutation($i: SendMessageInput!) { sendMessage(input: $i) { session { id } } }",
            {"i": {"chatAppId": "support", "content": "How do I rotate the staging API keys?"}},
        )["sendMessage"]["session"]["id"]
        gql(
            "mutation($i: AppendTurnInput!) { appendTurn(input: $i) { id } }",
            {"i": {"sessionId": sid, "content": "Revoke the old staging API keys, then ..."}},
        )
        client.portal.call(client.app.state.components.titles.drain)
        session = gql("query($id: ID!) { session(id: $id) { title titleSource } }", {"id": sid})
        assert session["session"]["titleSource"] == "AUTO"
        assert "API keys" in session["session"]["title"]
        assert len(multiprocessing.active_children()) == 1
    assert multiprocessing.active_children() == []
