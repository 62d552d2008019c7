"""The hot read of bench/overhead.py without GraphQL: a bare Starlette endpoint.

    .venv/bin/python bench/bare_endpoint.py --host 127.0.0.1 --port 8001

POST /last20 with `{"id": "<session id>"}` and the same `Authorization: Bearer <jwt>` as
/graphql answers exactly what `data` of overhead.py's GraphQL document holds, byte for
byte: the session (id, title, turnCount) and its last 20 turns with their tool invocations.

It is built from the same parts as `sessionhub serve` (settings from the same SESSIONHUB_*
variables, `create_app`'s store, services and lifespan) and does the same work for the
answer: the JWT through `TokenVerifier`, `SessionService.find` (the store read, the access
policy with the session's shares, the audit of a non-owner's read) and
`SessionService.turns(last=20)`, then one `orjson.dumps`. Only the GraphQL layer is left
out: parsing, validation, the @auth extension, field resolution and the strawberry types.
uvicorn runs it with the same options as `sessionhub serve`.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sessionhub.auth.tokens import TokenVerifier
from sessionhub.domain.errors import DomainError, Unauthenticated
from sessionhub.domain.models import Turn
from sessionhub.domain.pagination import encode_turn_cursor
from sessionhub.server.app import create_app
from sessionhub.server.cli import freeze_long_lived_heap, uvicorn_options
from sessionhub.server.settings import load_settings, token_config

TURNS = 20
JSON = "application/json"


def _time(value: datetime | None) -> str | None:
    # As the DateTime scalar serialises it.
    return None if value is None else value.isoformat()


def turn_json(turn: Turn) -> dict[str, Any]:
    """A turn as overhead.py's GraphQL selection has it, keys in selection order."""
    return {
        "id": turn.id,
        "seq": turn.seq,
        "role": turn.role.name,
        "authorId": turn.author_id,
        "content": turn.content,
        "createdAt": _time(turn.created_at),
        "usage": {
            "inputTokens": turn.usage.input_tokens,
            "outputTokens": turn.usage.output_tokens,
        },
        "toolInvocations": [
            {
                "id": i.id,
                "name": i.name,
                "status": i.status.name,
                "input": i.input,
                "output": i.output,
                "durationMs": i.duration_ms,
            }
            for i in turn.tool_invocations
        ],
    }


def build_app() -> Starlette:
    settings = load_settings()
    full = create_app(settings)
    components = full.state.components
    sessions = components.services.sessions
    verifier = TokenVerifier(token_config(settings))

    async def last20(request: Request) -> Response:
        try:
            principal = verifier.principal_from_header(request.headers.get("authorization"))
        except Unauthenticated as exc:
            return Response(orjson.dumps({"error": exc.message}), 401, media_type=JSON)
        try:
            session_id = orjson.loads(await request.body())["id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return Response(b'{"error":"send {\\"id\\": ...}"}', 400, media_type=JSON)
        if not isinstance(session_id, str):
            return Response(b'{"error":"id must be a string"}', 400, media_type=JSON)
        try:
            view = await components.services.access.find(principal, session_id)
            if view is None:
                return Response(b'{"session":null}', media_type=JSON)
            page = await sessions.turns(view, last=TURNS)
        except DomainError as exc:
            return Response(orjson.dumps({"error": exc.message}), 400, media_type=JSON)
        session = view.session
        turns = page.turns
        data = {
            "session": {
                "id": session.id,
                "title": session.title or "Untitled",
                "turnCount": session.turn_count,
                "turns": {
                    "pageInfo": {
                        "hasPreviousPage": page.has_more_before,
                        "startCursor": encode_turn_cursor(turns[0].seq) if turns else None,
                    },
                    "edges": [{"node": turn_json(t)} for t in turns],
                },
            }
        }
        return Response(orjson.dumps(data), media_type=JSON)

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    return Starlette(
        routes=[
            Route("/last20", last20, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        # The store, broker and background work start and stop as in `sessionhub serve`.
        lifespan=full.router.lifespan_context,
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = load_settings()
    app = build_app()
    # What `sessionhub serve` does before starting uvicorn, with the options it gives it.
    freeze_long_lived_heap()
    uvicorn.run(app, host=args.host, port=args.port, **uvicorn_options(settings))


if __name__ == "__main__":
    main()
