"""An optional title generator that asks an OpenAI-compatible chat-completions endpoint.

Chosen by the composition root when SESSIONHUB_TITLE_LLM_URL is set. Whatever goes
wrong — no answer within the timeout, a status other than 200, a body that is not the
API's JSON, an empty or rambling answer — the offline generator makes the title instead,
so a session never waits on, or goes without a title because of, a remote model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx2 as httpx
import structlog

from ..domain.models import TurnRole, TurnText
from ..domain.titles import MAX_TITLE_CHARS, TitleGenerator, clean_title

log = structlog.get_logger(__name__)

SYSTEM_PROMPT = (
    "You name chat conversations for a sidebar. Reply with the title only: a short phrase "
    f"of at most 8 words and {MAX_TITLE_CHARS} characters that says what the conversation "
    "is about, in the conversation's language and using its own words. No quotes, no "
    "'Title:' label, no trailing punctuation."
)
TURN_CHARS = 1200
PROMPT_CHARS = 6000


def completions_url(url: str) -> str:
    """The endpoint to POST to: the URL as given when it names /chat/completions, else
    that path under it (so both https://host/v1 and .../v1/chat/completions work)."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


def prompt(turns: Sequence[TurnText]) -> str:
    lines = []
    budget = PROMPT_CHARS
    for turn in turns:
        speaker = "User" if turn.role is TurnRole.USER else "Assistant"
        text = " ".join(turn.content.split())[:TURN_CHARS]
        line = f"{speaker}: {text}"
        if len(line) > budget:
            line = line[:budget]
        lines.append(line)
        budget -= len(line)
        if budget <= 0:
            break
    return "Conversation:\n" + "\n".join(lines) + "\n\nTitle:"


class ChatCompletionsTitleGenerator:
    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None,
        timeout_seconds: float,
        fallback: TitleGenerator,
        max_chars: int = MAX_TITLE_CHARS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = completions_url(url)
        self._model = model
        self._timeout = timeout_seconds
        self._fallback = fallback
        self._max_chars = max_chars
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(timeout_seconds), transport=transport
        )

    async def generate(self, turns: Sequence[TurnText]) -> str | None:
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange, so a server
            # that drips its answer byte by byte cannot hold a worker either.
            async with asyncio.timeout(self._timeout):
                answer = await self._ask(turns)
        except (TimeoutError, httpx.HTTPError, ValueError, LookupError, TypeError) as exc:
            log.warning("titles.llm_failed", url=self._url, error=type(exc).__name__)
            return await self._fallback.generate(turns)
        title = clean_title(answer, self._max_chars)
        if title is None:
            log.warning("titles.llm_unusable_answer", url=self._url)
            return await self._fallback.generate(turns)
        return title

    async def _ask(self, turns: Sequence[TurnText]) -> object:
        response = await self._client.post(
            self._url,
            json={
                "model": self._model,
                "messages": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": prompt(turns)},
                ],
                "temperature": 0.2,
                "max_tokens": 32,
                "stream": False,
            },
        )
        if response.status_code != 200:
            raise httpx.HTTPStatusError(
                f"status {response.status_code}", request=response.request, response=response
            )
        body = response.json()
        return body["choices"][0]["message"]["content"]

    async def aclose(self) -> None:
        await self._client.aclose()
