"""The checks every text passes before it is published, each returning the text and what it found:

- `to_markdown`: HTML from the model becomes Markdown (markdownify), or goes when it has none;
- `remove_links`: links research did not return are removed (a Markdown link keeps its words);
- `quote_copies`: 25 or more words copied from a source become a quote with its citation;
- `check_citations`: a `[n]` stays only where its sentence shares real content with source n;
- `detect_language`: the language the text is written in (py3langid), to compare with the one asked.

`check_text` runs them in that order, then `tidy` on what they leave (a removed link or citation leaves
punctuation behind), and reports on the contract's PublishChecks.
"""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from markdownify import markdownify

from pressroom_contracts.events import CopiedPassage, PublishChecks, Source

from .words import content_words, covered

# ---- HTML ------------------------------------------------------------------------------------------------

_TAG = re.compile(r"</?([a-zA-Z][a-zA-Z0-9]*)\b[^<>]*>")
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+\n")


def html_tags(text: str) -> list[str]:
    """The names of the HTML tags in `text`, lower-cased, in order of appearance, once each."""
    return list(dict.fromkeys(m.group(1).lower() for m in _TAG.finditer(text)))


def to_markdown(text: str) -> tuple[str, list[str]]:
    """`text` with its HTML converted to Markdown (a script's or style's content dropped); the tags found.
    Text without tags is returned as it is."""
    tags = html_tags(text)
    if not tags:
        # Entities the model wrote ("&amp;") are read once, as markdownify reads them in HTML; what they
        # spell ("&lt;b&gt;") is HTML like any other.
        text = html.unescape(text)
        tags = html_tags(text)
        if not tags:
            return text, []
    # Line breaks as <br> keep the Markdown around the HTML on its lines; escaping off keeps it as it is.
    converted = markdownify(
        text.replace("\n", "<br>\n"),
        heading_style="ATX",
        bullets="-",
        escape_asterisks=False,
        escape_underscores=False,
        escape_misc=False,
        newline_style="SPACES",
        strip=["img"],
    )
    lines = [line.rstrip() for line in converted.split("\n")]
    converted = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return _TAG.sub("", converted), tags  # anything markdownify let through


# ---- links -----------------------------------------------------------------------------------------------

# An address may hold one level of parentheses: "[x](javascript:alert(1))" is one link, not "x)" left over.
_MD_LINK = re.compile(r"!?\[([^\]\n]*)\]\(\s*<?((?:[^()\s>]|\([^()\s]*\))+)>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?://|www\.)[^>\s]+)>", re.IGNORECASE)
# Also inside parentheses: "(https://invented.example)". A link kept above is met here again, and kept again.
# Without a scheme or www, an address is a common domain followed by a path ("youtube.com/watch?v=…"):
# "Amazon.com" alone is a name, "Next.js/React" is not an address.
_TLD = r"(?:com|org|net|edu|gov|int|info|biz|io|co|ai|app|dev|uk|de|fr|eu|nl|es|it|ch|se|ca|au|us|in|jp)"
# A scheme may follow a word it was glued to ("buildingshttp://…"); a bare "www." or domain may not.
_BARE_URL = re.compile(
    rf"(?:(?<![/\[])https?://|(?<![\w/\[])(?:www\.|\.?(?:[a-z0-9-]+\.)+{_TLD}/))[^\s<>\"')\]]*[^\s<>\"'.,;:!?)\]]"
    r"|(?<![/\[])https?://(?![^\s<>\"')\]])",  # a scheme with no address after it
    re.IGNORECASE,
)
# An address a model broke with spaces ("https: //x.com", "https:// www . x . com"): joined again first,
# then removed (or kept) like any other. Spaces around a dot count only on both sides of it, so the
# full stop ending a sentence ("https:// x.com. Next") is not taken for one.
_SPACED_URL = re.compile(
    r"(?<![\w/])(https?)[ \t]*:[ \t]*/[ \t]*/(?:[ \t]*((?:[a-z0-9-]+(?:\.|[ \t]+\.[ \t]+))+[a-z0-9-]+))?",
    re.IGNORECASE,
)


def _joined(match: re.Match[str]) -> str:
    host = "".join((match.group(2) or "").split())
    return f"{match.group(1)}://{host}"


def _key(url: str) -> str:
    url = re.sub(r"^https?://", "", url.strip(), flags=re.IGNORECASE)
    return re.sub(r"^www\.", "", url, flags=re.IGNORECASE).rstrip("/").lower()


