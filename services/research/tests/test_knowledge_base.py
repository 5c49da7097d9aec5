from pressroom_research.adapters.knowledge_base import KnowledgeBase


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
    assert [s.title for s in sources] == ["Solar energy"]
    assert sources[0].location.endswith("solar.md")
    assert "solar" in sources[0].snippet.lower()
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
