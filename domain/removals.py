"""What a removal asks of the store: one batch of the retention sweep, or one batch of a
person's contributions to erase, each with how it is recorded in the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .models import JSON, AuditEvent, Session


@dataclass(frozen=True, slots=True)
class ExpirySweep:
    """Up to `batch` sessions expired at `now` (expires_at <= now), of one chat app and one
    entity when given, in id order after `after_id`; `audit_for` records each removal and
    `redact` the earlier events about it. With `dry_run` nothing changes."""

    now: datetime
    batch: int
    audit_for: Callable[[Session], AuditEvent]
    redact: Callable[[JSON], JSON]
    chat_app_id: str | None = None
    entity_id: str | None = None
    after_id: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class ContributionErasure:
    """What the person (`entity_id`, `user_id`) left in other people's sessions, at most
    `batch` of each kind, erased at `at`; `redact` applies to audit details and
    `opening_words` gives the sessions whose title came from an erased turn a new one."""

    entity_id: str
    user_id: str
    at: datetime
    batch: int
    redact: Callable[[JSON], JSON]
    opening_words: Callable[[str], str]
