from pressroom_contracts.events import ResearchCompleted, Source
from pressroom_contracts.jobs import JobRequest
from pressroom_writer.prompts import blog_prompt
from pressroom_writer.writing import assemble, citations, limit_words, split_title, word_count

SOURCES = [
    Source(title="Solar basics", location="kb/solar.md", snippet="Panels convert light.", score=2.0),
    Source(title="Grid storage", location="https://example.com/storage", snippet="Batteries.", score=1.5),
]


def test_only_citations_of_real_sources_survive():
    body, cited = citations("Panels work [1]. Storage helps [2]. Invented [7]. Again [1].", SOURCES)
    assert body == "Panels work [1]. Storage helps [2]. Invented . Again [1]."
    assert [(c.number, c.location) for c in cited] == [(1, "kb/solar.md"), (2, "https://example.com/storage")]


def test_title_comes_from_a_heading_or_the_fallback():
    assert split_title("# Sunny days\n\nBody text.", "fallback") == ("Sunny days", "Body text.")
    assert split_title("Body only.", "Fallback") == ("Fallback", "Body only.")


def test_assembled_post_lists_its_sources():
    _, cited = citations("A [2].", SOURCES)
    markdown = assemble("Title", "A [2].", cited)
    assert markdown.startswith("# Title\n\nA [2].")
    assert "## Sources" in markdown and "https://example.com/storage" in markdown
    assert word_count("Two words") == 2


def test_prompt_carries_options_and_numbered_sources_in_both_shapes():
    request = JobRequest(
        topic="solar power at home", tone="playful", audience="homeowners", language="de", length="short"
    )
    prompt = blog_prompt(ResearchCompleted(request=request, sources=SOURCES, provider="knowledge-base"))
    assert "playful" in prompt.user and "homeowners" in prompt.user and "'de'" in prompt.user
    assert "[2] Grid storage" in prompt.user
    assert prompt.document.endswith("# Solar power at home\n\n")
    assert "[1] Solar basics" in prompt.document


def test_length_is_capped_at_paragraph_boundaries():
    text = "one two three\n\nfour five six\n\nseven eight nine"
    assert limit_words(text, 7) == "one two three\n\nfour five six"
    assert limit_words(text, 100) == text
    assert limit_words("a b c d e f", 3) == "a b c…"
