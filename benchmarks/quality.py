"""Quality of what Pressroom publishes: research, the blog post and its X post, topic by topic.

Runs the research, writer and social logic in-process (no bus: a recording stage context) over the
knowledge folder shipped beside this file (benchmarks/quality-knowledge/, three languages), for topics
in English, German and French, some of which the folder does not cover. Against the embedded Gemma 3
270M (started here, as `make up` does) and, when OPENAI_BASE_URL is set, that OpenAI-compatible model
too (PRESSROOM_LLM_MODEL, PRESSROOM_LLM_PROFILE as for the services).

Reported per model: off-topic sources kept, covered topics where nothing was found and uncovered ones
where something was, links not from research, HTML tags, server paths, unsupported citations and
verbatim copies — each before the checks (the text as the model wrote it) and after (as published) —,
language match rate, length within target and time per post. The "before" column is the baseline
measured in the same run. Results go to benchmarks/results/quality.json.

    .venv/bin/python benchmarks/quality.py            # 6 topics, short posts (about 10 minutes on 2 cores)
    .venv/bin/python benchmarks/quality.py --full     # every topic
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from pressroom_contracts.events import BlogCompleted, ResearchCompleted, Source, Stage
from pressroom_contracts.jobs import JobRequest, Platform
from pressroom_devstack.model import MODEL_ID, LocalModel
from pressroom_research.adapters.knowledge_base import KnowledgeBase
from pressroom_research.researcher import Researcher
from pressroom_runtime.checks import (
    check_citations,
    detect_language,
    html_tags,
    quote_copies,
    remove_links,
    same_language,
)
from pressroom_runtime.llm import TextModel
from pressroom_runtime.settings import LLMProfile, LLMSettings
from pressroom_social.copywriter import Copywriter
from pressroom_social.prompts import Blog
from pressroom_testkit import FakeStageContext, JobEvents
from pressroom_writer.writer import Writer

HERE = Path(__file__).parent
KNOWLEDGE = HERE / "quality-knowledge"
RESULTS = HERE / "results" / "quality.json"
LENGTH_RANGE = (0.5, 1.5)  # of the target word count


@dataclass(frozen=True)
class Topic:
    language: str
    topic: str
    documents: frozenset[str] = frozenset()  # what the folder has on it; empty: not covered


def _t(language: str, topic: str, *documents: str) -> Topic:
    return Topic(language, topic, frozenset(documents))


TOPICS = [
    _t("en", "Rooftop solar for small businesses", "solar-energy.md"),
    _t("en", "The history of the Roman empire"),
    _t("de", "Wärmepumpen im Altbau", "waermepumpen.md"),
    _t("de", "Tipps für den ersten Marathon"),
    _t("fr", "Composter ses déchets de cuisine en appartement", "compostage.md"),
    _t("fr", "L'histoire de la Révolution française"),
    # The rest run with --full.
    _t("en", "How heat pumps work in cold climates", "heat-pumps.pdf"),
    _t("en", "Starting a beehive on a city rooftop", "urban-beekeeping.md"),
    _t("en", "Habits that make remote teams work", "remote-work.md"),
    _t("en", "Batteries for storing solar power at home", "solar-energy.md"),
    _t("en", "Training for a first marathon"),
    _t("en", "Sourdough bread baking at home"),
    _t("de", "Sichere Radwege in der Fahrradstadt", "fahrradstadt.md"),
    _t("de", "Kosten und Förderung einer Wärmepumpe", "waermepumpen.md"),
    _t("de", "Radverkehr und Einzelhandel in der Innenstadt", "fahrradstadt.md"),
    _t("de", "Die Geschichte des Buchdrucks"),
    _t("de", "Gesunde Ernährung für Kinder"),
    _t("fr", "Les bonnes pratiques du télétravail", "teletravail.md"),
    _t("fr", "Les risques du télétravail et le droit à la déconnexion", "teletravail.md"),
    _t("fr", "Réussir son compost au jardin", "compostage.md"),
    _t("fr", "Apprendre le piano à l'âge adulte"),
    _t("fr", "La cuisine lyonnaise traditionnelle"),
]
DEFAULT_TOPICS = 6

_SERVER_PATH = re.compile(r"(?:^|[\s(\"'`])(?:/(?:home|root|tmp|work|usr|var|etc|opt|srv|mnt)/|[A-Za-z]:\\)")


def server_paths(texts: list[str], folder: Path) -> int:
    return sum(len(_SERVER_PATH.findall(t)) + t.count(str(folder.resolve())) for t in texts)


def foreign_links(text: str, sources: list[Source]) -> int:
    return len(remove_links(text, [s.location for s in sources])[1])


def body_of(markdown: str) -> str:
    """A post's text without its title line and sources section."""
    text = markdown.split("\n## Sources\n")[0]
    return text.split("\n", 1)[1] if text.startswith("# ") and "\n" in text else text


