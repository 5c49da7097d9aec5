from __future__ import annotations

from pressroom_runtime.llm import Prompt

MAX_IMAGE_PROMPT = 1000  # characters: a sentence or two is what image models do best with


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


def final_prompt(answer: str, title: str, instructions: str | None = None) -> str:
    """The model's sentence, tidied (or a plain fallback), with the user's instructions appended."""
    prompt = " ".join(answer.split()).strip("\"' ")[:MAX_IMAGE_PROMPT] or f"An illustration for {title}"
    extra = " ".join((instructions or "").split())
    return f"{prompt} {extra}" if extra else prompt
