from __future__ import annotations

from pressroom_contracts.events import BlogCompleted
from pressroom_runtime.llm import Prompt


def image_prompt(blog: BlogCompleted) -> Prompt:
    excerpt = blog.markdown[:1500]
    return Prompt(
        system="You write prompts for an image generator. Answer with one vivid sentence, no quotes.",
        user=f"Describe an illustration for this blog post, without any text in the image.\n\n{excerpt}",
        document=(
            f"Blog post: {blog.title}\n\n{excerpt[:600]}\n\n"
            "Illustration idea (one sentence, no text in the image):"
        ),
        stop=("\n",),
    )
