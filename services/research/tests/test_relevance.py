"""Research keeps sources about the topic only, once each, and names them without server paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pressroom_contracts.events import ResearchCompletedEvent, Source, Stage
from pressroom_contracts.jobs import JobRequest
from pressroom_research.adapters.knowledge_base import KnowledgeBase
from pressroom_research.handlers import handlers
from pressroom_research.relevance import about, near_duplicate, select
from pressroom_research.researcher import Researcher
from pressroom_research.sources import ResearchProvider
from pressroom_testkit import FakeStageContext, JobEvents

SAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "knowledge-sample"


def source(title: str, snippet: str, score: float = 1.0, location: str = "https://a.example/x") -> Source:
    return Source(title=title, location=location, snippet=snippet, score=score)


async def research(provider: ResearchProvider, topic: str, **options: Any) -> tuple[FakeStageContext, Any]:
    requested = JobEvents.new(JobRequest(topic=topic, **options)).requested()
    ctx = FakeStageContext.handling(requested, Stage.research)
    await handlers(Researcher(provider, 5))[type(requested)](requested, ctx)
    [done] = ctx.data(ResearchCompletedEvent)
    return ctx, done


async def test_the_issues_case_finds_solar_and_not_remote_work_or_open_source():
    """ "Rooftop solar for small businesses" got "Remote work" and "Open-source software" before."""
    _, done = await research(KnowledgeBase(SAMPLE, min_score=0.5), "Rooftop solar for small businesses")

    assert done.sources, done.reason
    assert {s.location.split("#")[0] for s in done.sources} == {"solar-energy.md"}
    assert all(not s.location.startswith("/") for s in done.sources)


@pytest.mark.parametrize(
    "topic",
    [
        "Quantum chromodynamics for beginners",
        "The history of the Roman empire",
        "Sourdough bread baking at home",
    ],
)
async def test_a_topic_the_folder_does_not_cover_finds_nothing(topic):
    _, done = await research(KnowledgeBase(SAMPLE, min_score=0.5), topic)
    assert done.skipped and done.sources == []
    assert done.reason == "knowledge-base found nothing relevant to the topic"


async def test_the_timeline_never_shows_the_folder(tmp_path: Path):
    (tmp_path / "solar.md").write_text("# Solar\n\nSolar panels on a roof turn sunlight into electricity.\n")
    ctx, done = await research(KnowledgeBase(tmp_path, min_score=0.1), "Solar panels on the roof")
    assert str(tmp_path) not in " ".join(ctx.progress_messages)
    assert [s.location for s in done.sources] == ["solar.md"]


def test_a_source_sharing_one_common_word_is_not_about_the_topic():
    topic = "Rooftop solar for small businesses"
    assert about(topic, source("Solar energy basics", "A typical rooftop panel converts sunlight."))
    assert not about(topic, source("Remote work", "Invest in a decent desk; small costs, large effects."))


def test_weak_scores_and_near_duplicates_are_left_out():
    text = "Heat pumps move heat from the outdoor air into the house even in cold climates."
    found = [
        source("Heat pumps", text, 10.0, "https://a.example/1"),
        source("Heat pumps (copy)", text + " Read more.", 9.0, "https://b.example/2"),
        source("Heat pump costs", "Heat pumps cost more to buy and less to run than gas boilers.", 8.0),
        source("Heat pumps, briefly", "Heat pumps in a footnote.", 1.0),  # far below the best
        source("Gardening", "Tomatoes like warm soil and sunny spots.", 9.5),
    ]
    selection = select("Heat pumps in cold climates", found, limit=5)
    assert [s.title for s in selection.kept] == ["Heat pumps", "Heat pump costs"]
    assert [s.title for s in selection.duplicates] == ["Heat pumps (copy)"]
    assert {s.title for s in selection.off_topic} == {"Gardening", "Heat pumps, briefly"}
    assert near_duplicate(found[0], found[1]) and not near_duplicate(found[0], found[2])


async def test_tavily_results_go_through_the_same_filters(
    make_tavily, fake_tavily, tavily_results, tavily_result
):
    fake_tavily.script(
        "/search",
        tavily_results(
            tavily_result(
                "Heat pumps in the cold", "https://web.example/cold", "Heat pumps work in cold climates.", 0.9
            ),
            tavily_result(
                "Heat pumps in the cold",
                "https://mirror.example/cold",
                "Heat pumps work in cold climates.",
                0.8,
            ),
            tavily_result("Best pizza in town", "https://food.example/pizza", "Our pizza oven is hot.", 0.7),
        ),
    )
    ctx, done = await research(make_tavily(), "Heat pumps in cold climates")

    assert [s.location for s in done.sources] == ["https://web.example/cold"]
    assert "Left out 1 result not about the topic and 1 near-duplicate" in ctx.progress_messages
    assert fake_tavily.bodies("/search")[0]["max_results"] == 15  # candidates to choose from


def test_a_server_path_never_reaches_an_event():
    leaked = Source(
        title="Heat pumps", location="/home/me/knowledge/heat-pumps.pdf#page=4", snippet="…", score=1
    )
    assert leaked.location == "heat-pumps.pdf#page=4"
    assert (
        Source(title="t", location="https://a.example/b", snippet="", score=0).location
        == "https://a.example/b"
    )
