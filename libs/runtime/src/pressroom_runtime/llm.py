"""One text-model client for every provider, through the `openai` SDK and a base URL.

Chat models (OpenAI, vLLM, Ollama) get system + user messages. Base models such as the embedded
Gemma 3 270M are driven through /v1/completions with a document-style prompt, because their chat
template produces nonsense. Model special tokens are stripped from everything returned.

A stream given a usage meter (usage.Meter) adds to it as text arrives — an estimate of 4 characters a
token, corrected to the provider's own count when the stream ends — so a call cut short is still
reported with what it cost so far.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx2
from openai import AsyncOpenAI, AsyncStream, DefaultAsyncHttpxClient

from pressroom_contracts.voice import VoiceProfile

from .settings import LLMProfile, LLMSettings
from .usage import Meter

CHARS_PER_TOKEN = 4  # the estimate while streaming, or for servers that do not report usage

# Gemma-style control tokens that base models sometimes print as text.
_SPECIAL_TOKENS = re.compile(
    r"<(?:start_of_image|end_of_image|start_of_turn|end_of_turn|bos|eos|pad|mask|image_soft_token"
    r"|unused\d+|\|[a-z_]+\|)>"
)


def strip_special_tokens(text: str) -> str:
    return _SPECIAL_TOKENS.sub("", text)


@dataclass(frozen=True)
class Prompt:
    """A request in both shapes: messages for chat models, a document opening for base models."""

    system: str
    user: str
    document: str
    stop: tuple[str, ...] = ()
    # A llama.cpp GBNF grammar the answer must follow, for base models (the completion profile): a
    # tiny model then still answers in the structure asked for. Chat models get it in words.
    grammar: str | None = None

    def continued(self, text: str) -> Prompt:
        """The same request with `text` already written (base models continue the document)."""
        return replace(self, document=self.document + text) if text else self


def in_voice(prompt: Prompt, voice: VoiceProfile | None) -> Prompt:
    """`prompt` asking for a client's brand voice: its description and words for chat models, and its
    example posts (a person's own edits among them, newest last) for every model — a base model
    follows the style of the document it continues."""
    if voice is None or voice.empty:
        return prompt
    rules = [
        f"Brand voice: {voice.description.strip()}" if voice.description.strip() else "",
        f"Use these words where they fit: {', '.join(voice.use_words)}." if voice.use_words else "",
        f"Never use these words: {', '.join(voice.avoid_words)}." if voice.avoid_words else "",
    ]
    guide = "\n".join(rule for rule in rules if rule)
    samples = [*voice.examples, *voice.edits][-4:]
    examples = "\n\n".join(f"---\n{sample.strip()[:1500]}" for sample in samples)
    shown = (
        f"Written in this voice before (follow the style, not the content):\n\n{examples}" if examples else ""
    )
    extra = "\n\n".join(part for part in (guide, shown) if part)
    return replace(
        prompt,
        system=f"{prompt.system}\n\n{guide}" if guide else prompt.system,
        user=f"{prompt.user}\n\n{extra}",
        document=f"{extra}\n\n---\n\n{prompt.document}",
    )


@dataclass
class Usage:
    model: str
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class Generation:
    text: str
    usage: Usage
    finish_reason: str | None = None


class TextStream:
    """Iterate it for text pieces; `usage` and `finish_reason` are filled in when it ends."""

    def __init__(self, model: TextModel, prompt: Prompt, max_tokens: int, meter: Meter | None = None) -> None:
        self._model = model
        self._prompt = prompt
        self._max_tokens = max_tokens
        self._meter = meter
        self.usage = Usage(model=model.model)
        self.finish_reason: str | None = None

    async def __aiter__(self) -> AsyncIterator[str]:
        settings = self._model.settings
        chat = settings.profile is LLMProfile.chat
        pieces = self._model._pieces(self)
        sent = self._prompt.system + self._prompt.user if chat else self._prompt.document
        metered = (0, 0)  # what the meter was told so far: input, output tokens
        if self._meter is not None:
            metered = (len(sent) // CHARS_PER_TOKEN, 0)
            self._meter.add(input_tokens=metered[0], calls=1)
        output = ""
        async for piece in pieces:
            clean = strip_special_tokens(piece)
            output += clean
            if self._meter is not None:
                estimate = len(output) // CHARS_PER_TOKEN
                self._meter.add(output_tokens=estimate - metered[1])
                metered = (metered[0], estimate)
            if clean:
                yield clean
        if not self.usage.output_tokens:  # servers that do not report usage: a rough estimate
            self.usage.output_tokens = max(1, len(output) // CHARS_PER_TOKEN)
        if not self.usage.input_tokens:
            self.usage.input_tokens = len(sent) // CHARS_PER_TOKEN
        if self._meter is not None:  # the provider's own count replaces the estimate
            self._meter.add(
                input_tokens=self.usage.input_tokens - metered[0],
                output_tokens=self.usage.output_tokens - metered[1],
            )


class StaleConnectionRetry(httpx2.AsyncBaseTransport):
    """Sends a request once more when the kept-alive connection it went out on was closed by the server
    before any answer.

    A server may close an idle connection whenever it likes — llama.cpp's right after every streamed
    answer, though it advertises keep-alive — and a request sent as the close crosses it meets "server
    disconnected" with nothing answered. The pool checks an idle connection before reusing it, but the
    close can arrive just after the check. Nothing was answered, so the request goes again at once, on
    another connection; every other failure is the stage runner's to retry (paced, checked against
    cancels).
    """

    def __init__(self, transport: httpx2.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await self._transport.handle_async_request(request)
        except (httpx2.RemoteProtocolError, httpx2.WriteError):  # before the response's head
            return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


# As many connections as the SDK allows, but few kept idle: the pool probes every idle connection before
# each request (1.85 ms of CPU a call with 50 idle, 1.27 with 8, same calls; bursts of 50 cost alike).
_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=16)


class TextModel:
    def __init__(self, settings: LLMSettings, client: AsyncOpenAI | None = None) -> None:
        self.settings = settings
        # No SDK retries: a retry is a redelivery, paced by the stage runner and checked against cancels.
        self.client = client or AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key.get_secret_value(),
            timeout=settings.timeout,
            max_retries=0,
            http_client=DefaultAsyncHttpxClient(
                transport=StaleConnectionRetry(httpx2.AsyncHTTPTransport(limits=_LIMITS))
            ),
        )

    @property
    def model(self) -> str:
        return self.settings.model

    async def aclose(self) -> None:
        """Closes the connections (a service's end closes them anyway: for a caller that goes on)."""
        await self.client.close()

    @property
    def continues_documents(self) -> bool:
        """Base models can be asked to go on where they stopped; chat models answer once."""
        return self.settings.profile is LLMProfile.completion

    def stream(self, prompt: Prompt, max_tokens: int, meter: Meter | None = None) -> TextStream:
        return TextStream(self, prompt, max_tokens, meter)

    async def complete(self, prompt: Prompt, max_tokens: int, meter: Meter | None = None) -> Generation:
        stream = self.stream(prompt, max_tokens, meter)
        text = "".join([piece async for piece in stream])
        return Generation(text=text, usage=stream.usage, finish_reason=stream.finish_reason)

    def _body(self, stream: TextStream) -> dict[str, Any]:
        """The request as the provider reads it: messages for chat models, the document for base models."""
        prompt, settings = stream._prompt, self.settings
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": stream._max_tokens,
            "temperature": settings.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if prompt.stop:
            body["stop"] = list(prompt.stop)
        if settings.profile is LLMProfile.chat:
            body["messages"] = [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ]
        else:
            body |= {"prompt": prompt.document, "repeat_penalty": settings.repeat_penalty}
            if prompt.grammar:
                body["grammar"] = prompt.grammar
        return body

    async def _pieces(self, stream: TextStream) -> AsyncIterator[str]:
        """The text of a streamed completion, through the SDK's plain request path: its connection, auth,
        timeouts, errors and event-stream parsing, without turning the request into typed parameters
        and every chunk into a model — that took 1.0 of a call's 2.5 ms of CPU."""
        chat = self.settings.profile is LLMProfile.chat
        chunks = await self.client.post(
            "/chat/completions" if chat else "/completions",
            cast_to=object,
            body=self._body(stream),
            stream=True,
            stream_cls=AsyncStream[object],  # chunks as parsed JSON: `object` skips the SDK's models
        )
        async for chunk in chunks:
            if not isinstance(chunk, dict):
                continue
            if usage := chunk.get("usage"):
                stream.usage.input_tokens = usage.get("prompt_tokens") or 0
                stream.usage.output_tokens = usage.get("completion_tokens") or 0
            for choice in chunk.get("choices") or ():
                stream.finish_reason = choice.get("finish_reason") or stream.finish_reason
                text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                if text:
                    yield text
