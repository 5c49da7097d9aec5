"""The embedded research provider: BM25 (bm25s) over a folder of the user's markdown and text files."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

import bm25s

from pressroom_contracts.events import Source

SUFFIXES = {".md", ".markdown", ".txt"}
RELATIVE_FLOOR = 0.4


@dataclass(frozen=True)
class Passage:
    path: Path
    title: str
    text: str


def _title(path: Path, text: str) -> str:
    heading = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    return heading.group(1).strip() if heading else path.stem.replace("-", " ").replace("_", " ").title()


def load_passages(folder: Path) -> list[Passage]:
    """Paragraph-sized passages, so a snippet is the part of a document that matched."""
    passages = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        title = _title(path, text)
        for block in re.split(r"\n\s*\n", text):
            block = " ".join(block.split())
            if len(block) >= 40 and not block.startswith("#"):
                passages.append(Passage(path=path, title=title, text=block))
    return passages


class KnowledgeBase:
    name = "knowledge-base"

    def __init__(self, folder: Path, min_score: float) -> None:
        self.folder = folder
        self.min_score = min_score
        self._passages: list[Passage] = []
        self._retriever: bm25s.BM25 | None = None
        self._signature: tuple[tuple[str, float], ...] = ()

    def describe(self, query: str) -> str:
        return f"Searching the knowledge base ({self.folder}) for “{query}”"

    def _current_signature(self) -> tuple[tuple[str, float], ...]:
        if not self.folder.is_dir():
            return ()
        return tuple(
            sorted(
                (str(p), p.stat().st_mtime) for p in self.folder.rglob("*") if p.suffix.lower() in SUFFIXES
            )
        )

    def _index(self) -> None:
        """(Re)builds the index when the folder changed, so new documents are found without a restart."""
        signature = self._current_signature()
        if signature == self._signature and self._retriever is not None:
            return
        self._passages = load_passages(self.folder) if self.folder.is_dir() else []
        self._signature = signature
        if not self._passages:
            self._retriever = None
            return
        retriever = bm25s.BM25()
        retriever.index(
            bm25s.tokenize([p.text for p in self._passages], show_progress=False), show_progress=False
        )
        self._retriever = retriever

    def _search(self, query: str, limit: int) -> list[Source]:
        self._index()
        if self._retriever is None:
            return []
        tokens = bm25s.tokenize([query], show_progress=False)
        k = min(limit * 3, len(self._passages))
        ids, scores = self._retriever.retrieve(tokens, k=k, show_progress=False)
        sources: list[Source] = []
        seen: set[Path] = set()
        # BM25 scores are not comparable across queries: besides the absolute floor, a passage must
        # score near the best one, or a document matching one common word rides along.
        floor = max(self.min_score, RELATIVE_FLOOR * float(scores[0][0]))
        for index, score in zip(ids[0], scores[0], strict=True):
            passage = self._passages[int(index)]
            if float(score) < floor or passage.path in seen:
                continue
            seen.add(passage.path)  # one passage per document: the best one
            sources.append(
                Source(
                    title=passage.title,
                    location=str(passage.path),
                    snippet=passage.text[:500],
                    score=round(float(score), 4),
                )
            )
            if len(sources) == limit:
                break
        return sources

    async def search(self, query: str, limit: int) -> list[Source]:
        return await asyncio.to_thread(self._search, query, limit)
