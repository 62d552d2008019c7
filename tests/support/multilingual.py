"""The conversations of tests/data/multilingual.json (13 languages, written for the
project), loaded into a store: shared by the search contract test and
bench/multilingual.py."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sessionhub.domain.models import TitleSource, TurnRole
from sessionhub.domain.ports import Store
from tests.storage.test_store_contract import T0, make_session, make_turn

DATA = json.loads((Path(__file__).parent.parent / "data" / "multilingual.json").read_text())


async def load(store: Store) -> dict[str, str]:
    """Each conversation as a session of alice@acme; session ids by conversation id."""
    ids = {}
    for n, c in enumerate(DATA["conversations"]):
        at = T0 + timedelta(hours=n)
        session = make_session(title=None, title_source=TitleSource.PENDING, at=at)
        await store.create_session(session, None, 100)
        for i, turn in enumerate(c["turns"]):
            await store.append_turn(
                make_turn(
                    session.id,
                    content=turn["content"],
                    role=TurnRole(turn["role"]),
                    at=at + timedelta(minutes=i),
                ),
                100,
            )
        ids[c["id"]] = session.id
    return ids
