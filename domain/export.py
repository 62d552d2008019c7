"""Exporting sessions as documents: anyone who may read a session may export it, every
export that was made is on record, and none may cost the server more than its budgets.

A document's cost grows with what it holds, so an export is weighed before it is made:
its turns and characters against `ExportLimits`, refused with LIMIT_EXCEEDED and the
figures when over. It is then made by the `DocumentRenderer` given (the server's renders
in a pool of worker processes that stops a render past its time budget), never on the
event loop, and at most `max_in_progress` exports are loaded or rendered at once, of which at
most `max_in_progress_per_principal` for one principal (one WebSocket may run a hundred
operations at once: one person's slow PDFs would otherwise take every place).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import structlog

from .access import SessionAccess
from .audit import audit_event
from .bulk import ItemResult, ItemStatus, distinct_ids
from .clock import Clock
from .documents import Document, ExportedSession, ExportFormat
from .errors import InvalidInput, LimitExceeded, NotFound, WorkStopped
from .models import Principal, Session, Turn
from .people import session_seen_by, turns_seen_by
from .ports import DocumentRenderer, Store

# Turns read from the store at a time, so that the character budget stops the reading of
# an oversized session after a page rather than after the whole session.
TURN_PAGE = 200
LIGHTER_FORMATS = "MARKDOWN or JSON"

log = structlog.get_logger("sessionhub.export")


@dataclass(frozen=True, slots=True)
class ExportLimits:
    max_turns: int = 20_000
    """Turns of all the sessions of one export."""
    max_chars: int = 20_000_000
    """Characters of all their turns, payloads counted as their JSON."""
    max_pdf_chars: int = 2_000_000
    """The same for a PDF, whose layout is far slower than the other formats'."""
    max_bytes: int = 32 * 1024 * 1024
    """Bytes of the document made."""
    max_in_progress: int = 10
    """Exports being loaded or rendered at once, on this server."""
    max_in_progress_per_principal: int = 2
    """Of those, for one principal (entity and user id)."""

    def max_chars_for(self, fmt: ExportFormat) -> int:
        return self.max_pdf_chars if fmt is ExportFormat.PDF else self.max_chars


@dataclass(slots=True)
class Export:
    format: ExportFormat
    file_name: str
    document: Document
    results: list[ItemResult]


class _Weight:
    """What an export holds so far, refused as soon as it passes a limit."""

    def __init__(self, limits: ExportLimits, fmt: ExportFormat) -> None:
        self._limits = limits
        self._fmt = fmt
        self._max_chars = limits.max_chars_for(fmt)
        self.turns = 0
        self.chars = 0

    def add_session(self, session: Session) -> None:
        """Before a session's turns are read: its turn count, from the session record."""
        self._check_turns(self.turns + session.turn_count)
        self._add_chars(_json_size(session.metadata) + _json_size(session.agent_context))

    def add_turns(self, turns: list[Turn]) -> None:
        self.turns += len(turns)
        self._check_turns(self.turns)
        self._add_chars(sum(_turn_chars(t) for t in turns))

    def _check_turns(self, turns: int) -> None:
        if turns > self._limits.max_turns:
            raise LimitExceeded(
                f"This export holds more than {self._limits.max_turns:,} turns (at least "
                f"{turns:,}), the most one export may hold. Export fewer sessions at a time."
            )

    def _add_chars(self, chars: int) -> None:
        self.chars += chars
        if self.chars > self._max_chars:
            lighter = (
                f", or choose {LIGHTER_FORMATS} (up to {self._limits.max_chars:,})"
                if self._fmt is ExportFormat.PDF
                else ""
            )
            raise LimitExceeded(
                f"This export holds more than {self._max_chars:,} characters (at least "
                f"{self.chars:,}), the most a {self._fmt.value} export may hold. Export fewer "
                f"sessions at a time{lighter}."
            )


def _json_size(value: object) -> int:
    if value is None:
        return 0
    try:
        return len(orjson.dumps(value))
    except TypeError:  # a lone surrogate, which orjson refuses; the renderers replace it
        return len(repr(value))


