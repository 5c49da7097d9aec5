"""What a person may ask: the free-text rules every transport applies (pressroom_contracts.jobs)."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.voice import ClientProfile, VoiceProfile


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        pytest.param("\u200b\u200b\u200b", "at least 3 visible characters", id="only zero-width spaces"),
        pytest.param("ab\u200b\u200b", "at least 3 visible characters", id="two letters padded"),
        pytest.param("Solar \u202eenilno", "U+202E", id="right-to-left override"),
        pytest.param("Solar \u2066power\u2069", "U+2066", id="bidi isolate"),
        pytest.param("solar\u0000power", "U+0000", id="NUL"),
    ],
)
def test_a_topic_a_person_cannot_read_is_refused(topic: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(reason)):
        JobRequest(topic=topic)


@pytest.mark.parametrize(
    ("topic", "kept"),
    [
        pytest.param("Rooftop\nsolar\tpanels", "Rooftop solar panels", id="whitespace folded"),
        pytest.param(
            "Family 👨\u200d👩\u200d👧 budgets", "Family 👨\u200d👩\u200d👧 budgets", id="emoji joiners"
        ),
        pytest.param("می\u200cخواهم انرژی", "می\u200cخواهم انرژی", id="Persian non-joiner"),  # noqa: RUF001
        pytest.param("太阳能", "太阳能", id="three CJK characters"),
    ],
)
def test_a_readable_topic_is_kept(topic: str, kept: str) -> None:
    assert JobRequest(topic=topic).topic == kept


def test_a_profile_takes_what_a_job_request_takes() -> None:
    """Its text goes into every prompt of the client's jobs."""
    for voice in (
        {"description": "Warm\u0000"},
        {"use_words": ["ok", "bell\u0007"]},
        {"examples": ["A post \u202eesrever"]},
    ):
        with pytest.raises(ValidationError, match="U\\+"):
            VoiceProfile.model_validate(voice)
    assert ClientProfile.model_validate(
        {"voice": {"description": "Warm and plain.\nShort."}}
    ).voice.description
