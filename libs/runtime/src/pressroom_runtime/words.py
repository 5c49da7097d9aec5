"""Content words and how much of one text another covers: what research relevance and the publishing
checks (is this citation supported?) both measure.

Language-agnostic on purpose: a content word is a word of four letters or more that is not one of the
frequent function words of the languages below; text in scripts without spaces (Chinese, Japanese) is
read as overlapping character pairs. Words match on a shared stem (a common prefix of all but the
last letter of the shorter one: "pumps" and "pump", "businesses" and "business", not "remote" and
"remove").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"  # kana, CJK ideographs, hangul
_CJK = re.compile(f"[{_CJK_RANGES}]")
# A word of two letters or more; in scripts written without spaces, each character.
_SAID_WORD = re.compile(f"[{_CJK_RANGES}]|[^\\W\\d_{_CJK_RANGES}]{{2,}}")
MIN_LETTERS = 4

# Frequent function words of four letters or more (en, de, fr, es, pt, it, nl): never content.
FUNCTION_WORDS = frozenset(
    """
    about above after again against also among another because been before being below between both
    cannot could does doing down during each either even every from further have having here hers
    herself himself however into itself just many more most much must myself neither never only other
    ought ours ourselves over same several shall should since some such than that their theirs them
    themselves then there these they this those through under until upon very were what when where
    whether which while whom whose will with within without would your yours yourself yourselves
    aber alle allem allen aller alles also andere anderen auch auf aus bist dann darum dass deine
    dein deiner dem den denn der des dessen dich dies diese diesem diesen dieser dieses doch dort
    durch eine einem einen einer eines einige etwas euer eure für gegen gewesen habe haben hatte
    hier hinter ihnen ihre ihrem ihren ihrer jede jedem jeden jeder jedes jene jetzt kann keine
    können machen mehr mein meine mich mir mit muss nach nicht noch nun oder ohne sehr sein seine
    sich sie sind sollte sondern über ueber und uns unser unter viel vom von vor wann warum was weil
    welche wenn wer werden wie wieder wir wird wurde würde zum zur zwischen
    alors aucun aussi autre avant avec avoir bien cela celle celles celui cette ceux chaque comme
    comment dans depuis des donc dont elle elles encore entre être fait faire leur leurs lors mais
    même mêmes nous notre nos pour pourquoi quand quel quelle quelles quels sans selon sera sont
    sous tous tout toute toutes très vers votre vous
    algo algunos ante antes aquel aquella cada como con contra cual cuando desde donde durante ella
    ellos entre esta estas este esto estos hacia hasta más mientras mucho muy nada nosotros otra
    otras otro otros para pero poco porque puede qué quien sido sobre también tanto tener tiene
    todo todos tras una unas unos usted
    aquele aquela assim até com como depois entre essa esse esta este isso isto mais mesmo muito
    nosso onde para pela pelo porque quando qual quem seja sem sobre também todo todos uma umas
    alla alle anche ancora come con dalla dalle degli della delle dello dove essere fra hanno loro
    molto nella nelle nello perché però può quale quando quello questa questo sono sulla sulle tutto
    aan alles andere deze dezelfde door geen heeft hebben hier hoe kunnen maar meer niet omdat onder
    ons ook over veel voor waar wanneer want wat welke werd wordt worden zijn zich zoals
    """.split()
)


def content_words(text: str) -> list[str]:
    """The content words of `text`, lower-cased, in order (repeats kept)."""
    words: list[str] = []
    for match in _WORD.finditer(text.lower()):
        word = match.group()
        if _CJK.search(word):
            chars = [c for c in word if _CJK.match(c)]
            words.extend(a + b for a, b in itertools.pairwise(chars))
        elif len(word) >= MIN_LETTERS and word not in FUNCTION_WORDS:
            words.append(word)
    return words


def said_words(text: str) -> list[str]:
    """The words a reader counts in `text` (function words too): each word of two letters or more, and
    each character of a script written without spaces. What tells a post or an edit from a label."""
    return _SAID_WORD.findall(text)


def same_stem(a: str, b: str) -> bool:
    if a == b:
        return True
    shorter = min(len(a), len(b))
    if shorter < MIN_LETTERS:
        return False
    need = max(MIN_LETTERS, shorter - 1)
    return a[:need] == b[:need]


def covered(wanted: Iterable[str], text_words: Iterable[str]) -> list[str]:
    """The distinct words of `wanted` that `text_words` has (by stem), in the order first wanted."""
    by_prefix: dict[str, list[str]] = {}
    for word in set(text_words):
        by_prefix.setdefault(word[:MIN_LETTERS], []).append(word)
    found: list[str] = []
    for word in dict.fromkeys(wanted):
        if any(same_stem(word, other) for other in by_prefix.get(word[:MIN_LETTERS], ())):
            found.append(word)
    return found


def repeat_key(paragraph: str) -> str:
    """What a paragraph says, case and punctuation aside: two paragraphs with one key say one thing
    (a small model loops on a paragraph)."""
    return " ".join(re.findall(r"\w+", paragraph.lower()))


def without_repeated_paragraphs(text: str) -> str:
    """`text` with each paragraph (blank-line separated) once; a paragraph without a word stays."""
    seen: set[str] = set()
    kept: list[str] = []
    for paragraph in text.split("\n\n"):
        key = repeat_key(paragraph)
        if not key or key not in seen:
            seen.add(key)
            kept.append(paragraph)
    return "\n\n".join(kept)


def counted(n: int, word: str) -> str:
    """ "1 source", "3 sources": what a progress message says of a count (English nouns with a plain -s)."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
