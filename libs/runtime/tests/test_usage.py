"""Provider calls metered as they happen, against a real nats-server and the scripted OpenAI-compatible
server: running reports while a call streams, the provider's count at the end, the cost of a call cut
short kept, and a call paid again on another delivery counted again."""

from __future__ import annotations

import nats
import pytest

from pressroom_contracts.events import Producer, Stage, UsageRecordedEvent
from pressroom_devstack.provisioning import reset_nats
from pressroom_runtime.broker import Publisher, make_broker
from pressroom_runtime.consumer import StageContext
from pressroom_runtime.history import recorded
from pressroom_runtime.llm import Prompt

PRODUCER = Producer(service="writer", replica="t-1")
PROMPT = Prompt(system="You write.", user="Write a blog post.", document="A blog post:\n")


@pytest.fixture
async def context(nats_url, scripted_llm):
    reset_nats(nats_url)
    broker = make_broker(nats_url, "writer:test")
    await broker.start()
    nc = await nats.connect(nats_url)
    model = scripted_llm.text_model()

    def make(job_id: str, attempt: int = 1, run: int = 1, interval: float = 5.0) -> StageContext:
        return StageContext(
            Publisher(broker), PRODUCER, Stage.blog, job_id, None, attempt, run=run, usage_interval=interval
        )

    try:
        yield make, model, nc
    finally:
        await nc.close()
        await broker.stop()


async def reports(nc, job_id: str) -> list[UsageRecordedEvent]:
    return [e for e in await recorded(nc, job_id, "usage.recorded") if isinstance(e, UsageRecordedEvent)]


async def test_a_streaming_call_reports_as_it_goes_and_ends_with_the_providers_count(context, scripted_llm):
    make, model, nc = context
    scripted_llm.reply(" ".join(f"word{i}" for i in range(40)))
    delay, scripted_llm.chunk_delay = scripted_llm.chunk_delay, 0.1  # a few seconds of streaming
    try:
        ctx = make("metered-1", interval=0.3)
        async with ctx.meter("blog:1", provider="openai-compatible", model=model.model) as meter:
            text = "".join([piece async for piece in model.stream(PROMPT, 200, meter=meter)])
    finally:
        scripted_llm.chunk_delay = delay
    found = await reports(nc, "metered-1")
    assert len(found) >= 3, "reported while streaming, not only at the end"
    assert [e.data.report for e in found] == list(range(1, len(found) + 1))
    assert {e.data.call for e in found} == {"blog:1"}
    assert found[0].data.output_tokens < found[-2].data.output_tokens  # estimates grow as text arrives
    last = found[-1].data
    # The scripted server counts a word as a token: the last report carries its count, not the estimate.
    assert last.output_tokens == len(text.split()) == 40


async def test_a_call_cut_short_keeps_the_cost_of_what_was_streamed(context, scripted_llm):
    make, model, nc = context
    scripted_llm.reply(" ".join(f"word{i}" for i in range(40)))
    scripted_llm.cut(after_chunks=5)  # the provider (or our process) dies half way
    ctx = make("metered-2")
    with pytest.raises(Exception):  # noqa: B017 - whatever the SDK raises for a dropped stream
        async with ctx.meter("blog:1", provider="openai-compatible", model=model.model) as meter:
            async for _ in model.stream(PROMPT, 200, meter=meter):
                pass
    (report,) = await reports(nc, "metered-2")
    assert report.data.output_tokens > 0 and report.data.input_tokens > 0


async def test_each_payment_of_a_call_has_its_own_name(context):
    make, _, nc = context
    for attempt, run in ((1, 1), (2, 1), (2, 2)):
        await make("metered-3", attempt=attempt, run=run).usage("image:v1", "openai", "dall-e-3", images=1)
    # The first delivery's report published again (a redelivery that did not pay again) is one report.
    await make("metered-3").usage("image:v1", "openai", "dall-e-3", images=1)
    assert sorted(e.data.call for e in await reports(nc, "metered-3")) == [
        "image:v1", "image:v1#2.1", "image:v1#2.2",
    ]  # fmt: skip
