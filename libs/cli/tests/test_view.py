"""What `pressroom generate` prints without a terminal (a pipe, a log): one line per step, the blog as it
streams, and the outcome it records."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from pressroom_cli.errors import UsageError
from pressroom_cli.generate import build_request
from pressroom_cli.view import GenerateView
from pressroom_contracts.events import PublishChecks
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.protocol import DeltaFrame
from pressroom_testkit import JobEvents

REQUEST = JobRequest(topic="Rooftop solar panels", platforms=["linkedin", "x"])


def plain_view() -> tuple[GenerateView, io.StringIO]:
    out = io.StringIO()
    return GenerateView(Console(file=out, width=200, force_terminal=False), REQUEST), out


def test_each_step_is_a_line_and_the_blog_streams_as_text():
    view, out = plain_view()
    job = JobEvents(job_id="job-1", request=REQUEST)
    with view:
        view.accepted("job-1")
        view.event(job.progress(message="Searching the knowledge base"))
        view.event(job.research(sources=2))
        view.delta(DeltaFrame(job_id="job-1", stage="blog", offset=0, text="# Sunny roofs\n"))
        view.delta(DeltaFrame(job_id="job-1", stage="blog", offset=14, text="Panels pay off."))
        view.event(job.blog(title="Sunny roofs"))
        view.event(job.social("linkedin"))
        view.event(job.job_completed(title="Sunny roofs"))
    text = out.getvalue()
    assert "job  accepted: job-1" in text
    assert "research  Searching the knowledge base" in text
    assert "research  2 sources" in text
    assert "# Sunny roofs\nPanels pay off." in text
    assert "writing  “Sunny roofs”" in text
    assert "social  linkedin:" in text
    assert view.outcome.status == "completed" and view.outcome.title == "Sunny roofs"


def test_what_the_checks_changed_is_shown_with_the_text_it_concerns():
    view, out = plain_view()
    job = JobEvents(job_id="job-1", request=REQUEST)
    checks = PublishChecks(
        html_tags=["h2", "h2"],
        removed_links=["https://invented.example/a"],
        removed_citations=[3, 4],
        language="de",
        detected_language="en",
        language_matches=False,
    )
    blog = job.blog(title="Sunny roofs")
    social = job.social("x")
    with view:
        view.event(blog.model_copy(update={"data": blog.data.model_copy(update={"checks": checks})}))
        view.event(social.model_copy(update={"data": social.data.model_copy(update={"checks": checks})}))
        view.event(job.social("linkedin"))
    lines = out.getvalue().splitlines()
    expected = (
        "checks: 1 link not from research removed; 2 unsupported citations removed; "
        "HTML converted (h2); written in en, not de"
    )
    assert f"  writing  {expected}" in lines
    assert any(line.startswith("   social  x:") and line.endswith(expected) for line in lines)
    assert not any("checks" in line for line in lines if "linkedin" in line)


def test_a_rewritten_draft_replaces_the_text_from_its_offset():
    view, out = plain_view()
    with view:
        view.delta(DeltaFrame(job_id="j", stage="blog", offset=0, text="First try"))
        view.delta(DeltaFrame(job_id="j", stage="blog", offset=0, text="Second"))
    assert view.blog == "Second"
    assert "(the writer started again)" in out.getvalue()


def test_the_cost_counts_each_provider_call_once():
    view, _ = plain_view()
    job = JobEvents(job_id="job-1", request=REQUEST)
    writer = job.usage(call="draft", cost=0.002)
    view.event(writer)
    view.event(job.usage(call="continue", cost=0.001))
    view.event(writer.model_copy(update={"id": "redelivered-copy"}))  # the same call, published again
    assert view.outcome.cost_usd == pytest.approx(0.003)


def test_failure_and_cancellation_are_the_outcome():
    view, out = plain_view()
    job = JobEvents(job_id="job-1", request=REQUEST)
    view.event(job.job_failed(message="no", code="provider_rejected"))
    assert view.outcome.status == "failed"
    assert view.outcome.failure == "failed at blog: no (provider_rejected)"
    view.event(job.job_cancelled("enough"))
    assert view.outcome.status == "cancelled" and "cancelled: enough" in out.getvalue()


def test_options_become_a_job_request_with_the_contract_defaults():
    request = build_request({"topic": "Solar", "platforms": ["x"], "tone": None, "sources": []})
    assert request.platforms == ["x"] and request.tone == JobRequest.model_fields["tone"].default


def test_invalid_options_name_the_field():
    with pytest.raises(UsageError, match=r"topic: .*; platforms\[0\]"):
        build_request({"topic": "ab", "platforms": ["myspace"]})
