"""research: job.requested → research.completed (sources and notes, or skipped with the reason)."""

from __future__ import annotations

from pressroom_contracts.events import JobRequestedEvent, ResearchCompleted, ResearchCompletedEvent
from pressroom_runtime.consumer import StageContext

from .sources import ResearchProvider


class Research:
    def __init__(self, provider: ResearchProvider, max_sources: int) -> None:
        self.provider = provider
        self.max_sources = max_sources

    async def on_job(self, event: JobRequestedEvent, ctx: StageContext) -> None:
        request = event.data.request
        if not request.research:
            await ctx.progress("Research is off for this job: writing from the topic alone")
            await ctx.emit(
                ResearchCompletedEvent,
                ResearchCompleted(
                    request=request, skipped=True, reason="research was turned off", provider="none"
                ),
            )
            return
        await ctx.progress(self.provider.describe(request.topic))
        sources = await self.provider.search(request.topic, self.max_sources)
        if self.provider.name != "knowledge-base":
            await ctx.usage(
                "research:1", provider=self.provider.name, model=f"{self.provider.name}-search", calls=1
            )
        if not sources:
            reason = f"{self.provider.name} found nothing relevant to the topic"
            await ctx.progress(
                f"No relevant sources found ({self.provider.name}): writing from the topic alone"
            )
            await ctx.emit(
                ResearchCompletedEvent,
                ResearchCompleted(request=request, skipped=True, reason=reason, provider=self.provider.name),
            )
            return
        titles = "; ".join(s.title for s in sources[:3])
        await ctx.progress(f"Found {len(sources)} sources: {titles}")
        await ctx.emit(
            ResearchCompletedEvent,
            ResearchCompleted(
                request=request,
                sources=sources,
                provider=self.provider.name,
                notes=f"{len(sources)} sources from {self.provider.name}",
            ),
        )