async def write_one(topic: Topic, model: TextModel, length: str) -> dict[str, Any]:
    request = JobRequest(
        topic=topic.topic, language=topic.language, length=length, platforms=[Platform.x], image=False
    )
    events = JobEvents.new(request)
    started = time.monotonic()
    rctx = FakeStageContext.handling(events.requested(), Stage.research)
    research: ResearchCompleted = await Researcher(KnowledgeBase(KNOWLEDGE, 0.5), 5).research(request, rctx)
    wctx = FakeStageContext(events.job_id, Stage.blog)
    blog: BlogCompleted = await Writer(model, max_tokens=2048).write(research, wctx, 1, regenerated=False)
    sctx = FakeStageContext(events.job_id, Stage.social)
    post = await Copywriter(model, max_tokens=400).write(sctx, Blog.of(request, blog), Platform.x, 1)
    seconds = time.monotonic() - started

    sources = research.sources
    draft = body_of(wctx.streamed)  # the last draft as the model wrote it, before the checks
    final = body_of(blog.markdown)
    checks = blog.checks
    assert checks is not None
    kept = {s.location.split("#")[0] for s in sources}
    detected = detect_language(final)
    visible = [
        blog.markdown,
        post.text,
        *rctx.progress_messages,
        *wctx.progress_messages,
        *sctx.progress_messages,
        *(f"{c.title} {c.location}" for c in blog.citations),
        *(f"{s.title} {s.location}" for s in sources),
    ]
    return {
        "language": topic.language,
        "topic": topic.topic,
        "covered": bool(topic.documents),
        "sources": sorted(kept),
        "off_topic_sources": len(kept - topic.documents),
        "nothing_found": research.skipped,
        "links_not_from_research": {
            "before": foreign_links(draft, sources),
            "after": foreign_links(final, sources) + foreign_links(post.text, []),
        },
        "html_tags": {"before": len(html_tags(draft)), "after": len(html_tags(blog.markdown + post.text))},
        "server_paths": server_paths(visible, KNOWLEDGE),
        "unsupported_citations": {
            "before": len(check_citations(draft, sources)[2]),
            "after": len(check_citations(final, sources)[2]),
        },
        "verbatim_copies": {
            "before": len(checks.copied_passages),
            "after": len(quote_copies(final, sources)[1]),
        },
        "citations": len(blog.citations),
        "language_detected": detected[0] if detected else None,
        "language_matches": bool(detected and same_language(topic.language, detected[0])),
        "rewritten_for_language": checks.rewritten_for_language,
        "words": blog.word_count,
        "target_words": request.target_words,
        "length_within_target": LENGTH_RANGE[0] * request.target_words
        <= blog.word_count
        <= LENGTH_RANGE[1] * request.target_words,
        "seconds": round(seconds, 1),
        "title": blog.title,
        "x_post": post.text,
    }


def summarise(posts: list[dict[str, Any]]) -> dict[str, Any]:
    def total(key: str, when: str | None = None) -> int:
        return sum(p[key][when] if when else p[key] for p in posts)

    def pair(key: str) -> dict[str, int]:
        return {"before": total(key, "before"), "after": total(key, "after")}

    seconds = [p["seconds"] for p in posts]
    return {
        "posts": len(posts),
        "off_topic_sources_kept": total("off_topic_sources"),
        "covered_topics_with_nothing_found": sum(p["covered"] and p["nothing_found"] for p in posts),
        "uncovered_topics_with_sources": sum(not p["covered"] and not p["nothing_found"] for p in posts),
        "uncovered_topics_with_citations": sum(not p["covered"] and p["citations"] > 0 for p in posts),
        "links_not_from_research": pair("links_not_from_research"),
        "html_tags": pair("html_tags"),
        "server_paths": total("server_paths"),
        "unsupported_citations": pair("unsupported_citations"),
        "verbatim_copies": pair("verbatim_copies"),
        "language_match_rate": round(sum(p["language_matches"] for p in posts) / len(posts), 2),
        "length_within_target_rate": round(sum(p["length_within_target"] for p in posts) / len(posts), 2),
        "seconds_per_post": {"median": round(statistics.median(seconds), 1), "max": round(max(seconds), 1)},
    }


