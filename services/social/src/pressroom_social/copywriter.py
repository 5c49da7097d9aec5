"""Writes one platform's post (or an X thread) from a blog post, within the platform's limit, checked
before it is published: HTML converted, links removed (a post links to the blog, as {link}), its
language identified.

A model answer over the room a post has is sent back once to be shortened, then checked again and
cut as a last resort; nothing is published over its platform's limit (PostOverLimit otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pressroom_contracts.events import PublishChecks, SocialCompleted
from pressroom_contracts.jobs import Platform
from pressroom_contracts.platforms import LINK_PLACEHOLDER, count
from pressroom_runtime.checks import language_report, remove_links, to_markdown
from pressroom_runtime.llm import Prompt, TextModel, in_voice
from pressroom_runtime.stage import StageContext

from .platforms import RULES, ensure_within
from .posts import complete_sentences, prepare, suffix_for, usable
from .prompts import Blog, post_prompt, shorten_prompt, shorten_thread_prompt, thread_prompt
from .thread import MAX_PARTS, Thread, layout, split_posts

# Models overshoot a length they are given: ask for a little less than the room.
SHORTEN_MARGIN = 0.9


def social_completed(
    platform: Platform,
    version: int,
    text: str,
    parts: list[str] | None = None,
    checks: PublishChecks | None = None,
) -> SocialCompleted:
    """The event payload, checked: every post (each part of a thread) within the platform's limit."""
    lengths = [ensure_within(platform, part) for part in parts or [text]]
    return SocialCompleted(
        platform=platform,
        version=version,
        text=text,
        parts=parts or [],
        characters=max(lengths),
        limit=RULES[platform].limit,
        checks=checks,
    )


def with_link(platform: Platform, text: str, link: str | None) -> str:
    """The {link} placeholder replaced by the post's public address, when there is one and it fits (on
    X any link weighs 23; elsewhere the placeholder kept room for an address of up to 100 characters)."""
    if not link or LINK_PLACEHOLDER not in text:
        return text
    filled = text.replace(LINK_PLACEHOLDER, link)
    return filled if count(platform, filled) <= RULES[platform].limit else text


@dataclass
class Findings:
    """What the checks before publishing found in a post's model answers (its shortening included)."""

    html_tags: list[str] = field(default_factory=list)
    removed_links: list[str] = field(default_factory=list)

    def clean(self, answer: str) -> str:
        """The answer as Markdown-free of HTML and without links: a post links to the blog only ({link})."""
        text, tags = to_markdown(answer)
        text, links = remove_links(text, [])
        self.html_tags += [t for t in tags if t not in self.html_tags]
        self.removed_links += links
        return text

    def report(self, text: str, language: str) -> PublishChecks:
        return PublishChecks(
            html_tags=self.html_tags, removed_links=self.removed_links, **language_report(text, language)
        )


def ask_for(platform: Platform, text: str, room: int) -> int:
    """The plain character count to ask a model for so `text` weighs at most `room` (X weighs CJK 2)."""
    weight = count(platform, text)
    ratio = len(text) / weight if weight else 1.0
    return max(20, int(room * SHORTEN_MARGIN * min(1.0, ratio)))


class Copywriter:
    def __init__(self, model: TextModel, max_tokens: int, thread_max_tokens: int = 900) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.thread_max_tokens = thread_max_tokens

    def tokens(self, platform: Platform) -> int:
        """A post's token cap: what its good length needs (a token is about four characters), with room
        to spare, and never more than max_tokens. A small model otherwise rambles on to the cap."""
        return min(self.max_tokens, max(64, RULES[platform].target // 2))

    async def write(
        self, ctx: StageContext, blog: Blog, platform: Platform, version: int, instructions: str | None = None
    ) -> SocialCompleted:
        await ctx.ensure_active()  # before saying it is writing; generate() checks before each call
        if platform is Platform.x and blog.request.x_thread:
            return await self.write_thread(ctx, blog, version, instructions)
        name = RULES[platform].name
        call = f"social:{platform}:{version}"
        await ctx.progress(f"Writing the {name} post")
        found = Findings()
        answer = await self.generate(
            ctx,
            in_voice(post_prompt(blog, platform, instructions), blog.voice),
            call,
            self.tokens(platform),
            found,
        )
        draft = prepare(platform, answer, blog.request.topic)
        if draft.over:
            characters = ask_for(platform, draft.body, draft.room)
            await ctx.progress(f"Shortening the {name} post to {characters} characters")
            prompt = shorten_prompt(platform, draft.body, characters)
            shorter = await self.generate(ctx, prompt, f"{call}:shorten", self.tokens(platform), found)
            draft = prepare(platform, shorter, blog.request.topic)
        if not usable(draft.body):  # a model that said nothing: the post still says what it links to
            await ctx.progress(f"The {name} post came back empty: it shares the blog post's title")
            draft = prepare(platform, blog.title, blog.request.topic)
        text = with_link(platform, draft.fitted().text, blog.link)
        return social_completed(platform, version, text, checks=found.report(text, blog.request.language))

    async def write_thread(
        self, ctx: StageContext, blog: Blog, version: int, instructions: str | None
    ) -> SocialCompleted:
        call = f"social:x:{version}"
        await ctx.progress("Writing the X thread")
        found = Findings()
        answer = await self.generate(
            ctx, in_voice(thread_prompt(blog, instructions), blog.voice), call, self.thread_max_tokens, found
        )
        thread = self._thread(answer, blog)
        if not thread.complete:
            posts = split_posts(answer)
            characters = ask_for(Platform.x, " ".join(posts), RULES[Platform.x].limit - 10)
            await ctx.progress(f"Shortening the X thread to {MAX_PARTS} posts")
            prompt = shorten_thread_prompt(posts, characters)
            thread = self._thread(
                await self.generate(ctx, prompt, f"{call}:shorten", self.thread_max_tokens, found), blog
            )
        await ctx.progress(f"X thread of {len(thread.parts)} posts")
        parts = [with_link(Platform.x, part, blog.link) for part in thread.parts]
        text = "\n\n".join(parts)
        return social_completed(Platform.x, version, text, parts, found.report(text, blog.request.language))

    @staticmethod
    def _thread(answer: str, blog: Blog) -> Thread:
        posts = split_posts(answer)
        return layout(posts, suffix_for(Platform.x, " ".join(posts), blog.request.topic))

    async def generate(
        self, ctx: StageContext, prompt: Prompt, call: str, max_tokens: int, found: Findings
    ) -> str:
        """One model call: only while the job is active, its usage recorded."""
        await ctx.ensure_active()
        answer = await self.model.complete(prompt, max_tokens=max_tokens)
        await ctx.usage(
            call,
            provider="openai-compatible",
            model=answer.usage.model,
            input_tokens=answer.usage.input_tokens,
            output_tokens=answer.usage.output_tokens,
        )
        text = complete_sentences(answer.text) if answer.finish_reason == "length" else answer.text
        return found.clean(text)
