"""Prompts in both shapes (chat messages, and a document opening for base models)."""

from __future__ import annotations

from dataclasses import dataclass

from pressroom_contracts.events import BlogCompleted, BlogEdited
from pressroom_contracts.jobs import JobRequest, Platform
from pressroom_contracts.platforms import LINK_PLACEHOLDER
from pressroom_contracts.voice import VoiceProfile
from pressroom_runtime.llm import Prompt

from .platforms import RULES
from .thread import MAX_PARTS

_NAMES = {Platform.x: "X (Twitter)"}


def _name(platform: Platform) -> str:
    return _NAMES.get(platform, RULES[platform].name)


@dataclass(frozen=True)
class Blog:
    """The blog version posts are written from: the latest one, edited by a person or not."""

    request: JobRequest
    version: int
    title: str
    markdown: str
    voice: VoiceProfile | None = None  # the owner's brand voice
    link: str | None = None  # the post's public address: replaces {link} when there is one

    @classmethod
    def of(
        cls,
        request: JobRequest,
        data: BlogCompleted | BlogEdited,
        voice: VoiceProfile | None = None,
        link: str | None = None,
    ) -> Blog:
        return cls(request, data.version, data.title, data.markdown, voice, link)

    @property
    def excerpt(self) -> str:
        """The opening paragraph after the title."""
        paragraphs = [p for p in self.markdown.split("\n\n") if p.strip() and not p.startswith("#")]
        return paragraphs[0] if paragraphs else self.markdown


def _asks(instructions: str | None) -> str:
    return f"\n\nThe editor asks for this: {instructions.strip()}" if instructions else ""


def post_prompt(blog: Blog, platform: Platform, instructions: str | None = None) -> Prompt:
    rules = RULES[platform]
    name = _name(platform)
    request = blog.request
    system = (
        f"You write social media posts for {name}. Answer with the post text only: no preamble, "
        "no quotes, no markdown, no links other than the placeholder."
    )
    user = (
        f"Write a {name} post promoting this blog post. Style: {rules.style}. "
        f"Aim for about {rules.target} characters, never more than {rules.limit}; "
        f"{rules.hashtags} hashtags; put {LINK_PLACEHOLDER} where the link goes. "
        f"Language: '{request.language}'. Tone: {request.tone}. Audience: {request.audience}."
        f"{_asks(instructions)}\n\n# {blog.title}\n\n{blog.markdown[:3000]}"
    )
    note = f" ({instructions.strip()})" if instructions else ""
    document = (
        f"Blog post: {blog.title}\n\n{blog.excerpt[:1200]}\n\n"
        f"A short {name} post sharing this blog post{note}:\n\n"
    )
    return Prompt(system=system, user=user, document=document, stop=("\n\n\n", "Blog post:"))


def thread_prompt(blog: Blog, instructions: str | None = None) -> Prompt:
    request = blog.request
    room = RULES[Platform.x].limit - 20
    system = (
        "You write threads for X (Twitter). Answer with the posts only, separated by a blank line: "
        "no numbering, no preamble, no markdown, no links."
    )
    user = (
        f"Write an X thread, a post promoting this blog post told in 3 to {MAX_PARTS} short posts. "
        f"Each post at most {room} characters and worth reading on its own; the first one hooks the "
        f"reader. Language: '{request.language}'. Tone: {request.tone}. Audience: {request.audience}."
        f"{_asks(instructions)}\n\n# {blog.title}\n\n{blog.markdown[:3000]}"
    )
    document = (
        f"Blog post: {blog.title}\n\n{blog.excerpt[:1200]}\n\n"
        f"An X thread sharing this blog post, {MAX_PARTS} short posts separated by blank lines:\n\n"
    )
    return Prompt(system=system, user=user, document=document, stop=("\n\n\n\n", "Blog post:"))


def shorten_prompt(platform: Platform, text: str, characters: int) -> Prompt:
    """Ask for the same post in at most `characters` characters (not a new one)."""
    name = _name(platform)
    system = f"You edit {name} posts. Answer with the edited post only."
    user = (
        f"Shorten this {name} post to at most {characters} characters. Keep its language, meaning, "
        f"tone, hashtags and the {LINK_PLACEHOLDER} placeholder; add no links.\n\n{text}"
    )
    document = (
        f"A {name} post, long version:\n\n{text}\n\n"
        f"The same {name} post, shortened to at most {characters} characters:\n\n"
    )
    return Prompt(system=system, user=user, document=document, stop=("\n\n\n", "long version:"))


def shorten_thread_prompt(posts: list[str], characters: int) -> Prompt:
    joined = "\n\n".join(posts)
    system = "You edit X (Twitter) threads. Answer with the posts only, separated by a blank line."
    user = (
        f"Shorten this X thread to at most {MAX_PARTS} posts of at most {characters} characters each. "
        f"Keep its language, meaning and tone; no numbering, no links.\n\n{joined}"
    )
    document = (
        f"An X thread, long version:\n\n{joined}\n\n"
        f"The same thread in at most {MAX_PARTS} short posts, separated by blank lines:\n\n"
    )
    return Prompt(system=system, user=user, document=document, stop=("\n\n\n\n", "long version:"))
