from pathlib import Path

import structlog

from pressroom_research.adapters.knowledge_base import KnowledgeBase, best_excerpt

SAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "knowledge-sample"


async def test_finds_the_relevant_document_and_ignores_the_rest(tmp_path):
    (tmp_path / "solar.md").write_text(
        "# Solar energy\n\nSolar panels turn sunlight into electricity for homes and businesses.\n\n"
        "Rooftop solar panels pay back their cost within years in sunny places.\n"
    )
    (tmp_path / "bread.txt").write_text(
        "Sourdough bread needs flour, water, salt and a lively starter culture.\n"
    )
    kb = KnowledgeBase(tmp_path, min_score=0.1)
    sources = await kb.search("rooftop solar panels", limit=5)
    # Each matching paragraph is a candidate; relevance.py keeps one per document.
    assert [(s.title, s.location) for s in sources] == [("Solar energy", "solar.md")] * 2
    assert sources[0].snippet.startswith("Rooftop solar panels")
    assert await kb.search("quantum chromodynamics", limit=5) == []


async def test_new_documents_are_found_without_a_restart(tmp_path):
    kb = KnowledgeBase(tmp_path, min_score=0.1)
    assert await kb.search("gardening tomatoes", limit=3) == []
    (tmp_path / "garden.md").write_text(
        "# Garden\n\nTomatoes need sun, water and gardening patience every summer.\n"
    )
    assert [s.title for s in await kb.search("gardening tomatoes", limit=3)] == ["Garden"]


async def test_a_missing_folder_finds_nothing(tmp_path):
    assert await KnowledgeBase(tmp_path / "nope", min_score=0.1).search("anything at all", limit=3) == []


async def test_a_document_sharing_one_common_word_does_not_ride_along(tmp_path):
    (tmp_path / "solar.md").write_text(
        "# Solar\n\nSolar panels help households save energy and money on electricity bills every month.\n"
    )
    (tmp_path / "teams.md").write_text(
        "# Teams\n\nGood managers help remote teams communicate across time zones.\n"
    )
    sources = await KnowledgeBase(tmp_path, min_score=0.1).search(
        "How solar panels help households save energy", 5
    )
    assert [s.title for s in sources] == ["Solar"]


async def test_pdf_pages_are_passages(tmp_path, write_pdf):
    write_pdf(
        tmp_path / "guide.pdf",
        [
            "Beekeeping basics. A hive needs a sheltered, sunny spot and a water source nearby.",
            "Harvesting honey. Take honey frames only when the bees have capped most of the cells with wax.",
        ],
        title="Urban beekeeping",
    )
    (tmp_path / "bread.md").write_text("# Bread\n\nSourdough bread needs flour, water, salt and a starter.\n")
    sources = await KnowledgeBase(tmp_path, min_score=0.1).search("harvesting honey frames", 5)
    assert sources[0].title == "Urban beekeeping (page 2)"
    assert sources[0].location == "guide.pdf#page=2"  # its place in the folder, not a server path
    assert sources[0].snippet.startswith("Harvesting honey.")
    assert all("bread" not in s.location for s in sources)


async def test_a_pdf_without_a_title_is_named_after_its_file(tmp_path, write_pdf):
    write_pdf(
        tmp_path / "tide_tables.pdf", ["Spring tides happen around full and new moons, every two weeks."]
    )
    (source,) = await KnowledgeBase(tmp_path, min_score=0.1).search("spring tides moon", 5)
    assert source.title == "Tide Tables (page 1)"


async def test_a_broken_pdf_is_skipped_with_a_warning(tmp_path, write_pdf):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\nthis is not really a pdf at all\n%%EOF")
    (tmp_path / "truncated.pdf").write_bytes(
        write_pdf(tmp_path / "whole.pdf", ["Lighthouses guide ships past rocks at night."]).read_bytes()[:200]
    )
    (tmp_path / "notes.md").write_text(
        "# Lighthouses\n\nLighthouses were once tended by keepers every night.\n"
    )
    with structlog.testing.capture_logs() as logs:
        sources = await KnowledgeBase(tmp_path, min_score=0.1).search("lighthouses at night", 5)
    assert {Path(s.location.split("#")[0]).name for s in sources} == {"whole.pdf", "notes.md"}
    warned = {Path(e["path"]).name for e in logs if e["log_level"] == "warning" and "path" in e}
    assert {"broken.pdf", "truncated.pdf"} <= warned


async def test_the_sample_folder_has_a_searchable_pdf():
    sources = await KnowledgeBase(SAMPLE, min_score=0.5).search("heat pump insulation and sizing", 3)
    assert sources and sources[0].location.endswith("heat-pumps.pdf#page=2")
    assert sources[0].title.startswith("Heat pumps for homes")


def test_a_long_passage_is_cut_around_the_query_words():
    text = (
        "Filler sentence about nothing in particular. " * 30
        + "Otters hold hands while they sleep. "
        + ("More filler words here. " * 30)
    )
    excerpt = best_excerpt(text, "why do otters hold hands")
    assert len(excerpt) <= 501
    assert excerpt.startswith("…Otters hold hands")
