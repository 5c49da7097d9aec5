from __future__ import annotations

import re

from pressroom_runtime.checks import remove_links
from pressroom_runtime.llm import Prompt

MAX_IMAGE_PROMPT = 1000  # characters: a sentence or two is what image models do best with

# What a small model wraps its sentence in: list or heading markers, addresses (removed as the publish
# checks remove an invented link, also one broken up by spaces), credits and handles. The prompt is sent
# to an image API and is the picture's alt text in every export, so none of it belongs there.
_LEADING_MARKERS = re.compile(r"^(?:\s*(?:[#*>\-\u2022.]+|\d+[.)]))+\s*")
_CREDIT = re.compile(r"[,;:\s]*\b(?:photo|image|picture)\s+(?:credits?|source|by)\b.*$", re.IGNORECASE)
_HANDLE = re.compile(r"\s*(?:\bby\s+)?@\w+")
_MARKUP = re.compile(r"[#*_`\[\]{}<>|]+")
_EMPTIED = re.compile(r"\(\s*(?:(?:see|via|from|source|credit)\s*:?\s*)?\)", re.IGNORECASE)
_DANGLING = re.compile(r"[\s,;:(\-]+$|^[\s,;:)\-]+")


def image_prompt(title: str, markdown: str) -> Prompt:
    excerpt = markdown[:1500]
    return Prompt(
        system="You write prompts for an image generator. Answer with one vivid sentence, no quotes.",
        user=f"Describe an illustration for this blog post, without any text in the image.\n\n{excerpt}",
        document=(
            f"Blog post: {title}\n\n{excerpt[:600]}\n\nIllustration idea (one sentence, no text in the image):"
        ),
        stop=("\n",),
    )


def tidy_prompt(answer: str) -> str:
    """The picture the model described, without what it wrapped it in; may be empty."""
    text = " ".join(answer.split()).strip("\"' ")
    text = _LEADING_MARKERS.sub("", text)
    text, _ = remove_links(text, allowed=[])
    text = _CREDIT.sub("", text)
    text = _EMPTIED.sub(" ", _MARKUP.sub(" ", _HANDLE.sub("", text)))
    if text.count("(") != text.count(")"):  # an aside cut off or left over: its brackets go
        text = text.replace("(", " ").replace(")", " ")
    text = _DANGLING.sub("", " ".join(text.split()))
    return re.sub(r"\s+([,.;:!?])", r"\1", text)


def final_prompt(answer: str, title: str, instructions: str | None = None) -> str:
    """The model's sentence, tidied (or a plain fallback), with the user's instructions appended."""
    prompt = tidy_prompt(answer)[:MAX_IMAGE_PROMPT]
    if sum(char.isalpha() for char in prompt) < 3:
        prompt = f"An illustration for {title}"
    extra = " ".join((instructions or "").split())
    return f"{prompt} {extra}" if extra else prompt