def remove_links(text: str, allowed: list[str]) -> tuple[str, list[str]]:
    """`text` without the links whose address is not in `allowed`; the addresses removed."""
    keys = {_key(url) for url in allowed}
    removed: list[str] = []

    def link(match: re.Match[str]) -> str:
        words, url = match.group(1), match.group(2)
        if _key(url) in keys:
            return match.group(0)
        removed.append(url)
        return words

    def bare(match: re.Match[str]) -> str:
        url = match.group(1) if match.re is _AUTOLINK else match.group(0)
        if _key(url) in keys:
            return match.group(0)
        removed.append(url)
        return ""

    text = _MD_LINK.sub(link, _SPACED_URL.sub(_joined, text))
    text = _AUTOLINK.sub(bare, text)
    text = _BARE_URL.sub(bare, text)
    if removed:
        text = re.sub(r"\(\s*\)", "", text)
        text = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text))
    return text, removed


# ---- verbatim copies -------------------------------------------------------------------------------------

COPY_WORDS = 25
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class Copy:
    source: int  # the [n] of the source copied
    words: int
    text: str


def quote_copies(text: str, sources: list[Source], min_words: int = COPY_WORDS) -> tuple[str, list[Copy]]:
    """`text` with every run of `min_words` or more words copied from a source put in quotes and cited;
    the copies found."""
    copies: list[Copy] = []
    for number, source in enumerate(sources, 1):
        while True:
            words = list(_WORDS.finditer(text))
            theirs = [w.lower() for w in _WORDS.findall(source.snippet)]
            mine = [w.group().lower() for w in words]
            match = difflib.SequenceMatcher(None, mine, theirs, autojunk=False).find_longest_match()
            if match.size < min_words:
                break
            start, end = words[match.a].start(), words[match.a + match.size - 1].end()
            copied = text[start:end]
            if text[max(0, start - 1) : start] == "\u201c":  # quoted already: look no further
                break
            copies.append(Copy(number, match.size, copied))
            cite = "" if re.match(rf"\W{{0,3}}\[{number}\]", text[end:]) else f" [{number}]"
            text = f"{text[:start]}\u201c{copied}\u201d{cite}{text[end:]}"
    return text, copies


# ---- citations -------------------------------------------------------------------------------------------

_CITE = re.compile(r"\s?\[(\d{1,3})\]")
# A sentence with the markers that follow its full stop ("… works. [1]" cites the sentence before).
# A line's end ends one too: "… [4]" on a line of its own is checked like any other.
_SENTENCE = re.compile(r"[^.!?\n\u3002\uff01\uff1f]+(?:[.!?\u3002\uff01\uff1f]+(?:\s?\[\d{1,3}\])*|$)", re.M)
MIN_SHARED = 2  # content words a sentence must share with the source it cites
MIN_SHARE = 0.2  # … and this share of its own content words (or 2 * MIN_SHARED words outright)


def supported(sentence: str, source: Source) -> bool:
    """Whether `sentence` shares real content with `source` (its title and text)."""
    mine = list(dict.fromkeys(content_words(_CITE.sub("", sentence))))
    if not mine:
        return False
    shared = len(covered(mine, content_words(f"{source.title} {source.snippet}")))
    return shared >= 2 * MIN_SHARED or (
        shared >= min(MIN_SHARED, len(mine)) and shared / len(mine) >= MIN_SHARE
    )


def check_citations(text: str, sources: list[Source]) -> tuple[str, list[int], list[int]]:
    """`text` with each `[n]` kept only where it names a source and its sentence is supported by it;
    the numbers kept and the numbers removed (once each, in order)."""
    kept: list[int] = []
    removed: list[int] = []

    def sentence(match: re.Match[str]) -> str:
        part = match.group(0)

        def marker(cite: re.Match[str]) -> str:
            number = int(cite.group(1))
            if 1 <= number <= len(sources) and supported(part, sources[number - 1]):
                kept.append(number)
                return cite.group(0)
            removed.append(number)
            return ""

        return _CITE.sub(marker, part)

    checked = _SENTENCE.sub(sentence, text)
    return checked, sorted(set(kept)), list(dict.fromkeys(removed))


# ---- language --------------------------------------------------------------------------------------------

