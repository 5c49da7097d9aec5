"""Streams the post from the model, piece by piece."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pressroom_runtime.llm import Prompt, TextModel, Usage
from pressroom_runtime.usage import Meter

from .writing import word_count

MAX_ROUNDS = 3
ENOUGH = 0.6  # of the target word count: below it, a base model that stopped is asked to go on


async def draft(
    model: TextModel,
    prompt: Prompt,
    *,
    target_words: int,
    max_tokens: int,
    on_piece: Callable[[int, str], Awaitable[None]],
    meter: Meter | None = None,
) -> tuple[str, Usage]:
    """Returns the text and the summed usage; `on_piece(offset, text)` sees every piece as it comes.

    Small base models sometimes end a document after a sentence; they are asked to continue it, at most
    MAX_ROUNDS times in all and never past `max_tokens`.
    """
    text = ""
    usage = Usage(model=model.model)
    for _ in range(MAX_ROUNDS):
        if text:
            text += "\n\n"
            await on_piece(len(text) - 2, "\n\n")
        stream = model.stream(
            prompt.continued(text), max_tokens=max_tokens - usage.output_tokens, meter=meter
        )
        async for piece in stream:
            await on_piece(len(text), piece)
            text += piece
        usage.input_tokens += stream.usage.input_tokens
        usage.output_tokens += stream.usage.output_tokens
        done = (
            not model.continues_documents
            or stream.finish_reason != "stop"
            or word_count(text) >= target_words * ENOUGH
            or usage.output_tokens >= max_tokens
        )
        if done:
            break
    return text.strip(), usage
