"""The conversation: starting sessions and writing turns into them (messages, agent
answers with their tool invocations and traces, grades, feedback), each published after
it is committed and told to the title scheduler."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from . import validation as check
from .access import SessionView
from .clock import new_id
from .collaborators import ActsOnSessions, SessionCollaborators
from .commands import AddFeedback, AppendTurn, CreateSession, SendMessage, SetVerification
from .errors import Forbidden, InvalidInput, NotFound, turn_not_found
from .events import SessionCreated, TurnAdded, TurnUpdated
from .models import (
    JSON,
    ChatApp,
    Feedback,
    NewTurn,
    Principal,
    Session,
    SessionStatus,
    SessionTemplate,
    TitleSource,
    ToolInvocation,
    Turn,
    TurnRole,
    Verification,
)
from .people import turn_seen_by
from .policy import Access, can_interact, can_verify, may_act_on_behalf, may_append_role
from .templates import find_template
from .titles import TitleScheduler, opening_words


class ConversationService(ActsOnSessions):
    def __init__(
        self, collaborators: SessionCollaborators, titles: TitleScheduler | None = None
    ) -> None:
        super().__init__(collaborators)
        # Told of each committed turn; titles are made in the background, never awaited.
        self._titles = titles

    async def create(self, principal: Principal, command: CreateSession) -> SessionView:
        chat_app = self._chat_app(command.chat_app_id)
        owner = self._acting_user(principal, command.on_behalf_of)
        title = check.title(command.title, self._limits) if command.title is not None else None
        session = self._new_session(principal, owner, chat_app, title)
        session.tags = check.tags(command.tags, self._limits)
        session.metadata = check.json_value(command.metadata, self._limits, "metadata")
        agent_context = check.json_value(command.agent_context, self._limits, "agent context")
        template = None
        if command.template_id is not None:
            check.identifier(command.template_id, self._limits, "template id")
            template = await find_template(self._store, principal, chat_app, command.template_id)
            if template is None:
                raise NotFound(
                    f"Template {command.template_id!r} does not exist in chat app {chat_app.id!r}."
                )
            session.template_id = template.id
            agent_context = _template_context(template, agent_context)
        session.agent_context = agent_context
        # The first starter turn is stored in the session's own transaction; the rest are
        # appended right after it, in order (the store takes one first turn).
        starters = [
            NewTurn(
                new_id(),
                session.id,
                starter.role,
                TEMPLATE_AUTHOR if starter.role is TurnRole.ASSISTANT else owner,
                starter.content,
                self._clock.now(),
                author_entity_id=principal.entity_id,
            )
            for starter in (template.starter_turns if template else ())
        ]
        limit = chat_app.settings.max_session_history
        stored, first = await self._store.create_session(
            session, starters[0] if starters else None, limit
        )
        await self._broker.publish(SessionCreated(stored))
        if first is not None:
            await self._broker.publish(TurnAdded(first))
        for turn in starters[1:]:
            added, stored = await self._store.append_turn(
                turn, limit, chat_app.settings.retention_days
            )
            await self._broker.publish(TurnAdded(added))
        return SessionView(stored, Access.MANAGE, chat_app, False, audience=principal.entity_id)

    async def send_message(
        self, principal: Principal, command: SendMessage
    ) -> tuple[SessionView, Turn]:
        text = check.content(command.content, self._limits, required=True, what="message")
        parts = check.json_value(command.parts, self._limits, "parts")
        metadata = check.json_value(command.metadata, self._limits, "metadata")
        now = self._clock.now()

        def message(session_id: str, author: str) -> NewTurn:
            return NewTurn(
                new_id(),
                session_id,
                TurnRole.USER,
                author,
                text,
                now,
                parts,
                metadata=metadata,
                author_entity_id=principal.entity_id,
            )

        if command.session_id is None:
            if command.chat_app_id is None:
                raise InvalidInput("Give a chatAppId to start a new session, or a sessionId.")
            chat_app = self._chat_app(command.chat_app_id)
            author = self._acting_user(principal, command.on_behalf_of)
            session = self._new_session(principal, author, chat_app, None)
            # The opening words stand in until a generated title replaces a PENDING one;
            # with automatic titles off they are the title.
            session.title = opening_words(text) or None
            if session.title and not chat_app.settings.auto_generate_titles:
                session.title_source = TitleSource.AUTO
            stored, added = await self._store.create_session(
                session, message(session.id, author), chat_app.settings.max_session_history
            )
            assert added is not None
            await self._broker.publish(SessionCreated(stored))
            await self._broker.publish(TurnAdded(added))
            view = SessionView(stored, Access.MANAGE, chat_app, False, audience=principal.entity_id)
            return view, turn_seen_by(principal.entity_id, added)

        session, access = await self._access.load_readable(principal, command.session_id)
        if not can_interact(access):
            raise Forbidden("You may read this session but not write to it.")
        author = self._acting_user(principal, command.on_behalf_of, session)
        added, stored = await self._append(session, message(session.id, author))
        view = self._access.view_of(principal, stored, access)
        return view, turn_seen_by(principal.entity_id, added)

    async def append_turn(self, principal: Principal, command: AppendTurn) -> Turn:
        session, access = await self._access.load_readable(principal, command.session_id)
        if not can_interact(access):
            raise Forbidden("You may read this session but not write to it.")
        chat_app = self._chat_apps.get(session.chat_app_id)
        if not may_append_role(principal, session, access, command.role, chat_app):
            raise Forbidden(
                f"Only the session's owner and its entity's agent service may append "
                f"{command.role.value} turns; as a collaborator you write USER turns."
            )
        tools = self._tool_invocations(command)
        required = command.role is TurnRole.USER or not (tools or command.parts)
        text = check.content(command.content, self._limits, required=required)
        usage = command.usage
        check.count(usage.input_tokens, "input token count")
        check.count(usage.output_tokens, "output token count")
        check.number(usage.cost, "cost", low=0, high=1e9)
        author = self._acting_user(principal, command.on_behalf_of, session)
        turn = NewTurn(
            id=new_id(),
            session_id=session.id,
            role=command.role,
            author_id=author,
            author_entity_id=principal.entity_id,
            content=text,
            created_at=self._clock.now(),
            parts=check.json_value(command.parts, self._limits, "parts"),
            tool_invocations=tools,
            trace=check.json_value(command.trace, self._limits, "trace"),
            insights=check.json_value(command.insights, self._limits, "insights"),
            metadata=check.json_value(command.metadata, self._limits, "metadata"),
            usage=usage,
        )
        added, _ = await self._append(session, turn)
        return turn_seen_by(principal.entity_id, added)

    async def _append(self, session: Session, turn: NewTurn) -> tuple[Turn, Session]:
        """Store, publish and tell the title scheduler: the turn and session as stored."""
        added, stored = await self._store.append_turn(
            turn, self._history_limit(session), self._retention_days(session)
        )
        await self._broker.publish(TurnAdded(added))
        if self._titles is not None:
            self._titles.notify(stored, added)
        return added, stored

    async def set_verification(
        self, principal: Principal, turn_id: str, command: SetVerification
    ) -> Turn:
        turn, session, access = await self._access.load_turn(principal, turn_id)
        if not can_verify(principal, session, access):
            raise Forbidden(
                "Only the session's owner, an admin or its entity's agent service grades turns."
            )
        verification = Verification(
            grade=command.grade,
            score=check.number(command.score, "score", low=0, high=1),
            notes=check.optional_text(
                command.notes, self._limits.max_comment_chars, "verification notes"
            ),
            verified_at=self._clock.now(),
            verified_by=principal.user_id,
            verified_by_entity_id=principal.entity_id,
        )
        updated = await self._store.set_verification(turn.id, verification)
        if updated is None:
            raise turn_not_found(turn_id)
        await self._broker.publish(TurnUpdated(updated))
        return turn_seen_by(principal.entity_id, updated)

    async def add_feedback(self, principal: Principal, turn_id: str, command: AddFeedback) -> Turn:
        turn, _, access = await self._access.load_turn(principal, turn_id)
        if not can_interact(access):
            raise Forbidden("You may read this session but not give feedback on it.")
        feedback = Feedback(
            user_id=principal.user_id,
            kind=command.kind,
            comment=check.optional_text(
                command.comment, self._limits.max_comment_chars, "feedback comment"
            ),
            at=self._clock.now(),
            entity_id=principal.entity_id,
        )
        updated = await self._store.add_feedback(turn.id, feedback)
        if updated is None:
            raise turn_not_found(turn_id)
        await self._broker.publish(TurnUpdated(updated))
        return turn_seen_by(principal.entity_id, updated)

    def _chat_app(self, chat_app_id: str) -> ChatApp:
        chat_app = self._chat_apps.get(chat_app_id)
        if chat_app is None:
            raise NotFound(f"Chat app {chat_app_id!r} does not exist.")
        return chat_app

    def _history_limit(self, session: Session) -> int:
        chat_app = self._chat_apps.get(session.chat_app_id)
        return chat_app.settings.max_session_history if chat_app else 500

    def _retention_days(self, session: Session) -> int | None:
        chat_app = self._chat_apps.get(session.chat_app_id)
        return chat_app.settings.retention_days if chat_app else None

    def _acting_user(
        self, principal: Principal, on_behalf_of: str | None, session: Session | None = None
    ) -> str:
        """Who a write is authored by; `session` is the one written to, None for a new one."""
        if on_behalf_of is None or on_behalf_of == principal.user_id:
            return principal.user_id
        if not may_act_on_behalf(principal, session):
            raise Forbidden("Only a service of the session's entity may act on behalf of a user.")
        return check.identifier(on_behalf_of, self._limits, "onBehalfOf user id")

    def _new_session(
        self, principal: Principal, owner: str, chat_app: ChatApp, title: str | None
    ) -> Session:
        now = self._clock.now()
        return Session(
            id=new_id(),
            entity_id=principal.entity_id,
            chat_app_id=chat_app.id,
            owner_id=owner,
            title=title,
            title_source=TitleSource.MANUAL if title else TitleSource.PENDING,
            created_at=now,
            updated_at=now,
            last_activity_at=now,
            participants=[owner],
            status=SessionStatus.ACTIVE,
            expires_at=now + timedelta(days=chat_app.settings.retention_days),
        )

    def _tool_invocations(self, command: AppendTurn) -> list[ToolInvocation]:
        if len(command.tool_invocations) > self._limits.max_tool_invocations:
            raise InvalidInput(
                f"A turn holds at most {self._limits.max_tool_invocations} tool invocations."
            )
        tools = []
        for item in command.tool_invocations:
            if not item.name.strip():
                raise InvalidInput("A tool invocation needs the tool's name.")
            if item.duration_ms is not None:
                check.number(item.duration_ms, "tool duration", low=0, high=1e10)
            tools.append(
                ToolInvocation(
                    id=item.id or new_id(),
                    name=item.name,
                    input=check.json_value(item.input, self._limits, "tool input"),
                    output=check.json_value(item.output, self._limits, "tool output"),
                    status=item.status,
                    error=check.optional_text(
                        item.error, self._limits.max_content_chars, "tool error"
                    ),
                    started_at=item.started_at,
                    duration_ms=item.duration_ms,
                )
            )
        return tools


TEMPLATE_AUTHOR = "template"
"""The author of a template's ASSISTANT starter turns; USER and SYSTEM ones are the owner's."""


def _template_context(template: SessionTemplate, given: JSON) -> JSON:
    """The template's system prompt and variables, with the caller's agent context on top:
    top-level keys given win, and given variables are merged over the template's."""
    merged: dict[str, Any] = {}
    if template.system_prompt is not None:
        merged["systemPrompt"] = template.system_prompt
    if template.variables is not None:
        merged["variables"] = template.variables
    if given is None:
        return merged or None
    if not isinstance(given, dict):
        raise InvalidInput("With a template, agentContext must be an object.")
    if "system_prompt" in given:  # the snake_case spelling the context also reads
        merged.pop("systemPrompt", None)
    variables = given.get("variables")
    if isinstance(variables, dict) and isinstance(merged.get("variables"), dict):
        given = {**given, "variables": {**merged["variables"], **variables}}
    return {**merged, **given}
