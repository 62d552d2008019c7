"""Mutation fields that add to or annotate a session's turns."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from ..auth.permissions import auth_mutation
from ..domain.commands import (
    AddFeedback,
    AppendTurn,
    SendMessage,
    SetVerification,
)
from ..domain.commands import (
    ToolInvocationInput as ToolInvocationCommand,
)
from ..domain.models import TokenUsage
from ..schema.inputs import AppendTurnInput, FeedbackInput, SendMessageInput, VerificationInput
from ..schema.turns import Turn
from ..schema.types import SendMessagePayload, Session
from .context import Context
from .roles import GRADERS, WRITERS


async def _send_message(info: Info[Context, None], input: SendMessageInput) -> SendMessagePayload:
    view, turn = await info.context.services.conversation.send_message(
        info.context.require_principal(),
        SendMessage(
            content=input.content,
            session_id=input.session_id,
            chat_app_id=input.chat_app_id,
            parts=input.parts,
            metadata=input.metadata,
            on_behalf_of=input.on_behalf_of,
        ),
    )
    return SendMessagePayload(
        session=Session.of(view), turn=Turn.of(turn), created_session=input.session_id is None
    )


async def _append_turn(info: Info[Context, None], input: AppendTurnInput) -> Turn:
    usage = input.usage
    turn = await info.context.services.conversation.append_turn(
        info.context.require_principal(),
        AppendTurn(
            session_id=input.session_id,
            role=input.role,
            content=input.content,
            parts=input.parts,
            tool_invocations=[
                ToolInvocationCommand(
                    name=t.name,
                    id=t.id,
                    input=t.input,
                    output=t.output,
                    status=t.status,
                    error=t.error,
                    started_at=t.started_at,
                    duration_ms=t.duration_ms,
                )
                for t in input.tool_invocations or ()
            ],
            trace=input.trace,
            insights=input.insights,
            metadata=input.metadata,
            usage=TokenUsage(usage.input_tokens, usage.output_tokens, usage.cost)
            if usage
            else TokenUsage(),
            on_behalf_of=input.on_behalf_of,
        ),
    )
    return Turn.of(turn)


async def _set_verification(
    info: Info[Context, None], turn_id: strawberry.ID, input: VerificationInput
) -> Turn:
    turn = await info.context.services.conversation.set_verification(
        info.context.require_principal(),
        turn_id,
        SetVerification(grade=input.grade, score=input.score, notes=input.notes),
    )
    return Turn.of(turn)


async def _add_feedback(
    info: Info[Context, None], turn_id: strawberry.ID, input: FeedbackInput
) -> Turn:
    turn = await info.context.services.conversation.add_feedback(
        info.context.require_principal(),
        turn_id,
        AddFeedback(kind=input.kind, comment=input.comment),
    )
    return Turn.of(turn)


@strawberry.type
class TurnMutations:
    send_message: SendMessagePayload = auth_mutation(
        _send_message,
        requires=WRITERS,
        description="A user message; without sessionId it starts a new session.",
    )
    append_turn: Turn = auth_mutation(
        _append_turn,
        requires=WRITERS,
        description="An agent response, tool results or a trace, from the agent back end.",
    )
    set_verification: Turn = auth_mutation(_set_verification, requires=GRADERS)
    add_feedback: Turn = auth_mutation(_add_feedback, requires=WRITERS)
