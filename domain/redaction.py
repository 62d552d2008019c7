"""What the audit trail keeps of what is gone: when a session is deleted (by its owner, an
admin, retention or erasure) or a person erased, the events about them stay, their details
cut down to ids, kinds, counts and times. Anything else (tag names, free text a person
wrote) is content of the session or of the person, and goes with them."""

from __future__ import annotations

from .models import JSON

# Audit details that are ids, kinds, counts or times.
_NON_PERSONAL_DETAILS = frozenset(
    {
        "access",
        "actorEntityId",
        "chatAppId",
        "expiresAt",
        "format",
        "granteeEntityId",
        "granteeKind",
        "granteeUserId",
        "mode",
        "ownerId",
        "reason",
        "shareId",
        "templateId",
        "turnCount",
    }
)


def redact_details(details: JSON) -> JSON:
    kept = (
        {k: v for k, v in details.items() if k in _NON_PERSONAL_DETAILS}
        if isinstance(details, dict)
        else {}
    )
    kept["redacted"] = True
    return kept
