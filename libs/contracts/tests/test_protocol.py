import json

import pytest
from pydantic import ValidationError

from pressroom_contracts.protocol import (
    MAX_FRAME_BYTES,
    AcceptedFrame,
    CancelFrame,
    DeltaFrame,
    ErrorFrame,
    EventFrame,
    PingFrame,
    PongFrame,
    ProtocolError,
    ResyncFrame,
    StartFrame,
    SubscribeFrame,
    parse_client_frame,
    parse_server_frame,
)


def test_start_frame_parses_the_job_request():
    frame = parse_client_frame(
        json.dumps({"type": "start", "request": {"topic": "solar power"}, "ref": "c1"})
    )
    assert isinstance(frame, StartFrame)
    assert frame.request.topic == "solar power"
    assert frame.ref == "c1"


def test_subscribe_and_ping():
    assert parse_client_frame('{"type": "subscribe", "job_id": "abc", "after_seq": 41}') == SubscribeFrame(
        type="subscribe", job_id="abc", after_seq=41
    )
    assert isinstance(parse_client_frame('{"type": "ping"}'), PingFrame)


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        ("{not json", "invalid_json", "not valid JSON"),
        ("[1, 2]", "invalid_frame", "JSON object"),
        ('{"type": "dance"}', "unknown_type", "dance"),
        ('{"type": "subscribe", "job_id": ["ab"]}', "invalid_request", "job_id"),
        ('{"type": "subscribe", "job_id": "ab", "after_seq": -1}', "invalid_request", "after_seq"),
        (
            '{"type": "start", "request": {"topic": "ok topic", "platforms": ["linkedin", "x", "myspace"]}, "ref": "c9"}',
            "invalid_request",
            "platforms[2]",
        ),
        (
            '{"type": "start", "request": {"topic": "ok topic", "colour": 1}}',
            "invalid_request",
            "colour: unknown field",
        ),
        ('{"type": "ping", "extra": 1}', "invalid_request", "extra: unknown field"),
        ('{"type": "regenerate", "job_id": "ab", "stage": "poem"}', "invalid_request", "stage"),
    ],
)
def test_bad_frames_get_a_code_and_a_reason(raw, code, fragment):
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame(raw)
    assert caught.value.code == code
    assert fragment in caught.value.message


def test_error_keeps_the_ref_of_the_request_it_answers():
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame('{"type": "start", "request": {"topic": "x"}, "ref": "c7"}')
    assert caught.value.frame().ref == "c7"
    assert caught.value.frame().type == "error"


def test_oversized_frames_are_refused_before_parsing():
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame("x" * (MAX_FRAME_BYTES + 1))
    assert caught.value.code == "frame_too_large"
    with pytest.raises(ProtocolError, match="limited to 1024 bytes"):
        parse_client_frame('{"type": "ping", "ref": "' + "é" * 600 + '"}', max_bytes=1024)  # bytes, not chars


def test_a_malformed_job_id_is_left_to_the_gateway():
    """It names no job: the gateway answers `not_found`, as over REST (not a frame error)."""
    frame = parse_client_frame('{"type": "cancel", "job_id": "a.b"}')
    assert frame == CancelFrame(type="cancel", job_id="a.b")


def test_the_error_names_the_frame_type_when_known():
    """So the gateway can answer `unauthenticated` first for anything but an auth frame."""
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame('{"type": "auth"}')
    assert (caught.value.code, caught.value.kind) == ("invalid_request", "auth")
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame("{nope")
    assert caught.value.kind is None


@pytest.mark.parametrize(
    "frame",
    [
        AcceptedFrame(job_id="j1", ref="c1"),
        EventFrame(job_id="j1", seq=42, event={"type": "stage.progress"}),
        DeltaFrame(job_id="j1", stage="blog", offset=120, text="Sun"),
        ResyncFrame(job_id="j1", seq=50, state={"events": []}),
        ErrorFrame(code="not_found", message="no job j1", ref="s1"),
        PongFrame(ref="p1"),
    ],
)
def test_a_client_parses_every_server_frame_back_into_its_model(frame):
    assert parse_server_frame(frame.model_dump_json()) == frame


def test_an_unknown_server_frame_is_a_validation_error():
    with pytest.raises(ValidationError):
        parse_server_frame('{"type": "telepathy", "job_id": "j1"}')
