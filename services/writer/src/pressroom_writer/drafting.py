"""Streams the post from the model, piece by piece."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from pressroom_runtime.llm import Prompt, TextModel, Usage
from pressroom_runtime.usage import Meter

from .writing import word_count

_FINISHED = re.compile(r"(?:[.!?:\u2026\u3002\uff01\uff1f][\"'\u201d\u2019)\]*_]*|\n)\s*$")
_GOES_ON = re.compile(r"^[\s.,;:!?\u2026)\]}%\u3001\u3002\uff0c\uff01\uff1f\u201d\u2019]")

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
        if text and finished(text):  # the next round starts a paragraph, and the model sees it does
            await on_piece(len(text), "\n\n")
            text += "\n\n"
        stream = model.stream(
            prompt.continued(text), max_tokens=max_tokens - usage.output_tokens, meter=meter
        )
        goes_on = bool(text) and not text[-1].isspace()  # a round that stopped mid-sentence goes on with it
        async for piece in stream:
            if goes_on and piece:
                piece, goes_on = joined(piece), False
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


def finished(text: str) -> bool:
    """Whether `text` ends a sentence, a paragraph or an introduction ("…the benefits:")."""
    return bool(_FINISHED.search(text))


def joined(piece: str) -> str:
    """The first piece of a round that goes on with an unfinished sentence: after a space, unless it
    brings its own or starts with punctuation ("…source of" + "power", "…source of" + " power",
    "…of it" + ", then"). A round stopped by the model, not by the token cap, ends on a whole token, so a
    word is cut off far more rarely than a word would be glued to the one before it."""
    return piece if not piece or _GOES_ON.match(piece) else " " + piece
