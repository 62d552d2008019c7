"""The query conditions that several record modules share: what is visible, what is live,
and where a newest-first page resumes."""

from __future__ import annotations

from .codec import STATE, Doc

# Not hidden by a creation or a deletion in progress (see codec.STATE).
VISIBLE: Doc = {STATE: {"$exists": False}}


def live_at(now_us: int) -> Doc:
    """Not expired at `now_us`: no expiry (null or absent), or a later one."""
    return {"$or": [{"expires_at_us": None}, {"expires_at_us": {"$gt": now_us}}]}


def older_than(field: str, at_us: int, doc_id: str) -> Doc:
    """Keyset condition: strictly after (at, id) in a newest-first order."""
    return {"$or": [{field: {"$lt": at_us}}, {field: at_us, "_id": {"$lt": doc_id}}]}
