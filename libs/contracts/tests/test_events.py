import json

import pytest
from pydantic import ValidationError

from pressroom_contracts import subjects
from pressroom_contracts.events import (
    EVENT_CLASSES,
    EVENT_TYPES,
    Producer,
    SocialCompleted,
    SocialCompletedEvent,
    StageProgress,
    StageProgressEvent,
    encode_event,
    parse_event,
)
from pressroom_contracts.ids import new_event_id
from pressroom_contracts.jobs import JobRequest, Platform

PRODUCER = Producer(service="social", replica="social-1")


def social(version: int = 1, platform: Platform = Platform.x) -> SocialCompletedEvent:
    return SocialCompletedEvent(
        job_id="job-1",
        producer=PRODUCER,
        data=SocialCompleted(platform=platform, version=version, text="hi", characters=2, limit=280),
    )


def test_round_trip_keeps_the_concrete_type():
    event = social()
    parsed = parse_event(encode_event(event))
    assert isinstance(parsed, SocialCompletedEvent)
    assert parsed == event


def test_every_event_type_is_registered_once():
    assert len(EVENT_TYPES) == len(EVENT_CLASSES)
    assert set(EVENT_TYPES) >= {"job.requested", "blog.completed", "job.completed", "usage.recorded"}


def test_dedup_key_is_deterministic_and_names_the_artifact():
    assert social().dedup_key() == social().dedup_key() == "job-1:social.completed:x:1"
    assert social(version=2).dedup_key() != social().dedup_key()
    assert social(platform=Platform.linkedin).dedup_key() != social().dedup_key()
    assert social().id != social().id  # the envelope id stays unique


def test_progress_dedup_key_distinguishes_attempts():
    make = lambda attempt: StageProgressEvent(  # noqa: E731
        job_id="j",
        producer=PRODUCER,
        attempt=attempt,
        data=StageProgress(stage="research", step=1, message="m"),
    )
    assert make(1).dedup_key() != make(2).dedup_key()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(type="blog.exploded"),
        lambda d: d.update(job_id="a.b"),
        lambda d: d["data"].update(platform="myspace"),
        lambda d: d.update(surprise=1),
        lambda d: d.pop("producer"),
    ],
)
def test_invalid_events_are_refused(mutate):
    raw = json.loads(encode_event(social()))
    mutate(raw)
    with pytest.raises(ValidationError):
        parse_event(json.dumps(raw))


def test_event_ids_sort_by_creation_time():
    ids = [new_event_id() for _ in range(50)]
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)


def test_subjects_are_built_and_parsed_in_one_place():
    assert subjects.content("j1", "blog.completed") == "content.j1.blog.completed"
    assert subjects.parse_content("content.j1.blog.completed") == ("j1", "blog.completed")
    assert subjects.parse_live(subjects.live("j1", "blog")) == ("j1", "blog")
    with pytest.raises(subjects.SubjectError):
        subjects.content("j.*", "blog.completed")
    with pytest.raises(subjects.SubjectError):
        subjects.parse_content("live.j1.blog.delta")


def test_job_request_defaults_and_trimming():
    request = JobRequest(topic="   the   future of  work  ")
    assert request.topic == "the future of work"
    assert request.platforms == [Platform.linkedin, Platform.x]
    assert request.target_words == 700


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"topic": "ab"}, "topic"),
        ({"topic": "x" * 501}, "topic"),
        ({"topic": "ok topic", "platforms": ["x", "x"]}, "platforms"),
        ({"topic": "ok topic", "platforms": []}, "platforms"),
        ({"topic": "ok topic", "language": "english please"}, "language"),
        ({"topic": "ok topic", "length": "epic"}, "length"),
        ({"topic": "ok topic", "sources": ["not a url"]}, "sources"),
        ({"topic": "ok topic", "colour": "red"}, "colour"),
    ],
)
def test_job_request_refuses_bad_values_naming_the_field(fields, where):
    with pytest.raises(ValidationError) as caught:
        JobRequest(**fields)
    assert caught.value.errors()[0]["loc"][0] == where
