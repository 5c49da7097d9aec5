"""The Tavily adapter through the real tavily-python client, with the HTTP exchange mocked."""

from __future__ import annotations

import httpx
import pytest

from pressroom_research.adapters.knowledge_base import KnowledgeBase
from pressroom_research.adapters.tavily import TavilySearch
from pressroom_research.app import choose_provider
from pressroom_research.settings import ResearchSettings
from pressroom_runtime.errors import PermanentError, TransientError, Verdict, classify

UNAUTHORIZED = httpx.Response(401, json={"detail": {"error": "Unauthorized: missing or invalid API key."}})


async def test_search_results_become_sources(fake_tavily, make_tavily, tavily_results, tavily_result):
    fake_tavily.script(
        "/search",
        tavily_results(
            tavily_result(
                "Heat pumps explained", "https://example.org/heat", "Heat pumps  move\nheat.", 0.81
            ),
            tavily_result("", "https://example.org/untitled", "No title here.", 0.5),
        ),
    )
    sources = await make_tavily().search("how heat pumps work", 5)

    assert [(s.title, s.location, s.snippet, s.score) for s in sources] == [
        ("Heat pumps explained", "https://example.org/heat", "Heat pumps move heat.", 0.81),
        ("https://example.org/untitled", "https://example.org/untitled", "No title here.", 0.5),
    ]
    (request,) = fake_tavily.requests
    assert str(request.url) == "https://tavily.test/search"
    assert request.headers["authorization"] == "Bearer tvly-test-key"
    body = fake_tavily.bodies("/search")[0]
    assert body["query"] == "how heat pumps work"
    assert body["max_results"] == 5


async def test_long_content_is_cut_to_a_snippet(fake_tavily, make_tavily, tavily_results, tavily_result):
    fake_tavily.script("/search", tavily_results(tavily_result("Long", "https://e.org/l", "word " * 400)))
    (source,) = await make_tavily().search("long", 3)
    assert len(source.snippet) <= 500
    assert source.snippet.endswith("…")


async def test_a_server_error_is_retried_and_then_succeeds(
    fake_tavily, make_tavily, tavily_results, tavily_result
):
    fake_tavily.script(
        "/search",
        httpx.Response(500, text="upstream exploded"),
        tavily_results(tavily_result("Found", "https://e.org/found", "It worked.")),
    )
    sources = await make_tavily().search("retry me", 3)
    assert [s.title for s in sources] == ["Found"]
    assert fake_tavily.count("/search") == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(429, json={"detail": {"error": "Too many requests"}}),
        httpx.Response(503, text="unavailable"),
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("read timed out"),
    ],
    ids=["429", "503", "connect-error", "timeout"],
)
async def test_transient_failures_are_retried(
    fake_tavily, make_tavily, tavily_results, tavily_result, failure
):
    fake_tavily.script("/search", failure, tavily_results(tavily_result("Ok", "https://e.org/ok", "Fine.")))
    assert [s.title for s in await make_tavily().search("flaky", 3)] == ["Ok"]
    assert fake_tavily.count("/search") == 2


async def test_a_persistent_outage_becomes_a_transient_error_after_three_attempts(fake_tavily, make_tavily):
    fake_tavily.script("/search", httpx.Response(502, text="bad gateway"))
    with pytest.raises(TransientError) as caught:
        await make_tavily().search("down", 3)
    assert caught.value.code == "provider_unavailable"
    assert "HTTP 502" in caught.value.message
    assert fake_tavily.count("/search") == 3
    assert classify(caught.value).verdict is Verdict.wait  # the runtime waits the outage out


async def test_a_rejected_key_is_permanent_and_not_retried(fake_tavily, make_tavily):
    fake_tavily.script("/search", UNAUTHORIZED)
    with pytest.raises(PermanentError) as caught:
        await make_tavily("tvly-wrong").search("anything", 3)
    assert caught.value.code == "provider_auth"
    assert caught.value.message.startswith("Tavily rejected the API key")
    assert "invalid API key" in caught.value.message
    assert "tvly-wrong" not in caught.value.message
    assert fake_tavily.count("/search") == 1
    assert classify(caught.value).verdict is Verdict.fail


