"""Writes one blog post from research: an outline first (title, sections, the sources of each), then
the sections one by one, streamed to the watchers as they come, then checked before it is published
(pressroom_runtime.checks): Markdown only, links and citations research backs, copies quoted, and the
language asked for (written again once when it is not)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pressroom_contracts.events import (
    BlogCompleted,
    OutlineSection,
    PublishChecks,
    ResearchCompleted,
    TokenUsage,
)
from pressroom_contracts.voice import VoiceProfile
from pressroom_runtime.llm import TextModel, Usage, in_voice
from pressroom_runtime.seo import seo_pack
from pressroom_runtime.stage import StageContext
from pressroom_runtime.words import counted

from .drafting import draft
from .outline import Outline, parse
from .prompts import outline_prompt, section_prompt
from .writing import assemble, citations, publishable, section_body, word_count

MAX_LENGTH_FACTOR = 2
OUTLINE_TOKENS = 200
TOKENS_PER_WORD = 2  # a generous budget per word asked for, across languages


class Writer:
    def __init__(self, model: TextModel, max_tokens: int) -> None:
        self.model = model
        self.max_tokens = max_tokens

    async def write(
        self,
        research: ResearchCompleted,
        ctx: StageContext,
        version: int,
        regenerated: bool,
        voice: VoiceProfile | None = None,
    ) -> BlogCompleted:
        """`voice`: the client's brand voice, for every prompt."""
        request = research.request
        await ctx.ensure_active()
        await ctx.progress(f"Planning a {request.length} blog post with {self.model.model}")
        outline = await self.plan(research, ctx, f"blog:{version}:outline", voice)
        await ctx.progress(f"Outline: “{outline.title}”, {len(outline.sections)} sections")
        total = Usage(model=self.model.model)
        draft_ = await self.sections(research, outline, ctx, f"blog:{version}", total, voice)
        # The token cap bounds the cost; this bounds what a reader gets: at most twice the target length.
        most = MAX_LENGTH_FACTOR * request.target_words
        body, checks = publishable(draft_, research.sources, request.language, most)
        if checks.language_matches is False:
            # Once more, insisting on the language; after that the post is published marked as it is.
            await ctx.progress(
                f"The post came out in '{checks.detected_language}', not '{request.language}': writing it again"
            )
            draft_ = await self.sections(
                research, outline, ctx, f"blog:{version}:retry", total, voice, strict=True
            )
            body, checks = publishable(draft_, research.sources, request.language, most)
            checks.rewritten_for_language = True
        body, cited = citations(body, research.sources)
        count = word_count(body)
        await ctx.progress(
            f"Blog post written: {counted(count, 'word')}, {counted(len(cited), 'citation')}{_findings(checks)}"
        )
        return BlogCompleted(
            request=request,
            version=version,
            regenerated=regenerated,
            title=outline.title,
            markdown=assemble(outline.title, body, cited),
            word_count=count,
            citations=cited,
            outline=[OutlineSection(heading=s.heading, sources=list(s.sources)) for s in outline.sections],
            checks=checks,
            seo=seo_pack(
                topic=request.topic,
                title=outline.title,
                body=body,
                language=request.language,
                words=count,
                citations=cited,
            ),
            usage=TokenUsage(
                model=total.model, input_tokens=total.input_tokens, output_tokens=total.output_tokens
            ),
        )

    async def sections(
        self,
        research: ResearchCompleted,
        outline: Outline,
        ctx: StageContext,
        call: str,
        total: Usage,
        voice: VoiceProfile | None,
        strict: bool = False,
    ) -> str:
        """Writes the sections of `outline` one by one, streamed live from the title on; the body, to be
        checked (writing.publishable)."""
        request = research.request
        live = _Live(ctx)
        await live.add(f"# {outline.title}\n\n")
        words = max(40, request.target_words // len(outline.sections))
        budget = min(self.max_tokens, request.target_words * TOKENS_PER_WORD) // len(outline.sections)
        parts: list[str] = []
        for number, section in enumerate(outline.sections, 1):
            await ctx.ensure_active()
            await ctx.progress(f"Writing section {number} of {len(outline.sections)}: {section.heading}")
            await live.add(f"## {section.heading}\n\n")
            written = "\n\n".join(parts) + "\n\n" if parts else ""
            # Metered as it streams: a crash mid-section leaves what was written so far on the bill.
            async with ctx.meter(
                f"{call}:section{number}", provider="openai-compatible", model=self.model.model
            ) as meter:
                text, usage = await draft(
                    self.model,
                    in_voice(
                        section_prompt(research, outline, section, words, written, strict_language=strict),
                        voice,
                    ),
                    target_words=words,
                    max_tokens=max(64, budget),
                    on_piece=live.at(live.offset),
                    meter=meter,
                )
            total.input_tokens += usage.input_tokens
            total.output_tokens += usage.output_tokens
            live.offset = live.end
            await live.add("\n\n")
            parts.append(f"## {section.heading}\n\n{section_body(text, section.cut)}")
        return "\n\n".join(parts)

    async def plan(
        self, research: ResearchCompleted, ctx: StageContext, call: str, voice: VoiceProfile | None
    ) -> Outline:
        answer = await self.model.complete(
            in_voice(outline_prompt(research), voice), max_tokens=OUTLINE_TOKENS
        )
        await ctx.usage(
            call,
            provider="openai-compatible",
            model=answer.usage.model,
            input_tokens=answer.usage.input_tokens,
            output_tokens=answer.usage.output_tokens,
        )
        return parse(answer.text, research.request, len(research.sources))


def _findings(checks: PublishChecks) -> str:
    """What the checks changed, for the progress line."""
    found = [
        f"{len(checks.html_tags)} HTML tags converted" if checks.html_tags else "",
        f"{len(checks.removed_links)} links not from research removed" if checks.removed_links else "",
        f"{len(checks.removed_citations)} unsupported citations removed" if checks.removed_citations else "",
        f"{len(checks.copied_passages)} copied passages quoted" if checks.copied_passages else "",
        f"written in '{checks.detected_language}', not '{checks.language}'"
        if checks.language_matches is False
        else "",
    ]
    return "".join(f"; {f}" for f in found if f)


class _Live:
    """The live text of the post: every piece at its offset, as the watchers rebuild it."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.offset = 0  # where the next piece goes
        self.end = 0  # the end of the text sent so far

    async def add(self, text: str) -> None:
        await self.ctx.delta(self.offset, text)
        self.offset += len(text)
        self.end = self.offset

    def at(self, base: int) -> Callable[[int, str], Awaitable[None]]:
        """`on_piece` for a model's answer that starts at `base`."""

        async def piece(offset: int, text: str) -> None:
            await self.ctx.delta(base + offset, text)
            self.end = max(self.end, base + offset + len(text))

        return piece
