"""What research does for one job: the user's sources first and always kept, found sources fill the
rest up to `max_sources` when they are about the topic (relevance.py), or it says why there are none.

Every paid provider call is preceded by ensure_active() (no call after a cancel) and followed by a
usage.recorded.
"""

from __future__ import annotations

from pressroom_contracts.events import ResearchCompleted, Source
from pressroom_contracts.jobs import JobRequest
from pressroom_runtime.stage import StageContext
from pressroom_runtime.words import counted

from .relevance import near_duplicate, select
from .sources import ResearchProvider, same_location, unread_user_sources

# Candidates asked of a provider per place to fill: the relevance filters leave some out.
CANDIDATES = 3


def _same(found: Source, supplied: Source) -> bool:
    return same_location(found.location, supplied.location) or near_duplicate(found, supplied)


class Researcher:
    def __init__(self, provider: ResearchProvider, max_sources: int) -> None:
        self.provider = provider
        self.max_sources = max_sources

    async def research(self, request: JobRequest, ctx: StageContext) -> ResearchCompleted:
        urls = [str(url) for url in request.sources]
        if not request.research:
            return await self._research_off(request, ctx, urls)

        supplied: list[Source] = []
        if urls:
            await ctx.ensure_active()
            await ctx.progress(f"Reading the {counted(len(urls), 'source')} you supplied")
            supplied = await self.provider.include(urls)
            await self._usage(ctx, "include", self.provider.include_model)

        room = self.max_sources - len(supplied)
        found: list[Source] = []
        if room > 0:
            await ctx.ensure_active()
            await ctx.progress(self.provider.describe(request.topic))
            results = await self.provider.search(request.topic, self.max_sources * CANDIDATES)
            await self._usage(ctx, "search", self.provider.search_model)
            fresh = [s for s in results if not any(_same(s, u) for u in supplied)]
            selection = select(request.topic, fresh, room)
            found = selection.kept
            left_out = len(selection.off_topic) + len(selection.duplicates)
            if left_out:
                await ctx.progress(
                    f"Left out {counted(len(selection.off_topic), 'result')} not about the topic and "
                    f"{counted(len(selection.duplicates), 'near-duplicate')}"
                )

        provider = self.provider.name
        if not supplied and not found:
            await ctx.progress(f"No relevant sources found ({provider}): writing from the topic alone")
            return ResearchCompleted(
                request=request,
                skipped=True,
                reason=f"{provider} found nothing relevant to the topic",
                provider=provider,
            )

        notes = []
        if supplied:
            notes.append(f"{counted(len(supplied), 'source')} supplied by the user")
        if found:
            notes.append(f"{counted(len(found), 'source')} found by {provider} for “{request.topic}”")
        elif room > 0:
            notes.append(f"{provider} found nothing more relevant to the topic")
        else:
            notes.append(f"no search: the supplied sources fill all {self.max_sources} places")
        sources = supplied + found
        titles = "; ".join(s.title for s in sources[:3])
        await ctx.progress(f"Found {counted(len(sources), 'source')}: {titles}")
        return ResearchCompleted(request=request, sources=sources, provider=provider, notes="; ".join(notes))

    async def _research_off(
        self, request: JobRequest, ctx: StageContext, urls: list[str]
    ) -> ResearchCompleted:
        """No provider call at all; the user's own URLs are still passed on, unread."""
        reason = "research was turned off"
        sources = unread_user_sources(urls, "not read, as research was turned off")
        if sources:
            reason += f": only the {counted(len(sources), 'source')} you supplied, unread"
            await ctx.progress(
                f"Research is off for this job: writing from the topic and the "
                f"{counted(len(sources), 'source')} you supplied"
            )
        else:
            await ctx.progress("Research is off for this job: writing from the topic alone")
        return ResearchCompleted(
            request=request, sources=sources, skipped=True, reason=reason, provider="none"
        )

    async def _usage(self, ctx: StageContext, call: str, model: str | None) -> None:
        if model is None:  # a free, local call
            return
        # One record per paid call: a redelivery that calls again pays again, so it is counted again.
        await ctx.usage(f"{call}:{ctx.attempt}", provider=self.provider.name, model=model, calls=1)