@pytest.mark.parametrize("status", [403, 432])
async def test_a_forbidden_key_is_permanent(fake_tavily, make_tavily, status):
    fake_tavily.script("/search", httpx.Response(status, json={"detail": {"error": "Forbidden"}}))
    with pytest.raises(PermanentError) as caught:
        await make_tavily().search("anything", 3)
    assert caught.value.code == "provider_auth"
    assert "Tavily rejected the API key" in caught.value.message
    assert fake_tavily.count("/search") == 1


async def test_a_bad_request_is_permanent_and_not_retried(fake_tavily, make_tavily):
    fake_tavily.script("/search", httpx.Response(400, json={"detail": {"error": "Query is too long."}}))
    with pytest.raises(PermanentError) as caught:
        await make_tavily().search("x" * 1000, 3)
    assert caught.value.code == "provider_rejected"
    assert "Query is too long." in caught.value.message
    assert fake_tavily.count("/search") == 1


async def test_user_sources_are_read_with_extract_in_the_order_given(fake_tavily, make_tavily):
    fake_tavily.script(
        "/extract",
        httpx.Response(
            200,
            json={
                "results": [
                    {
                        "url": "https://b.example/post",
                        "raw_content": "Body of B.\n\nMore of B.",
                        "images": [],
                    },
                    {
                        "url": "https://a.example/page",
                        "title": "Page A",
                        "raw_content": "Body of A.",
                        "images": [],
                    },
                ],
                "failed_results": [{"url": "https://c.example/gone", "error": "404 Not Found"}],
                "response_time": 0.2,
            },
        ),
    )
    urls = ["https://a.example/page", "https://b.example/post", "https://c.example/gone"]
    sources = await make_tavily().include(urls)

    assert [s.location for s in sources] == urls
    assert [s.title for s in sources] == ["Page A", "https://b.example/post", "https://c.example/gone"]
    assert sources[0].snippet == "Body of A."
    assert sources[1].snippet == "Body of B. More of B."
    assert "could not read it (404 Not Found)" in sources[2].snippet
    assert fake_tavily.bodies("/extract")[0]["urls"] == urls


async def test_extract_with_a_rejected_key_fails_permanently(fake_tavily, make_tavily):
    fake_tavily.script("/extract", UNAUTHORIZED)
    with pytest.raises(PermanentError) as caught:
        await make_tavily().include(["https://a.example/"])
    assert caught.value.code == "provider_auth"
    assert fake_tavily.count("/extract") == 1


async def test_user_sources_survive_an_extract_the_provider_refuses(fake_tavily, make_tavily):
    fake_tavily.script("/extract", httpx.Response(400, json={"detail": {"error": "Invalid URL"}}))
    (source,) = await make_tavily().include(["https://a.example/x"])
    assert source.location == "https://a.example/x"
    assert "Invalid URL" in source.snippet


async def test_without_tavily_user_sources_are_kept_unread(tmp_path):
    sources = await KnowledgeBase(tmp_path, min_score=0.1).include(["https://a.example/x"])
    assert [(s.title, s.location) for s in sources] == [("https://a.example/x", "https://a.example/x")]
    assert "Supplied by the user" in sources[0].snippet


def test_a_key_chooses_tavily_with_its_base_url(monkeypatch):
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-from-env")
    monkeypatch.setenv("PRESSROOM_RESEARCH_TAVILY_BASE_URL", "https://proxy.example/tavily")
    provider = choose_provider(ResearchSettings())
    assert isinstance(provider, TavilySearch)
    assert str(provider.client._client.base_url).rstrip("/") == "https://proxy.example/tavily"

    monkeypatch.setenv("TAVILY_API_KEY", "")
    assert isinstance(choose_provider(ResearchSettings()), KnowledgeBase)
