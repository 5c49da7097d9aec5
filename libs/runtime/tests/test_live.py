"""Live text from a stage (StageContext.delta): pieces that follow each other go out together, at most
LIVE_INTERVAL after the first, whole and in order, and before the event that follows them."""

from __future__ import annotations

import json

import nats
import pytest

from pressroom_contracts import subjects
from pressroom_contracts.events import Producer, Stage
from pressroom_contracts.ids import new_job_id
from pressroom_devstack.provisioning import reset_nats
from pressroom_runtime.broker import Publisher, make_broker
from pressroom_runtime.consumer import StageContext
from pressroom_testkit import eventually

PRODUCER = Producer(service="writer", replica="w-1")


@pytest.fixture
async def live(nats_url):
    """(a stage context for a new job, the messages of that job in the order they arrived)."""
    reset_nats(nats_url)
    broker = make_broker(nats_url, "writer:test")
    await broker.connect()
    nc = await nats.connect(nats_url)
    job_id = new_job_id()
    arrived: list[tuple[str, dict]] = []

    async def note(msg):
        arrived.append((msg.subject.split(".")[0], json.loads(msg.data)))

    await nc.subscribe(subjects.live_of_job(job_id), cb=note)
    await nc.subscribe(subjects.content_of_job(job_id), cb=note)
    await nc.flush()
    try:
        yield StageContext(Publisher(broker), PRODUCER, Stage.blog, job_id, None, 1), arrived
    finally:
        await nc.close()
        await broker.stop()


def arrival(arrived, count):
    return eventually(lambda: len(arrived) >= count, timeout=10, interval=0.01)


async def test_pieces_in_a_row_are_one_message_whole_and_before_the_next_event(live):
    ctx, arrived = live
    pieces = [f"word{n} " for n in range(200)]
    offset = 0
    for piece in pieces:
        await ctx.delta(offset, piece)
        offset += len(piece)
    await ctx.progress("written")
    await arrival(arrived, 2)
    deltas = [data for kind, data in arrived if kind == subjects.LIVE_PREFIX]
    assert 1 <= len(deltas) < 20, f"{len(deltas)} messages for 200 pieces"
    assert deltas[0]["offset"] == 0
    assert "".join(d["text"] for d in deltas) == "".join(pieces)
    assert [d["offset"] for d in deltas] == [
        sum(len(d["text"]) for d in deltas[:i]) for i in range(len(deltas))
    ]
    assert arrived[-1][0] == subjects.CONTENT_PREFIX  # the event came after all of the text


async def test_a_held_piece_goes_out_by_itself_when_nothing_follows(live):
    ctx, arrived = live
    await ctx.delta(0, "alone")
    await arrival(arrived, 1)  # no further piece, no event, no flush: the interval sent it
    assert arrived == [(subjects.LIVE_PREFIX, {"offset": 0, "text": "alone"})]


async def test_a_rewrite_sends_what_was_held_first(live):
    ctx, arrived = live
    await ctx.delta(0, "abc")
    await ctx.delta(3, "def")
    await ctx.delta(0, "XYZ")  # the model started again from the top
    await arrival(arrived, 2)
    assert [data for _, data in arrived] == [{"offset": 0, "text": "abcdef"}, {"offset": 0, "text": "XYZ"}]


async def test_a_failed_try_sends_nothing_it_held(live):
    ctx, arrived = live
    await ctx.delta(0, "half a thought")
    ctx.drop_live()
    await ctx.progress("next try")  # a later event passes; the dropped text never does
    await arrival(arrived, 1)
    assert [kind for kind, _ in arrived] == [subjects.CONTENT_PREFIX]
