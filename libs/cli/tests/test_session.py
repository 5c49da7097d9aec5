"""The WebSocket session's decisions, fed with frames built from the contracts: what reaches the watcher,
what is dropped as already seen, and which refusals end the command with which error."""

from __future__ import annotations

import pytest

from pressroom_cli.errors import AuthRefused, ClientError, ExitCode, Unreachable
from pressroom_cli.live import START_REF, SUBSCRIBE_REF, Session
from pressroom_contracts.events import Event
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.protocol import (
    AcceptedFrame,
    DeltaFrame,
    ErrorFrame,
    EventFrame,
    PongFrame,
    ResyncFrame,
    StartFrame,
    SubscribeFrame,
    parse_server_frame,
)
from pressroom_testkit import JobEvents

REQUEST = JobRequest(topic="Rooftop solar panels")


class Recorder:
    def __init__(self) -> None:
        self.accepted_ids: list[str] = []
        self.events: list[Event] = []
        self.deltas: list[DeltaFrame] = []
        self.notices: list[str] = []

    def accepted(self, job_id: str) -> None:
        self.accepted_ids.append(job_id)

    def event(self, event: Event) -> None:
        self.events.append(event)

    def delta(self, frame: DeltaFrame) -> None:
        self.deltas.append(frame)

    def notice(self, message: str) -> None:
        self.notices.append(message)


@pytest.fixture
def job() -> JobEvents:
    return JobEvents.new(REQUEST)


@pytest.fixture
def watcher() -> Recorder:
    return Recorder()


def started(watcher: Recorder, job: JobEvents) -> Session:
    session = Session("http://gw", watcher, REQUEST, None)
    session.handle(AcceptedFrame(job_id=job.job_id, ref=START_REF))
    return session


def event_frame(job: JobEvents, seq: int, event) -> EventFrame:
    return EventFrame(job_id=job.job_id, seq=seq, event=event.model_dump(mode="json"))


def test_a_new_session_starts_the_job_and_a_resumed_one_subscribes_after_its_position(watcher, job):
    session = Session("http://gw", watcher, REQUEST, None)
    opening = session.opening()
    assert isinstance(opening, StartFrame) and opening.request == REQUEST and opening.ref == START_REF

    session.handle(AcceptedFrame(job_id=job.job_id, ref=START_REF))
    session.handle(event_frame(job, 7, job.research()))
    opening = session.opening()
    assert isinstance(opening, SubscribeFrame)
    assert (opening.job_id, opening.after_seq, opening.ref) == (job.job_id, 7, SUBSCRIBE_REF)
    assert watcher.accepted_ids == [job.job_id]


def test_events_are_typed_handed_on_once_and_the_terminal_one_ends_the_session(watcher, job):
    session = started(watcher, job)
    research, completed = job.research(), job.job_completed()
    assert session.handle(event_frame(job, 3, research)) is None
    assert session.handle(event_frame(job, 3, research)) is None  # replayed after a reconnect: dropped
    end = session.handle(event_frame(job, 9, completed))
    assert end is not None and end.type == "job.completed"
    assert [e.type for e in watcher.events] == ["research.completed", "job.completed"]
    assert watcher.events[0].id == research.id


def test_frames_of_other_jobs_are_ignored(watcher, job):
    session = started(watcher, job)
    other = JobEvents.new(REQUEST)
    session.handle(event_frame(other, 4, other.research()))
    session.handle(DeltaFrame(job_id=other.job_id, stage="blog", offset=0, text="not ours"))
    assert watcher.events == [] and watcher.deltas == [] and session.seq == 0


def test_a_resync_hands_on_what_was_not_seen_and_moves_the_position(watcher, job):
    session = started(watcher, job)
    research, blog = job.research(), job.blog()
    session.handle(event_frame(job, 5, research))
    snapshot = [research.model_dump(mode="json"), blog.model_dump(mode="json")]
    assert session.handle(ResyncFrame(job_id=job.job_id, seq=20, state={"events": snapshot})) is None
    assert [e.id for e in watcher.events] == [research.id, blog.id]
    assert session.seq == 20


def test_an_event_this_client_does_not_know_is_skipped_with_one_notice(watcher, job):
    session = started(watcher, job)
    future = {**job.research().model_dump(mode="json"), "type": "summary.completed"}
    session.handle(EventFrame(job_id=job.job_id, seq=4, event=future))
    session.handle(EventFrame(job_id=job.job_id, seq=5, event={**future, "id": "another"}))
    assert watcher.events == [] and session.seq == 5
    assert watcher.notices == ["ignored an event this client does not understand (summary.completed)"]


def test_deltas_and_pongs(watcher, job):
    session = started(watcher, job)
    session.handle(DeltaFrame(job_id=job.job_id, stage="blog", offset=0, text="Solar "))
    session.handle(PongFrame())
    assert [d.text for d in watcher.deltas] == ["Solar "]


@pytest.mark.parametrize(
    ("frame", "error", "words"),
    [
        (
            ErrorFrame(code="unauthenticated", message="the token is not valid"),
            AuthRefused,
            "refused the API key",
        ),
        (ErrorFrame(code="revoked", message="the API key was revoked"), AuthRefused, "refused the API key"),
        (
            ErrorFrame(code="topic_refused", message="topic: refused", ref=START_REF),
            ClientError,
            "refused the job",
        ),
        (
            ErrorFrame(code="rate_limited", message="too many jobs", ref=START_REF),
            ClientError,
            "too many jobs",
        ),
        (ErrorFrame(code="unavailable", message="try again", ref=START_REF), Unreachable, "cannot serve"),
        (
            ErrorFrame(code="rate_limited", message="too many connections"),
            ClientError,
            "refused the connection",
        ),
    ],
)
def test_refusals_end_the_command_with_their_reason(watcher, frame, error, words):
    session = Session("http://gw", watcher, REQUEST, None)
    with pytest.raises(error, match=words) as raised:
        session.handle(frame)
    assert type(raised.value) is error


def test_a_refused_subscription_names_the_job(watcher, job):
    session = Session("http://gw", watcher, None, job.job_id)
    with pytest.raises(ClientError, match=f"cannot follow job {job.job_id}: no job"):
        session.handle(ErrorFrame(code="not_found", message=f"no job {job.job_id}", ref=SUBSCRIBE_REF))


def test_an_error_answering_something_else_is_only_reported(watcher, job):
    session = started(watcher, job)
    session.handle(ErrorFrame(code="invalid_request", message="ref: too long", ref="p1"))
    assert watcher.notices == ["gateway: ref: too long (invalid_request)"]


def test_exit_codes_tell_the_failures_apart():
    assert AuthRefused().exit_code == ExitCode.UNAUTHENTICATED == 4
    assert Unreachable("x").exit_code == ExitCode.UNREACHABLE == 3
    assert ClientError("x").exit_code == ExitCode.NOT_DONE == 1


def test_server_frames_parse_into_their_models():
    frame = parse_server_frame('{"type": "accepted", "job_id": "j1", "ref": "start"}')
    assert isinstance(frame, AcceptedFrame) and frame.job_id == "j1"
    with pytest.raises(ValueError):
        parse_server_frame('{"type": "telepathy"}')
