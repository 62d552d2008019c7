"""GraphQL types of the context an agent resumes a session with: the messages ready for
an LLM call."""

from __future__ import annotations

from typing import cast

import strawberry
from strawberry.scalars import JSON

from ..domain.context import AgentContext as DomainAgentContext
from ..domain.context_formats import ContextFormat, request_fields
from .turns import (
    Person,
)


@strawberry.type
class ToolCall:
    id: strawberry.ID
    name: str
    arguments: str = strawberry.field(description="The tool input as a JSON string.")


@strawberry.type(description="One message of an LLM chat-completions request.")
class ContextMessage:
    role: str
    content: str
    tool_calls: list[ToolCall]
    tool_call_id: str | None
    name: str | None = strawberry.field(
        description="The tool's name on a tool message; on a collaborator's user message the "
        "participant name (letters, digits, _ and -) to pass as the message's `name`."
    )
    seq: int | None = strawberry.field(description="The turn this message comes from.")
    author: Person | None = strawberry.field(
        description="Who wrote that turn (none for the system prompt); `external` when of "
        "another entity than the session's."
    )
    collaborator: bool = strawberry.field(
        description="A user message written by someone other than the session's owner (a "
        "grantee, an admin, a service as itself); its content starts with a line saying so."
    )


@strawberry.type(description="What an agent needs to resume the session.")
class AgentContext:
    messages: list[ContextMessage]
    system_prompt: str | None
    variables: JSON | None
    turn_count: int
    included_turns: int
    truncated: bool = strawberry.field(description="True when older turns were left out.")
    left_out: int = strawberry.field(
        description="Messages left out so that every tool call has its result: results whose "
        "call is older than the window, and assistant messages that held only calls with no "
        "result yet. A call with no result is also taken off a message that stays."
    )
    request: JSON = strawberry.field(
        description="The messages as the API of `context(format:)` takes them, to send as they "
        "are beside the model: OPENAI_CHAT gives {messages}, ANTHROPIC_MESSAGES {system, "
        "messages}."
    )

    @classmethod
    def of(cls, c: DomainAgentContext, format: ContextFormat) -> AgentContext:
        return cls(
            messages=[
                ContextMessage(
                    role=m.role,
                    content=m.content,
                    tool_calls=[
                        ToolCall(id=strawberry.ID(t.id), name=t.name, arguments=t.arguments)
                        for t in m.tool_calls
                    ],
                    tool_call_id=m.tool_call_id,
                    name=m.name,
                    seq=m.seq,
                    author=None
                    if m.author is None
                    else Person(
                        user_id=strawberry.ID(m.author.user_id),
                        entity_id=None
                        if m.author.entity_id is None
                        else strawberry.ID(m.author.entity_id),
                        external=m.external_author,
                    ),
                    collaborator=m.collaborator,
                )
                for m in c.messages
            ],
            system_prompt=c.system_prompt,
            variables=c.variables,
            turn_count=c.turn_count,
            included_turns=c.included_turns,
            truncated=c.truncated,
            left_out=c.left_out,
            request=cast(JSON, request_fields(c, format)),
        )
