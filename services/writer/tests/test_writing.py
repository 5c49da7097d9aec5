import pytest

from pressroom_contracts.events import ResearchCompleted, Source
from pressroom_contracts.jobs import JobRequest
from pressroom_writer.outline import Outline, Section
from pressroom_writer.prompts import outline_prompt, section_prompt
from pressroom_writer.writing import (
    assemble,
    citations,
    limit_words,
    publishable,
    section_body,
    whole_sentences,
    without_repeats,
    word_count,
)

SOURCES = [
    Source(title="Solar basics", location="kb/solar.md", snippet="Panels convert light.", score=2.0),
    Source(title="Grid storage", location="https://example.com/storage", snippet="Batteries.", score=1.5),
]


def test_only_citations_of_real_sources_survive():
    body, cited = citations("Panels work [1]. Storage helps [2]. Invented [7]. Again [1].", SOURCES)
    assert body == "Panels work [1]. Storage helps [2]. Invented . Again [1]."
    assert [(c.number, c.location) for c in cited] == [(1, "kb/solar.md"), (2, "https://example.com/storage")]


def test_assembled_post_lists_its_sources():
    _, cited = citations("A [2].", SOURCES)
    markdown = assemble("Title", "A [2].", cited)
    assert markdown.startswith("# Title\n\nA [2].")
    assert "## Sources" in markdown and "https://example.com/storage" in markdown
    assert word_count("Two words") == 2


def test_prompts_carry_options_and_numbered_sources_in_both_shapes():
    request = JobRequest(
        topic="solar power at home", tone="playful", audience="homeowners", language="de", length="short"
    )
    research = ResearchCompleted(request=request, sources=SOURCES, provider="knowledge-base")
    plan = outline_prompt(research)
    assert "playful" in plan.user and "homeowners" in plan.user and "'de'" in plan.user
    assert "[2] Grid storage" in plan.user and "[1] Solar basics" in plan.document
    assert plan.grammar and 'ref ::= "2" | "1"' in plan.grammar

    outline = Outline("Sunny homes", (Section("Why solar", (2,)), Section("How to start")))
    section = section_prompt(research, outline, outline.sections[0], 120, "## Earlier\n\nText.\n\n")
    assert "“Why solar” in about 120 words" in section.user and "'de'" in section.user
    assert "[2] Grid storage" in section.user and "[1] Solar basics" not in section.user  # its own sources
    assert section.document.endswith("# Sunny homes\n\n## Earlier\n\nText.\n\n## Why solar\n\n")
    assert section.stop == ("\n#", "\n\n\n")


def test_a_section_cut_off_by_its_budget_ends_at_its_last_sentence():
    assert whole_sentences("One idea. Another one that was cut") == "One idea."
    assert whole_sentences("Whole.\n\nA fragment without end") == "Whole."
    assert whole_sentences("Whole.\n\n- a list item") == "Whole.\n\n- a list item"
    assert whole_sentences("Ends well!") == "Ends well!"


def test_a_sections_own_headings_sit_beneath_the_outlines():
    # Gemma 3 270M's sections of one post (make up): its own "##" lines became extra sections, one of
    # them a whole paragraph after the hashes.
    answer = (
        "## Solar energy basics\n\nPanels turn light into power.\n\n## Solar energy\n\nRoofs face south.\n\n"
        "# Costs\n\nThey fall.\n\n#### Fine print\n\nRead it.\n\n"
        "## Solar Energy: Pros and Cons of rooftop solar panel systems 1085 words | Free Essay Example. "
        "The most popular type is on the roof.\n\nThe end."
    )
    assert section_body(answer) == (
        "Panels turn light into power.\n\n### Solar energy\n\nRoofs face south.\n\n### Costs\n\nThey fall."
        "\n\n#### Fine print\n\nRead it.\n\nSolar Energy: Pros and Cons of rooftop solar panel systems "
        "1085 words | Free Essay Example. The most popular type is on the roof.\n\nThe end."
    )


