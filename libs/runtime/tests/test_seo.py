"""The SEO pack: lengths search engines show, a slug for any script, and cards and JSON-LD as specified."""

from __future__ import annotations

import json
from typing import Any

from pressroom_contracts.events import BlogCompleted, Citation, SeoPack
from pressroom_runtime.checks import readable
from pressroom_runtime.seo import DESCRIPTION_CHARS, TITLE_CHARS, keywords, seo_pack, shorten

BODY = (
    "## Why it pays\n\nRooftop **solar** pays for itself in about eight years [1], and prices keep falling. "
    "Batteries store the midday surplus for the evening, so a household uses more of its own power. "
    "That is why small businesses with flat roofs are installing panels faster than ever.\n\n"
    "## Getting started\n\n- Get three quotes\n- Check the roof"
)


def pack(title: str = "Rooftop solar for small businesses", **options: Any) -> SeoPack:
    defaults: dict[str, Any] = {
        "topic": "Rooftop solar for small businesses",
        "title": title,
        "body": BODY,
        "language": "en",
        "words": 430,
        "citations": [
            Citation(number=1, title="Solar energy basics", location="solar-energy.md"),
            Citation(number=2, title="Prices", location="https://web.example/prices"),
        ],
    }
    return seo_pack(**(defaults | options))


def test_title_and_description_fit_what_search_engines_show():
    long_title = "Why rooftop solar panels are the smartest investment a small business can make this decade"
    seo = pack(long_title)
    assert len(seo.title) <= TITLE_CHARS and seo.title.endswith("…")
    assert len(seo.meta_description) <= DESCRIPTION_CHARS
    assert seo.meta_description.startswith("Rooftop solar pays for itself in about eight years, and prices")
    assert "[1]" not in seo.meta_description and "**" not in seo.meta_description
    assert shorten("Short enough.", 60) == "Short enough."


def test_slugs_work_for_non_latin_titles():
    assert pack().slug == "rooftop-solar-for-small-businesses"
    assert pack("Солнечные панели на крыше").slug == "solnechnye-paneli-na-kryshe"
    assert pack("屋顶太阳能").slug  # transliterated, never empty
    assert (
        pack("🌞🌞🌞").slug == "rooftop-solar-for-small-businesses"
    )  # from the topic when the title has no letters


def test_keywords_reading_time_cards_and_json_ld():
    seo = pack(words=430)
    assert seo.keywords[:4] == ["rooftop", "solar", "small", "businesses"] and len(seo.keywords) == 6
    assert seo.reading_minutes == 3
    assert seo.open_graph["og:type"] == "article" and seo.open_graph["og:title"] == seo.title
    assert seo.twitter["twitter:card"] == "summary_large_image"
    article = json.loads(json.dumps(seo.json_ld))
    assert (article["@context"], article["@type"]) == ("https://schema.org", "Article")
    assert (
        article["headline"] == seo.title and article["wordCount"] == 430 and article["timeRequired"] == "PT3M"
    )
    assert article["citation"] == ["Solar energy basics", "https://web.example/prices"]  # never a file path
    assert "seo" in BlogCompleted.model_fields  # carried on blog.completed


def test_keywords_come_from_what_a_person_reads_of_the_topic():
    """A topic with markup or an address in it (pasted, or hostile) gives no keyword of them."""
    topic = "Solar panels <script>alert(1)</script> visit http://evil.example.com/free-panels"
    assert keywords(topic, "Solar panels", "") == ["solar", "panels", "visit"]
    assert readable("Heat <b>pumps</b> (https: //x.example/a) explained") == "Heat pumps explained"


def test_the_description_is_the_first_paragraph_that_describes():
    """A make up job's snippet was "Rooftop solar energy source (roofsolar):", a label the model wrote."""
    body = (
        "Rooftop solar energy source (roofsolar):\n\n"
        "Panels on a roof turn sunlight into power that a household uses before buying any from the grid."
    )
    pack = seo_pack(
        topic="Rooftop solar", title="Solar basics", body=body, language="en", words=25, citations=[]
    )
    assert pack.meta_description.startswith("Panels on a roof turn sunlight into power")
    short = seo_pack(
        topic="Rooftop solar", title="Solar", body="Short one.", language="en", words=2, citations=[]
    )
    assert short.meta_description == "Short one."  # nothing better: the first paragraph still
