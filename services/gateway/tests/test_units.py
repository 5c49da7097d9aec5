"""Pure pieces of the gateway, without servers."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from pressroom_contracts.protocol import MAX_FRAME_BYTES, ProtocolError, frame_size
from pressroom_contracts.queries import JobReply
from pressroom_gateway.export import alt_text, front_matter, without_link
from pressroom_gateway.legacy import parse_request
from pressroom_gateway.outbox import Outbox
from pressroom_gateway.profiles import shows_a_voice
from pressroom_gateway.settings import GatewaySettings


def test_settings_read_their_prefix_and_the_shared_names(monkeypatch):
    monkeypatch.setenv("NATS_URL", "nats://bus:4222")
    monkeypatch.setenv("PRESSROOM_GATEWAY_PORT", "9000")
    monkeypatch.setenv("PRESSROOM_GATEWAY_SEND_QUEUE", "32")
    settings = GatewaySettings()
    assert (settings.nats_url, settings.host, settings.port, settings.send_queue) == (
        "nats://bus:4222",
        "127.0.0.1",
        9000,
        32,
    )
    assert settings.max_frame_bytes == MAX_FRAME_BYTES
    assert settings.ws_hard_limit > settings.max_frame_bytes


def test_max_frame_bytes_cannot_exceed_what_the_protocol_parses():
    with pytest.raises(ValidationError):
        GatewaySettings(max_frame_bytes=MAX_FRAME_BYTES + 1)


def test_frame_size_counts_bytes():
    assert frame_size("abc") == 3
    assert frame_size("é") == 2
    assert frame_size(b"\x00\x01") == 2


async def test_outbox_overflows_only_when_it_stays_full():
    outbox: Outbox[int] = Outbox(2, grace=0.2)
    assert outbox.offer(1) and outbox.offer(2)
    # Full, but only just: held for the grace period.
    assert outbox.offer(3)
    assert await outbox.get() == 1 and await outbox.get() == 2  # a reader that catches up in time
    assert not outbox.overflowed.is_set()

    # Full for longer than the grace period: overflow, and everything after it is dropped at once.
    assert outbox.offer(4) and outbox.offer(5)
    await asyncio.sleep(0.25)
    assert not outbox.offer(6)
    assert outbox.overflowed.is_set()
    assert not outbox.offer(7)
    assert outbox.qsize() == 3  # 3, 4, 5


async def test_outbox_overflows_at_twice_its_size_at_once():
    outbox: Outbox[int] = Outbox(2, grace=60)
    assert all(outbox.offer(i) for i in range(4))
    assert not outbox.offer(4)
    assert outbox.overflowed.is_set()


async def test_outbox_take_waits_for_a_burst_and_hands_it_over_whole():
    outbox: Outbox[int] = Outbox(4, grace=60)
    reader = asyncio.create_task(outbox.take())
    await asyncio.sleep(0)
    assert not reader.done()  # nothing queued: it waits
    assert outbox.offer(1) and outbox.offer(2)
    assert await reader == [1, 2]
    assert outbox.qsize() == 0
    # A reader cancelled while waiting leaves the outbox usable.
    waiting = asyncio.create_task(outbox.get())
    await asyncio.sleep(0)
    waiting.cancel()
    assert outbox.offer(3)
    assert await outbox.get() == 3


def test_legacy_request_becomes_a_default_job_request():
    request = parse_request('{"topic": "  Solar   power ", "research": true}', 1024)
    assert (request.topic, request.research, [str(p) for p in request.platforms]) == (
        "Solar power",
        True,
        ["linkedin", "x"],
    )
    with pytest.raises(ProtocolError, match="limited to 16 bytes") as caught:
        parse_request('{"topic": "a long enough topic"}', 16)
    assert caught.value.code == "frame_too_large"  # the code /v1/ws answers


def test_exports_drop_a_link_placeholder_cleanly():
    assert without_link("Solar pays. {link} #Solar #Roofs") == "Solar pays. #Solar #Roofs"
    assert without_link("Line one\n\n{link}\n\n#Solar") == "Line one\n\n#Solar"
    assert without_link("No placeholder here.") == "No placeholder here."


def _reply(language: str, checks: dict[str, object] | None) -> JobReply:
    now = "2026-11-30T10:00:00Z"
    return JobReply.model_validate(
        {
            "job": {
                "id": "j1", "status": "completed", "owner": "me", "topic": "Wärmepumpen im Altbau",
                "title": "Heat pumps", "created_at": now, "updated_at": now, "completed_at": now,
                "failure": None, "cost_usd": 0.0, "request": {"topic": "Wärmepumpen im Altbau", "language": language},
            },
            "research": None,
            "blog": {
                "version": 1, "title": "Heat pumps", "markdown": "# Heat pumps\n\nThey work in old walls.",
                "word_count": 7, "citations": [], "model": "m", "input_tokens": 1, "output_tokens": 1,
                "created_at": now, "checks": checks,
            },
            "social": {},
            "images": None,
            "usage_total": {"calls": 0, "input_tokens": 0, "output_tokens": 0, "images": 0, "cost_usd": 0.0},
        }
    )  # fmt: skip


def test_the_front_matter_says_the_language_the_post_is_in():
    """A post the checks found written in another language than asked is exported as what it is."""
    mismatch = {"language": "de", "detected_language": "en", "language_matches": False}
    assert "lang: en\n" in front_matter(_reply("de", mismatch), None)
    assert "lang: de\n" in front_matter(
        _reply("de", {**mismatch, "detected_language": "de", "language_matches": True}), None
    )
    assert "lang: de\n" in front_matter(_reply("de", None), None)  # an edit, or stored before the checks


def test_alt_text_is_cut_at_a_word():
    """A make up job's export ended its alt text "… by using a more e": cut at 200 characters."""
    prompt = "Solar panels on a roof [at dusk]. " + "A long description of the light " * 10
    alt = alt_text(prompt)
    assert len(alt) <= 200 and alt.endswith(("…", ".")) and "[" not in alt
    assert not alt.rstrip("…").endswith(" ")
    assert alt_text("A calm sea.") == "A calm sea."


@pytest.mark.parametrize(
    ("edit", "kept"),
    [
        pytest.param("# Our roof\n\nWe did it our way, with the neighbours.", True, id="a post"),
        pytest.param("太阳能电池板安装在屋顶上，为家庭提供清洁能源。", True, id="Chinese, no spaces"),  # noqa: RUF001
        pytest.param("a" * 280, False, id="one letter 280 times"),
        pytest.param("👍🏽" * 20, False, id="a row of emoji"),
        pytest.param("# New title\n\nhello", False, id="a test edit"),
        pytest.param("bla bla bla bla bla bla bla", False, id="one word repeated"),
    ],
)
def test_an_edit_joins_the_voice_only_when_it_shows_one(edit: str, kept: bool) -> None:
    """Every later job of the client is written after its edits: a hostile pass saw "aaaa…", emoji and
    "# New title" steer the next outline."""
    assert shows_a_voice(edit) is kept
