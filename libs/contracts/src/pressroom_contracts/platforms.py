"""How each platform counts a post's length, and its limit: the one rule the social stage writes by
and the gateway checks edits by.

X counts as its twitter-text library does (config v3): the text is NFC-normalised; code points in
U+0000-U+10FF, U+2000-U+200D, U+2010-U+201F and U+2032-U+2037 weigh 1, every other one 2 (CJK,
most emoji); an emoji sequence (a flag, a keycap, an emoji with its skin tone or presentation
selector, a ZWJ family) weighs 2 as a whole; every link weighs 23, as t.co makes it.

Where this cannot know what X will do it counts the larger of the two possibilities, so a post
that passes here is never over the limit on X: a domain without "https://" (X links some of them,
which then weigh 23), a bare © or ®. The other platforms count like their web composers
(JavaScript's String.length: UTF-16 code units, so an emoji outside the BMP counts 2).

The {link} placeholder is replaced by the blog's address when the post is published: on X it
weighs 23 like any link; elsewhere it keeps room for an address of up to LINK_ROOM characters.
"""

from __future__ import annotations

import re
import unicodedata

from .jobs import Platform

# Where the post's link goes; the blog's address replaces it when the post is published.
LINK_PLACEHOLDER = "{link}"
X_URL_LENGTH = 23  # X shortens every link to t.co: it always weighs 23
LINK_ROOM = 100  # other platforms count the address itself: room kept for it

LIMITS: dict[Platform, int] = {
    Platform.x: 280,
    Platform.linkedin: 3000,
    Platform.threads: 500,
    Platform.facebook: 63206,
    Platform.instagram: 2200,
}


# ---- X's weighted length -------------------------------------------------------------------------------

_X_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))

# Extended_Pictographic, generously: a code point that starts an emoji (sequence).
_PICT = (
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328\u23cf\u23e9-\u23f3"
    "\u23f8-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u27bf\u2934\u2935\u2b05-\u2b07"
    "\u2b1b\u2b1c\u2b50\u2b55\u3030\u303d\u3297\u3299"
    "\U0001f000-\U0001f1e5\U0001f200-\U0001f3fa\U0001f400-\U0001faff"
)
_MODIFIER = "(?:\ufe0f|[\U0001f3fb-\U0001f3ff])?"
_EMOJI = (
    "[\U0001f1e6-\U0001f1ff]{2}"  # a flag: two regional indicators
    "|[#*0-9]\ufe0f?\u20e3"  # a keycap
    f"|[{_PICT}]{_MODIFIER}(?:[\U000e0020-\U000e007e]+\U000e007f)?(?:\u200d[{_PICT}]{_MODIFIER})*"
)
_URL = r"https?://[^\s<>\"'`]+"
# twitter-text links an ASCII domain without a protocol unless a letter, digit, @, #, $, -, _, . or /
# comes just before it.
_DOMAIN = (
    r"(?<![A-Za-z0-9@\uff20#\uff03$_./-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}"
    r"(?![A-Za-z0-9@-])(?::\d{1,5})?(?:/[^\s<>\"'`]*)?"
)
_X_TOKEN = re.compile(
    rf"(?P<link>{re.escape(LINK_PLACEHOLDER)})|(?P<url>{_URL})|(?P<domain>{_DOMAIN})|(?P<emoji>{_EMOJI})",
    re.IGNORECASE,
)
# Characters a link does not end with: they are text after it.
_URL_TRAILING = re.compile(r"[.,;:!?'\")\]}>…*]+$")
_HOST = re.compile(r"^(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}$")


def _x_char(char: str) -> int:
    code = ord(char)
    return 1 if any(low <= code <= high for low, high in _X_LIGHT) else 2


def _x_chars(text: str) -> int:
    return sum(_x_char(c) for c in text)


def _x_link(url: str, with_protocol: bool) -> int:
    literal = _x_chars(url)
    if with_protocol:
        host = re.split(r"[/?#:]", url.split("://", 1)[1], maxsplit=1)[0]
        return X_URL_LENGTH if _HOST.match(host) else literal  # no real domain: X leaves it as text
    host, _, path = url.partition("/")
    labels = host.split(":")[0].split(".")
    if not path and len(labels) == 2 and len(labels[-1]) == 2 and host.lower() != "t.co":
        return literal  # "Node.js", "socket.io": X does not link a short ccTLD domain without a path
    return max(literal, X_URL_LENGTH)  # X links it if the TLD is real: count the larger


def x_weight(text: str) -> int:
    """The weighted length X gives `text` (see the module's docstring)."""
    text = unicodedata.normalize("NFC", text)
    total, position = 0, 0
    for match in _X_TOKEN.finditer(text):
        total += _x_chars(text[position : match.start()])
        token, kind = match.group(), match.lastgroup
        position = match.end()
        if kind == "link":
            total += X_URL_LENGTH
        elif kind == "emoji":
            total += 2
        else:
            trailing = _URL_TRAILING.search(token)
            if trailing:  # "(see example.com)." : the link ends before the punctuation
                token = token[: trailing.start()]
                total += _x_chars(trailing.group())
            total += _x_link(token, with_protocol=kind == "url") if token else 0
    return total + _x_chars(text[position:])


def count(platform: Platform, text: str) -> int:
    """Length of `text` as the platform counts it."""
    if platform is Platform.x:
        return x_weight(text)
    text = unicodedata.normalize("NFC", text)
    links = text.count(LINK_PLACEHOLDER)
    text = text.replace(LINK_PLACEHOLDER, "")
    return len(text.encode("utf-16-le")) // 2 + links * LINK_ROOM
