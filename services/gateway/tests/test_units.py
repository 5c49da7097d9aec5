"""Pure pieces of the gateway, without servers."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from pressroom_contracts.protocol import MAX_FRAME_BYTES
from pressroom_gateway.export import without_link
from pressroom_gateway.legacy import InvalidRequest, parse_request
from pressroom_gateway.outbox import Outbox
from pressroom_gateway.settings import GatewaySettings
from pressroom_gateway.ws import frame_size


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
    assert await outbox.put(1) and await outbox.put(2)

    # A reader that catches up within the grace period: no overflow.
    async def drain_soon() -> None:
        await asyncio.sleep(0.05)
        await outbox.get()

    drainer = asyncio.create_task(drain_soon())
    assert await outbox.put(3)
    await drainer
    assert not outbox.overflowed.is_set()

    # Nobody reads: overflow, and everything after it is dropped at once.
    assert not await outbox.put(4)
    assert outbox.overflowed.is_set()
    assert not await outbox.put(5)
    assert outbox.qsize() == 2


def test_legacy_request_becomes_a_default_job_request():
    request = parse_request('{"topic": "  Solar   power ", "research": true}', 1024)
    assert (request.topic, request.research, [str(p) for p in request.platforms]) == (
        "Solar power",
        True,
        ["linkedin", "x"],
    )
    with pytest.raises(InvalidRequest, match="limited to 16 bytes"):
        parse_request('{"topic": "a long enough topic"}', 16)


def test_exports_drop_a_link_placeholder_cleanly():
    assert without_link("Solar pays. {link} #Solar #Roofs") == "Solar pays. #Solar #Roofs"
    assert without_link("Line one\n\n{link}\n\n#Solar") == "Line one\n\n#Solar"
    assert without_link("No placeholder here.") == "No placeholder here."
