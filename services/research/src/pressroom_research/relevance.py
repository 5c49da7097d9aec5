"""Which found sources are about the topic: the filters every provider's results go through.

A source is kept when
- its title and text hold enough of the topic's content words (half of them, at most three needed:
  a folder's best BM25 match for "rooftop solar for small businesses" that only shares "small" is
  not about it), and
- it scores at least RELATIVE_CUT of the best result (scores are not comparable across queries, but
  within one answer a far weaker match is noise), and
- it is not a near-duplicate of a better one (most of its word triples already seen), nor another
  passage of a document already kept (one source per document or page).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from pressroom_contracts.events import Source
from pressroom_runtime.words import content_words, covered

MIN_SHARE = 0.5
MAX_REQUIRED = 3
RELATIVE_CUT = 0.4
NEAR_DUPLICATE = 0.6  # Jaccard similarity of word triples
_WORD = re.compile(r"\w+")


@dataclass
class Selection:
    kept: list[Source] = field(default_factory=list)
    off_topic: list[Source] = field(default_factory=list)
    duplicates: list[Source] = field(default_factory=list)


def topic_words(topic: str) -> list[str]:
    """The topic's content words; every word of it when it has none (a topic such as "AI")."""
    return list(dict.fromkeys(content_words(topic))) or [w.lower() for w in _WORD.findall(topic)]


def required(words: list[str]) -> int:
    return min(MAX_REQUIRED, max(1, math.ceil(len(words) * MIN_SHARE)))


def about(topic: str, source: Source) -> bool:
    words = topic_words(topic)
    text = content_words(f"{source.title} {source.snippet}") or [
        w.lower() for w in _WORD.findall(source.snippet)
    ]
    return len(covered(words, text)) >= required(words)


def _triples(text: str) -> set[tuple[str, ...]]:
    words = [w.lower() for w in _WORD.findall(text)]
    return {tuple(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def near_duplicate(a: Source, b: Source) -> bool:
    x, y = _triples(a.snippet), _triples(b.snippet)
    return bool(x and y) and len(x & y) / len(x | y) >= NEAR_DUPLICATE


def select(topic: str, candidates: list[Source], limit: int) -> Selection:
    """The best `limit` sources about `topic`, best first; what was left out, and why."""
    selection = Selection()
    ranked = sorted(candidates, key=lambda s: s.score, reverse=True)
    best = ranked[0].score if ranked else 0.0
    for source in ranked:
        if source.score < RELATIVE_CUT * best or not about(topic, source):
            selection.off_topic.append(source)
        elif any(source.location == kept.location or near_duplicate(source, kept) for kept in selection.kept):
            selection.duplicates.append(source)
        elif len(selection.kept) < limit:
            selection.kept.append(source)
    return selection