def test_a_post_says_each_thing_once_and_no_line_of_bare_numbers():
    # Gemma 3 270M looped on one paragraph, section after section, between lines of numbers (make up).
    loop = "Heat pumps move heat [1]. They work in old houses"
    sections = [
        section_body(f"203567\n{loop}.\n\n16\n{loop}\n\n..\n\nRadiators may need to grow."),
        section_body(f"{loop}.\n\n(2)"),
        section_body("Insulate first."),
    ]
    body = "\n\n".join(f"## Part {n}\n\n{text}" for n, text in enumerate(sections, 1))
    assert without_repeats(body) == (
        f"## Part 1\n\n{loop}.\n\nRadiators may need to grow.\n\n## Part 3\n\nInsulate first."
    )  # part 2 said nothing new: its heading went with it
    # A heading whose only content was a sub-heading left empty goes too; one with text under it stays.
    nested = f"## A\n\n### Only a repeat\n\n{loop}\n\n## B\n\n### Under B\n\nNew."
    assert without_repeats(f"## Intro\n\n{loop}\n\n{nested}") == (
        f"## Intro\n\n{loop}\n\n## B\n\n### Under B\n\nNew."
    )


def test_length_is_capped_at_paragraph_boundaries():
    text = "one two three\n\nfour five six\n\nseven eight nine"
    assert limit_words(text, 7) == "one two three\n\nfour five six"
    assert limit_words(text, 100) == text
    assert limit_words("a b c d e f", 3) == "a b c…"


def test_the_published_body_is_clean_whatever_the_checks_removed():
    # Gemma 3 270M's sections (make up around the shapes published): a heading in HTML with a hash in it,
    # a heading with a hash after its marker, lines the checks emptied, an empty heading whose next
    # heading has its text on the line below, entities and zero-width spaces.
    sections = [
        section_body("<h2># Part 5</h2> What are some benefits? Lower bills [1], [2]."),
        section_body("Read on.\n\n## # This article is short\n\nIt cites its sources as [3].\n\n... [4]"),
        section_body("### الشرح | … (5) 📝\n\n### القضايا | …\nقضية هنا."),
        section_body("Q&amp;A: an area of \u200b\u200babout 165 m2 [1].\n\n1. [2]: https://x.example"),
    ]
    body = "\n\n".join(f"## Part {n}\n\n{text}" for n, text in enumerate(sections, 1))
    published, checks = publishable(body, SOURCES, "en", 1000)
    assert published == (
        "## Part 5\n\nWhat are some benefits? Lower bills.\n\n"  # "## Part 1" was left with nothing
        "## Part 2\n\nRead on.\n\n### This article is short\n\nIt cites its sources as.\n\n"
        "## Part 3\n\n### القضايا | …\n\nقضية هنا.\n\n"
        "## Part 4\n\nQ&A: an area of about 165 m2."
    )
    assert checks.removed_links == ["https://x.example"] and checks.removed_citations == [1, 2, 3]


@pytest.mark.parametrize(
    ("body", "heading_cut", "kept"),
    [
        # Under "## Solar Thermal System for Home Use: Cost and Design Considerations | by" (cut at 70
        # characters) Gemma 3 270M began "Sunway Group, India|"; under "… energies - National",
        # "Energy Policy 2035".
        pytest.param(
            "Sunway Group, India|\nSolar heaters warm water.", True, "Solar heaters warm water.", id="a line"
        ),
        pytest.param(
            "Energy Policy 2035\n\nRenewables grow.", True, "Renewables grow.", id="a line before a paragraph"
        ),
        pytest.param(
            "on their teams. Remote work grows.\nIt stays.",
            True,
            "Remote work grows.\nIt stays.",
            id="a sentence begun in the middle",
        ),
        pytest.param(
            "Energy Policy 2035 sets the goals.\nIt stays.",
            True,
            "Energy Policy 2035 sets the goals.\nIt stays.",
            id="a whole first sentence stays",
        ),
        pytest.param("- Lower bills\n- Clean air.", True, "- Lower bills\n- Clean air.", id="a list stays"),
        pytest.param(
            "Energy Policy 2035\n\nRenewables grow.",
            False,
            "Energy Policy 2035\n\nRenewables grow.",
            id="under a whole heading, nothing goes",
        ),
    ],
)
def test_a_section_does_not_go_on_with_its_cut_heading(body: str, heading_cut: bool, kept: str) -> None:
    assert section_body(body, heading_cut) == kept
