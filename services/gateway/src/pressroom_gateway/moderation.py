"""Topic moderation before a job starts: a blocklist, and OpenAI's moderation endpoint when configured.

- The blocklist: PRESSROOM_GATEWAY_BLOCKLIST (comma-separated words or phrases) plus a small built-in
  list of unambiguously abusive requests (PRESSROOM_GATEWAY_BLOCKLIST_DEFAULTS=false drops it). Matching
  is case-insensitive and on whole words: "kill yourself" refuses "How to KILL   yourself" but "class"
  does not refuse "classic".
- PRESSROOM_GATEWAY_MODERATION=openai with OPENAI_API_KEY set: then the request's free text goes through
  the moderation endpoint (the openai SDK, so OPENAI_BASE_URL applies). When the endpoint cannot be
  reached the job is allowed (the blocklist still applied) and a warning is logged: moderation must not
  take job creation down with it.

A refusal is `TopicRefused` (code `topic_refused`, HTTP 422) naming the reason.
"""

from __future__ import annotations

import re
from typing import Any

from openai import APIError, AsyncOpenAI

from pressroom_contracts.jobs import JobRequest
from pressroom_runtime.logs import get_logger

from .errors import TopicRefused
from .settings import GatewaySettings, ModerationMode

log = get_logger(__name__)

# Requests no legitimate blog post starts from. Kept short on purpose: a long list refuses real topics.
DEFAULT_BLOCKLIST: tuple[str, ...] = (
    "child porn",
    "child pornography",
    "csam",
    "kill yourself",
    "kys",
    "snuff film",
    "snuff films",
    "how to make a bomb",
    "how to build a bomb",
)


def compile_blocklist(terms: list[str] | tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any term as whole words, any whitespace between them."""
    alternatives = []
    for term in terms:
        words = term.split()
        if words:
            alternatives.append(r"\s+".join(re.escape(word) for word in words))
    if not alternatives:
        return None
    # Longest first, so the reason names the most specific term.
    alternatives.sort(key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def request_text(request: JobRequest) -> str:
    """What a person wrote in the request: the topic, and the tone and audience they may have typed."""
    return "\n".join((request.topic, request.tone, request.audience))


class Moderator:
    """The moderation of one gateway."""

    def __init__(self, settings: GatewaySettings, **openai: Any) -> None:
        """`openai` goes to AsyncOpenAI (e.g. http_client=)."""
        self.settings = settings
        terms = list(self.settings.blocked_terms)
        if self.settings.blocklist_defaults:
            terms += DEFAULT_BLOCKLIST
        self._blocklist = compile_blocklist(terms)
        self._openai: AsyncOpenAI | None = None
        key = self.settings.openai_api_key
        if self.settings.moderation == ModerationMode.openai:
            if key is None or not key.get_secret_value():
                log.warning("PRESSROOM_GATEWAY_MODERATION=openai without OPENAI_API_KEY: blocklist only")
            else:
                self._openai = AsyncOpenAI(
                    api_key=key.get_secret_value(),
                    base_url=self.settings.openai_base_url,
                    timeout=self.settings.moderation_timeout,
                    max_retries=1,
                    **openai,
                )

    @property
    def uses_openai(self) -> bool:
        return self._openai is not None

    async def check(self, request: JobRequest) -> None:
        """Returns when the request may run; raises TopicRefused naming why not."""
        text = request_text(request)
        if self._blocklist is not None:
            match = self._blocklist.search(text)
            if match:
                raise TopicRefused(
                    f"the request contains a blocked term: {' '.join(match.group().split())!r}"
                )
        if self._openai is not None:
            await self._check_openai(text)

    async def _check_openai(self, text: str) -> None:
        assert self._openai is not None
        try:
            response = await self._openai.moderations.create(model=self.settings.moderation_model, input=text)
        except APIError as exc:
            log.warning("moderation endpoint failed; allowing the request", error=str(exc))
            return
        flagged = [result for result in response.results if result.flagged]
        if not flagged:
            return
        categories = sorted(
            {
                name.replace("_", " ")
                for result in flagged
                for name, hit in result.categories.model_dump().items()
                if hit
            }
        )
        reason = ", ".join(categories) or "flagged"
        raise TopicRefused(f"the request was flagged by moderation: {reason}")
