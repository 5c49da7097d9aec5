"""The test kit's FakeStageContext behaves as the stream does where handlers rely on it."""

from __future__ import annotations

import pytest

from pressroom_contracts.events import ResearchCompletedEvent, Stage
from pressroom_contracts.jobs import JobRequest
from pressroom_runtime.errors import JobStopped
from pressroom_testkit import FakeStageContext, JobEvents


def job() -> JobEvents:
    return JobEvents.new(JobRequest(topic="Rooftop solar"))


async def test_it_records_in_order_and_drops_duplicates_as_the_stream_does():
    events = job()
    ctx = FakeStageContext.handling(events.requested(), Stage.research)
    await ctx.ensure_active()
    await ctx.progress("Searching")
    first = await ctx.emit(ResearchCompletedEvent, events.research().data)
    await ctx.usage("search:1", provider="tavily", model="tavily-search", calls=1)
    assert ctx.actions == ["ensure_active", "progress Searching", "emit research.completed", "usage search:1"]
    assert ctx.progress_messages == ["Searching"] and ctx.usage_calls == ["search:1"]
    assert ctx.data(ResearchCompletedEvent)[0].provider == "none"
    # The same input handled again: its result is found, republished and de-duplicated.
    assert ctx.cause is not None
    again = FakeStageContext.handling(ctx.cause, Stage.research, history=ctx.history, attempt=2)
    assert [e.id for e in await again.republish_handled(ResearchCompletedEvent)] == [
        e.id for e in ctx.emitted(ResearchCompletedEvent)
    ]
    assert await again.emit(ResearchCompletedEvent, events.research().data) == first  # same key: dropped
    assert len(await again.recorded(ResearchCompletedEvent)) == 1


async def test_a_stopped_job_stops_the_handler():
    events = job()
    ctx = FakeStageContext.handling(events.requested(), Stage.research, history=[events.job_failed()])
    with pytest.raises(JobStopped):
        await ctx.ensure_active()


async def test_the_live_text_is_rebuilt_at_its_offsets_and_may_start_over():
    ctx = FakeStageContext(job().job_id, Stage.blog)
    for offset, text in ((0, "# Title\n\n"), (9, "First draft"), (0, "# Title\n\n"), (9, "Second")):
        await ctx.delta(offset, text)
    assert ctx.streamed == "# Title\n\nSecond"
    await ctx.delta(99, "gap")
    with pytest.raises(AssertionError):
        _ = ctx.streamed
