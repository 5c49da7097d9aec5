"""The embedded research provider: BM25 (bm25s) over a folder of the user's markdown, text and PDF files.

Markdown and text files are split into paragraphs, PDFs into pages (pypdf's text extraction): each is
a passage that can become a source. A source names its document by its place in the folder
(`guides/heat-pumps.pdf#page=4`), never by a path on the server. A file that cannot be read (a broken or encrypted PDF, say) is
skipped with a warning; it never fails the stage.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import bm25s
from pypdf import PdfReader

from pressroom_contracts.events import Source
from pressroom_runtime.cpu import off_loop
from pressroom_runtime.logs import get_logger

from ..sources import SNIPPET_CHARS, snippet, unread_user_sources

log = get_logger(__name__)

TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
PDF_SUFFIXES = {".pdf"}
SUFFIXES = TEXT_SUFFIXES | PDF_SUFFIXES
MIN_PASSAGE_CHARS = 40
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Passage:
    path: Path
    title: str
    text: str
    page: int | None = None  # 1-based, for PDFs
    name: str = ""  # the document's place in the folder, e.g. guides/heat-pumps.pdf

    @property
    def location(self) -> str:
        name = self.name or self.path.name
        return f"{name}#page={self.page}" if self.page else name


def _title_from_name(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").title()


def _title(path: Path, text: str) -> str:
    heading = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    return heading.group(1).strip() if heading else _title_from_name(path)


def _text_passages(path: Path) -> list[Passage]:
    """Paragraph-sized passages, so a snippet is the part of a document that matched."""
    text = path.read_text(encoding="utf-8", errors="replace")
    title = _title(path, text)
    passages = []
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(block.split())
        if len(block) >= MIN_PASSAGE_CHARS and not block.startswith("#"):
            passages.append(Passage(path=path, title=title, text=block))
    return passages


def _pdf_passages(path: Path) -> list[Passage]:
    """One passage per page with text. Scanned pages (images only) have none and are left out."""
    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        raise ValueError("the PDF is encrypted")
    meta_title = reader.metadata.title if reader.metadata else None
    title = meta_title.strip() if isinstance(meta_title, str) and meta_title.strip() else None
    passages = []
    for number, page in enumerate(reader.pages, 1):
        try:
            text = " ".join((page.extract_text() or "").split())
        except Exception as exc:  # one bad page does not lose the rest of the document
            log.warning("skipped an unreadable PDF page", path=str(path), page=number, error=repr(exc))
            continue
        if len(text) >= MIN_PASSAGE_CHARS:
            passages.append(Passage(path=path, title=title or _title_from_name(path), text=text, page=number))
    if not passages:
        log.warning("no text found in PDF (scanned images need OCR first)", path=str(path))
    return passages


def load_passages(folder: Path) -> list[Passage]:
    passages: list[Passage] = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()):
        try:
            found = _pdf_passages(path) if path.suffix.lower() in PDF_SUFFIXES else _text_passages(path)
            name = path.relative_to(folder).as_posix()
            passages.extend(replace(p, name=name) for p in found)
        except Exception as exc:
            log.warning("skipped an unreadable knowledge-base file", path=str(path), error=repr(exc))
    return passages


def best_excerpt(text: str, query: str, size: int = SNIPPET_CHARS) -> str:
    """The part of a long passage (a PDF page) holding most of the query's words, from a sentence start
    near the first of them."""
    if len(text) <= size:
        return text
    terms = {w.lower() for w in _WORD.findall(query) if len(w) > 2}
    starts = [0] + [m.end() for m in re.finditer(r"[.!?]\s+", text)]
    best, best_key = 0, (-1, 0)
    for start in starts:
        words = [(m.start(), m.group().lower()) for m in _WORD.finditer(text, start, start + size)]
        found = {w for _, w in words if w in terms}
        first = min((pos for pos, w in words if w in terms), default=start + size)
        key = (len(found), start - first)  # most query words, then the least lead-in before them
        if key > best_key:
            best, best_key = start, key
    excerpt = snippet(text[best:], size - (1 if best else 0))
    return excerpt if best == 0 else "…" + excerpt


class KnowledgeBase:
    name = "knowledge-base"
    search_model: str | None = None
    include_model: str | None = None

    def __init__(self, folder: Path, min_score: float) -> None:
        self.folder = folder
        self.min_score = min_score
        self._passages: list[Passage] = []
        self._retriever: bm25s.BM25 | None = None
        self._signature: tuple[tuple[str, float, int], ...] = ()
        self._indexing = threading.Lock()

    def describe(self, query: str) -> str:
        return f"Searching the knowledge base for “{query}”"

    async def close(self) -> None:
        return None

    async def include(self, urls: list[str]) -> list[Source]:
        """No web access here: the URLs are kept as the user gave them, unread."""
        return unread_user_sources(urls, "its content was not fetched (no web research provider is set up)")

    def _current_signature(self) -> tuple[tuple[str, float, int], ...]:
        if not self.folder.is_dir():
            return ()
        signature = []
        for path in self.folder.rglob("*"):
            if path.suffix.lower() in SUFFIXES:
                try:
                    stat = path.stat()
                except OSError:
                    continue
                signature.append((str(path), stat.st_mtime, stat.st_size))
        return tuple(sorted(signature))

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
        with self._indexing:  # searches run in threads, one per job: one (re)builds, the others wait
            self._index()
            passages, retriever = self._passages, self._retriever
        if retriever is None:
            return []
        tokens = bm25s.tokenize([query], show_progress=False)
        if not tokens.vocab:  # only stopwords: nothing to look for
            return []
        k = min(limit, len(passages))
        ids, scores = retriever.retrieve(tokens, k=k, show_progress=False)
        sources: list[Source] = []
        # Every passage over the absolute floor is a candidate (several of one document, too):
        # relevance.py judges them against the topic and keeps one per document.
        for index, score in zip(ids[0], scores[0], strict=True):
            passage = passages[int(index)]
            if float(score) < self.min_score:
                break
            sources.append(
                Source(
                    title=f"{passage.title} (page {passage.page})" if passage.page else passage.title,
                    location=passage.location,
                    snippet=best_excerpt(passage.text, query),
                    score=round(float(score), 4),
                )
            )
            if len(sources) == limit:
                break
        return sources

    async def search(self, query: str, limit: int) -> list[Source]:
        return await off_loop(self._search, query, limit)
