"""The outline: a grammar that holds a base model to the format, and a lenient reader of any answer."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from pressroom_contracts.events import ResearchCompleted, Source
from pressroom_contracts.jobs import JobRequest
from pressroom_runtime.llm import TextModel
from pressroom_runtime.settings import LLMProfile, LLMSettings
from pressroom_testkit import ScriptedLLM
from pressroom_writer.outline import Outline, Section, grammar, parse, plain
from pressroom_writer.prompts import outline_prompt

REQUEST = JobRequest(topic="Rooftop solar for small businesses", length="medium")


@pytest.mark.parametrize(
    ("answer", "sources", "title", "sections"),
    [
        pytest.param(
            "# Solar for shops\n## Why it pays [1, 2]\n## Sizing a roof [3, 9]\n## Getting started []\n",
            3,
            "Solar for shops",
            (Section("Why it pays", (1, 2)), Section("Sizing a roof", (3,)), Section("Getting started")),
            id="in the format: read as it is",
        ),
        pytest.param(
            "Sure! Here is the outline:\n\n# **Solar for shops**\n\n## 1. Why it pays [2]\nSome words.\n"
            "### Sizing a roof\n## Why it pays [2]\n",
            2,
            "Solar for shops",
            (Section("Why it pays", (2,)), Section("Sizing a roof")),  # repeats dropped
            id="chatty: read leniently",
        ),
        # Gemma 3 270M once titled a post "Roof Solar Energy (https://www.rwpower).md/solar-energy)".
        pytest.param(
            "# Roof solar energy (https://www.rwpower.example)\n"
            "## Why [it pays](https://invented.example/roi) [1]\n## See www.example.com first []\n",
            1,
            "Roof solar energy",
            (Section("Why it pays", (1,)), Section("See first")),
            id="a title or heading keeps its words and loses any address",
        ),
        # Gemma 3 270M titled a post "The Solar Energy Basics (https://www.rwpower.com/…", cut off at the
        # grammar's 70 characters: the address went, "The Solar Energy Basics (" was published.
        pytest.param(
            "# The Solar Energy Basics (https://www.rwpower.com/solar-energy-basics-for-homeowne\n"
            "## Costs (and why they fall []\n## Solar (PV) panels, sized []\n",
            0,
            "The Solar Energy Basics",
            (Section("Costs"), Section("Solar (PV) panels, sized")),
            id="an aside left open goes with its parenthesis",
        ),
        # Gemma 3 270M planned a post titled "1" with a section "..": both were published as they were.
        pytest.param(
            "# 1\n## .. []\n## Costs and savings []\n## 42 []\n## 5G []\n",
            0,
            "Rooftop solar for small businesses",  # the topic's
            (Section("Costs and savings"), Section("5G")),
            id="a title or heading without a letter is none",
        ),
        # Gemma 3 270M's titles and headings, cut at the grammar's 70 characters, were published so.
        pytest.param(
            "# Part 1 - The importance of remote workers and how they can impact on\n"
            "## The Future is Bright! An introduction to renewable energies - National []\n"
            "## Solar Thermal System for Home Use: Cost and Design Considerations | by []\n"
            "## Solar panels and batteries for homes in the countryside of Northumberl []\n"
            "## Q&amp;A (page 1) &amp; what to look out for []\n",
            0,
            "Part 1 - The importance of remote workers and how they can impact",
            (
                Section("The Future is Bright! An introduction to renewable energies", cut=True),
                Section("Solar Thermal System for Home Use: Cost and Design Considerations", cut=True),
                Section("Solar panels and batteries for homes in the countryside", cut=True),
                Section("Q&A (page 1) & what to look out for"),  # not cut: its last word stays
            ),
            id="a title or heading cut at the limit ends cleanly",
        ),
        # A make up job was published as "Solar energy basics (solar-energy.md)": a source's file name the
        # model copied from the prompt's list of sources.
        pytest.param(
            "# Solar energy basics (solar-energy.md)\n## Costs (heat-pumps.PDF) [1]\n## Panels (PV) []\n",
            1,
            "Solar energy basics",
            (Section("Costs", (1,)), Section("Panels (PV)")),
            id="a source's file name goes, an aside stays",
        ),
    ],
)
def test_an_answer_is_read_into_a_title_and_sections(
    answer: str, sources: int, title: str, sections: tuple[Section, ...]
) -> None:
    outline = parse(answer, REQUEST, sources=sources)
    assert outline == Outline(title, sections)
    assert [s.cut for s in outline.sections] == [s.cut for s in sections]


def test_too_few_sections_give_way_to_a_plain_outline():
    outline = parse("Solar is great.", REQUEST, sources=3)
    assert outline == plain(REQUEST, 3)
    assert outline.title == "Rooftop solar for small businesses" and len(outline.sections) == 4
    assert sorted(n for s in outline.sections for n in s.sources) == [1, 2, 3]  # every source has a place


def test_the_grammar_allows_only_real_source_numbers_and_the_section_count():
    rules = grammar(sources=3, sections=4)
    assert 'root ::= "# " text "\\n" section section section? section?' in rules
    assert 'ref ::= "3" | "2" | "1"' in rules
    assert "refs" not in grammar(sources=0, sections=3)


async def test_a_base_model_gets_the_grammar_in_its_request(scripted_llm: ScriptedLLM):
    scripted_llm.reply("# Solar for shops\n## Why it pays [1]\n## Getting started []\n")
    research = ResearchCompleted(
        request=REQUEST,
        provider="knowledge-base",
        sources=[Source(title="Solar basics", location="solar.md", snippet="Panels.", score=1)],
    )
    model = TextModel(
        LLMSettings(
            base_url=scripted_llm.base_url, api_key=SecretStr("t"), model="m", profile=LLMProfile.completion
        )
    )
    answer = await model.complete(outline_prompt(research), max_tokens=200)

    [request] = scripted_llm.requests
    assert request.kind == "completion" and request.body["grammar"] == grammar(1, 4)
    assert parse(answer.text, REQUEST, 1).sections[0] == Section("Why it pays", (1,))