def _turn_chars(turn: Turn) -> int:
    payloads = [turn.parts, turn.trace, turn.insights, turn.metadata]
    payloads += [(call.input, call.output, call.error) for call in turn.tool_invocations]
    payloads += [f.comment for f in turn.feedback]
    if turn.verification is not None:
        payloads.append(turn.verification.notes)
    present = [p for p in payloads if p is not None]
    return len(turn.content) + (_json_size(present) if present else 0)


class ExportService:
    def __init__(
        self,
        store: Store,
        access: SessionAccess,
        clock: Clock,
        renderer: DocumentRenderer,
        limits: ExportLimits | None = None,
    ) -> None:
        """`renderer` makes the documents; the service closes it (`aclose`)."""
        self._store = store
        self._access = access
        self._clock = clock
        self._renderer = renderer
        self._limits = limits or ExportLimits()
        self._in_progress = 0
        self._in_progress_by: dict[tuple[str, str], int] = {}

    async def export(self, principal: Principal, ids: list[str], fmt: ExportFormat) -> Export:
        if fmt not in self._renderer.formats:
            made = ", ".join(f.value for f in ExportFormat if f in self._renderer.formats)
            raise InvalidInput(
                f"This server cannot make {fmt.value} documents (it was installed without "
                f"them). It makes {made}."
            )
        wanted = distinct_ids(ids)
        who = (principal.entity_id, principal.user_id)
        theirs = self._in_progress_by.get(who, 0)
        if theirs >= self._limits.max_in_progress_per_principal:
            raise LimitExceeded(
                f"You are making {theirs} exports already, as many as one user may make at "
                "once. Try again when one of them is done."
            )
        if self._in_progress >= self._limits.max_in_progress:
            raise LimitExceeded(
                f"The server is making {self._in_progress} exports already, as many as it "
                "makes at once. Try again in a minute."
            )
        self._in_progress += 1
        self._in_progress_by[who] = theirs + 1
        try:
            return await self._export(principal, wanted, fmt)
        finally:
            self._in_progress -= 1
            if self._in_progress_by[who] == 1:
                del self._in_progress_by[who]
            else:
                self._in_progress_by[who] -= 1

    async def aclose(self) -> None:
        await self._renderer.aclose()

    async def _export(self, principal: Principal, ids: list[str], fmt: ExportFormat) -> Export:
        now = self._clock.now()
        weight = _Weight(self._limits, fmt)
        exported: list[ExportedSession] = []
        results: list[ItemResult] = []
        for session_id in ids:
            try:
                session, _ = await self._access.load_readable(principal, session_id)
            except NotFound as exc:
                results.append(ItemResult(session_id, ItemStatus.NOT_FOUND, exc.message))
                continue
            weight.add_session(session)
            turns = await self._read_turns(session, weight)
            # People as the exporter may see them, as in the API (people.py).
            exported.append(
                ExportedSession(
                    session_seen_by(principal.entity_id, session),
                    turns_seen_by(principal.entity_id, turns),
                )
            )
            results.append(ItemResult(session_id, ItemStatus.DONE))
        try:
            document = await self._renderer.render(fmt, exported, now, self._limits.max_bytes)
        except WorkStopped as exc:
            log.warning(
                "export.stopped",
                entity=principal.entity_id,
                user=principal.user_id,
                format=fmt.value,
                sessions=len(exported),
                turns=weight.turns,
                chars=weight.chars,
                reason=exc.message,
            )
            raise LimitExceeded(
                f"The export was stopped: {exc.message} It holds {weight.turns:,} turns and "
                f"{weight.chars:,} characters; export fewer sessions at a time, or choose "
                f"{LIGHTER_FORMATS}, which are quicker to make."
            ) from exc
        # Only now: an export that was refused or stopped was never made, and the trail
        # says what people took away.
        for item in exported:
            await self._store.append_audit(
                audit_event(principal, item.session, "session.exported", now, format=fmt)
            )
        name = f"sessionhub-export-{now:%Y%m%d-%H%M%S}.{document.extension}"
        return Export(fmt, name, document, results)

    async def _read_turns(self, session: Session, weight: _Weight) -> list[Turn]:
        turns: list[Turn] = []
        after: int | None = None
        while True:
            page = await self._store.list_turns(session.id, after_seq=after, limit=TURN_PAGE)
            weight.add_turns(page)
            turns += page
            if len(page) < TURN_PAGE:
                return turns
            after = page[-1].seq
