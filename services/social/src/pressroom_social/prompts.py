from __future__ import annotations

from pressroom_contracts.events import BlogCompleted
from pressroom_contracts.jobs import Platform
from pressroom_runtime.llm import Prompt

from .platforms import LINK_PLACEHOLDER, RULES

_NAMES = {
    Platform.x: "X (Twitter)",
    Platform.linkedin: "LinkedIn",
    Platform.threads: "Threads",
    Platform.facebook: "Facebook",
    Platform.instagram: "Instagram",
}


def post_prompt(blog: BlogCompleted, platform: Platform) -> Prompt:
    rules = RULES[platform]
    name = _NAMES[platform]
    summary = blog.markdown[:3000]
    system = f"You write social media posts for {name}. Answer with the post text only."
    user = (
        f"Write a {name} post promoting this blog post. Style: {rules.style}. At most {rules.limit} characters, "
        f"{rules.hashtags} hashtags, and put {LINK_PLACEHOLDER} where the link goes. "
        f"Language: '{blog.request.language}'. Tone: {blog.request.tone}.\n\n{summary}"
    )
    excerpt = blog.markdown.split("\n\n", 2)[1] if "\n\n" in blog.markdown else blog.markdown
    document = (
        f"Blog post: {blog.title}\n\n{excerpt[:1200]}\n\nA short {name} post sharing this blog post:\n\n"
    )
    return Prompt(system=system, user=user, document=document, stop=("\n\n\n", "Blog post:"))