async def run_model(
    name: str, model: TextModel, topics: list[Topic], length: str, results: dict[str, Any]
) -> dict[str, Any]:
    posts: list[dict[str, Any]] = []
    for number, topic in enumerate(topics, 1):
        post = await write_one(topic, model, length)
        posts.append(post)
        # Written after every post: a run stopped early still leaves what it measured.
        results["models"][name] = _model_result(model, posts)
        save(results)
        print(
            f"[{name}] {number}/{len(topics)} {topic.language} {topic.topic!r}: {post['words']} words, "
            f"{len(post['sources'])} sources, language {post['language_detected']}, {post['seconds']} s",
            flush=True,
        )
    return _model_result(model, posts)


def _model_result(model: TextModel, posts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": model.model,
        "profile": str(model.settings.profile),
        "summary": summarise(posts),
        "posts": posts,
    }


def save(results: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


def print_table(results: dict[str, Any]) -> None:
    rows = [
        ("off-topic sources kept", lambda s: s["off_topic_sources_kept"]),
        ("uncovered topics with sources / citations", lambda s: f"{s['uncovered_topics_with_sources']} / {s['uncovered_topics_with_citations']}"),
        ("covered topics with nothing found", lambda s: s["covered_topics_with_nothing_found"]),
        ("links not from research (model → published)", lambda s: _pair(s["links_not_from_research"])),
        ("HTML tags (model → published)", lambda s: _pair(s["html_tags"])),
        ("server paths in what a user sees", lambda s: s["server_paths"]),
        ("unsupported citations (model → published)", lambda s: _pair(s["unsupported_citations"])),
        ("verbatim copies ≥ 25 words (model → published)", lambda s: _pair(s["verbatim_copies"])),
        ("language match rate", lambda s: s["language_match_rate"]),
        ("length within target", lambda s: s["length_within_target_rate"]),
        ("seconds per post, median (max)", lambda s: f"{s['seconds_per_post']['median']} ({s['seconds_per_post']['max']})"),
    ]  # fmt: skip
    names = list(results["models"])
    print("| measure | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label, value in rows:
        print(f"| {label} | " + " | ".join(str(value(results["models"][n]["summary"])) for n in names) + " |")


def _pair(counts: dict[str, int]) -> str:
    return f"{counts['before']} → {counts['after']}"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--full", action="store_true", help=f"every topic ({len(TOPICS)}), not the first {DEFAULT_TOPICS}"
    )
    parser.add_argument("--topics", type=int, help="the first N topics (overrides --full)")
    parser.add_argument("--length", default="short", choices=["short", "medium", "long"])
    parser.add_argument("--no-embedded", action="store_true", help="only the model behind OPENAI_BASE_URL")
    args = parser.parse_args()
    topics = TOPICS[: args.topics] if args.topics else TOPICS if args.full else TOPICS[:DEFAULT_TOPICS]
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "topics": len(topics),
        "languages": sorted({t.language for t in topics}),
        "length": args.length,
        "models": {},
    }
    if not args.no_embedded:
        cache = Path(os.environ.get("PRESSROOM_MODEL_CACHE", Path.home() / ".cache" / "pressroom" / "models"))
        with tempfile.TemporaryDirectory() as logs:
            local = LocalModel(cache, Path(logs) / "model.log")
            local.start()
            try:
                model = TextModel(
                    LLMSettings(
                        base_url=local.base_url,
                        api_key=SecretStr("local"),
                        model=MODEL_ID,
                        profile=LLMProfile.completion,
                    )
                )
                await run_model("embedded", model, topics, args.length, results)
            finally:
                local.stop()
    if os.environ.get("OPENAI_BASE_URL"):
        model = TextModel(LLMSettings())
        await run_model(model.model, model, topics, args.length, results)
    print_table(results)
    print(f"\nwritten to {RESULTS.relative_to(HERE.parent)}")


if __name__ == "__main__":
    asyncio.run(main())
