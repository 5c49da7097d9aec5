"""Helpers of the research tests: text PDFs written with pypdf, and Tavily behind an httpx.MockTransport."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from pressroom_research.adapters.tavily import TavilySearch

TAVILY_BASE = "https://tavily.test"


def _pdf_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    """A PDF whose pages hold `pages` as real text (Helvetica, not embedded), so pypdf can extract it."""
    writer = PdfWriter()
    for text in pages:
        page = writer.add_blank_page(width=612, height=792)
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        lines = [line for paragraph in text.split("\n") for line in textwrap.wrap(paragraph, 90) or [""]]
        operators = ["BT", "/F1 11 Tf", "15 TL", "72 740 Td"]
        operators += [f"({_pdf_string(line)}) Tj T*" for line in lines]
        operators.append("ET")
        content = DecodedStreamObject()
        content.set_data("\n".join(operators).encode("latin-1"))
        page.replace_contents(content)  # type: ignore[arg-type]  # pypdf accepts it; its hints are narrower
    if title:
        writer.add_metadata({"/Title": title})
    with path.open("wb") as out:
        writer.write(out)
    return path


@pytest.fixture
def write_pdf() -> Callable[..., Path]:
    return make_pdf


@dataclass
class FakeTavily:
    """Answers Tavily's HTTP API from a script of responses per endpoint, and keeps every request."""

    responses: dict[str, list[httpx.Response | Exception]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def script(self, path: str, *answers: httpx.Response | Exception) -> None:
        self.responses.setdefault(path, []).extend(answers)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.responses.get(request.url.path) or []
        if not queue:
            return httpx.Response(404, json={"detail": {"error": f"nothing scripted for {request.url.path}"}})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]  # the last answer repeats
        if isinstance(answer, Exception):
            raise answer
        # A fresh response each time: one httpx.Response cannot answer two requests.
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path]

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.url.path == path)


@pytest.fixture
def fake_tavily() -> FakeTavily:
    return FakeTavily()


@pytest.fixture
async def tavily_http(fake_tavily: FakeTavily) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client whose transport is the fake: no network, the real tavily-python on top."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake_tavily.handler)) as client:
        yield client


@pytest.fixture
def make_tavily(tavily_http: httpx.AsyncClient) -> Callable[..., TavilySearch]:
    def make(api_key: str = "tvly-test-key", **options: Any) -> TavilySearch:
        options.setdefault("backoff", 0.01)
        return TavilySearch(api_key, base_url=TAVILY_BASE, http_client=tavily_http, **options)

    return make


def search_result(title: str, url: str, content: str, score: float = 0.9) -> dict[str, Any]:
    return {"title": title, "url": url, "content": content, "score": score, "raw_content": None}


def search_response(*results: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        200,
        json={"query": "q", "answer": None, "images": [], "results": list(results), "response_time": 0.4},
    )


@pytest.fixture
def tavily_results() -> Callable[..., httpx.Response]:
    return search_response


@pytest.fixture
def tavily_result() -> Callable[..., dict[str, Any]]:
    return search_result