_MARKUP = re.compile(r"\[\d+\]|\{link\}|#\w+|https?://\S+|[#*_>`\[\]()|-]")
MIN_LANGUAGE_WORDS = 5


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> tuple[str, float] | None:
    """The ISO 639-1 code of the language `text` is written in and the identifier's confidence; None
    for a text too short to tell."""
    plain = " ".join(_MARKUP.sub(" ", text).split())
    if len(plain.split()) < MIN_LANGUAGE_WORDS and len(plain) < 20:
        return None
    language, probability = _identifier().classify(plain)
    return str(language), float(probability)


def same_language(requested: str, detected: str) -> bool:
    """A BCP 47 tag ("pt-BR") against a detected ISO 639-1 code ("pt"); Norwegian's variants are one."""
    wanted = requested.split("-")[0].lower()
    norwegian = {"no", "nb", "nn"}
    return wanted == detected or (wanted in norwegian and detected in norwegian)


# ---- what a person reads of a short text ---------------------------------------------------------------

_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def readable(text: str) -> str:
    """`text` without markup and addresses: what a topic gives keywords and hashtags from (a topic with
    "<script>…</script>" or "http://evil.example/free" in it made tags of "script" and "http")."""
    text = _TAG.sub(" ", _SCRIPT.sub(" ", text))
    text, _ = remove_links(text, [])
    return " ".join(text.split())


# ---- tidy ------------------------------------------------------------------------------------------------

_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad]")  # zero-width space, word joiner, BOM, soft hyphen
_HASHES_TWICE = re.compile(r"^([ \t]*#{1,6})[ \t]+(?:#{1,6}[ \t]+)+", re.M)  # "## # Part 5"
# A line with no word: "203567", "..", "(2)", ".: ", "1.: ", "- ...". Or an ellipsis and one word at most
# among separators, what a removed address leaves of a reference: "... | Source / ".
_WORDLESS_LINE = re.compile(
    r"^[ \t]*(?:[-*+>][ \t]+)?[\d.,;:!?()\u2026|/ \t\u00a0]+$\n?"
    r"|^[ \t]*(?:\.{2,}|\u2026)[^\w\n]*(?:\w+[ \t|/:,;\-\u2013\u2014]*)?$\n?",
    re.M,
)
_SPACE_BEFORE_STOP = re.compile(r"[ \t]+([.,])(?=\s|$)")  # "bills ." (not ";:!?": French spaces those)
_COMMA_BEFORE_STOP = re.compile(r"[,;:][ \t]*(?=[.!?](?:\s|$))")  # "as,." "bills, ."
_COMMAS = re.compile(r",(?:[ \t]*,)+")


_FENCED = re.compile(r"^[ \t]*```.*?^[ \t]*```[ \t]*$", re.M | re.S)


def tidy(text: str) -> str:
    """`text` without what a model's junk or the checks' removals leave behind: invisible characters,
    a heading's second run of hashes, lines without a word, punctuation left alone ("as,." "bills ,"),
    runs of blank lines. Clean text comes back as it is, and code blocks are left alone."""
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n"))
    parts = _FENCED.split(text)
    code = _FENCED.findall(text)
    tidied = [_tidy_prose(part) for part in parts]
    text = "".join(p + c for p, c in zip(tidied, [*code, ""], strict=True))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _tidy_prose(text: str) -> str:
    text = _HASHES_TWICE.sub(r"\1 ", text)
    text = _WORDLESS_LINE.sub("", text)
    return _COMMAS.sub(",", _COMMA_BEFORE_STOP.sub("", _SPACE_BEFORE_STOP.sub(r"\1", text)))


# ---- all of them -----------------------------------------------------------------------------------------


def check_text(text: str, sources: list[Source], language: str) -> tuple[str, PublishChecks]:
    """`text` as it may be published, and what the checks found: HTML, links research did not return,
    long copies, unsupported citations (against `sources`, numbered from 1), and its language."""
    text, tags = to_markdown(text)
    text, links = remove_links(text, [s.location for s in sources])
    text, copies = quote_copies(text, sources)
    text, _, removed = check_citations(text, sources)
    text = tidy(text)
    return text, PublishChecks(
        html_tags=tags,
        removed_links=links,
        removed_citations=removed,
        copied_passages=[CopiedPassage(source=c.source, words=c.words, excerpt=c.text) for c in copies],
        **language_report(text, language),
    )


def language_report(text: str, language: str) -> dict[str, object]:
    """The language fields of PublishChecks for `text`, written for `language`."""
    detected = detect_language(text)
    if detected is None:
        return {"language": language}
    code, confidence = detected
    return {
        "language": language,
        "detected_language": code,
        "language_confidence": round(confidence, 3),
        "language_matches": same_language(language, code),
    }
