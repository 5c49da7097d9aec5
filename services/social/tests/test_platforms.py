"""Counting as each platform counts, the last-resort cut and the final check."""

import pytest

from pressroom_contracts.jobs import Platform
from pressroom_contracts.platforms import LINK_PLACEHOLDER, LINK_ROOM, count
from pressroom_social.copywriter import social_completed
from pressroom_social.platforms import RULES, PostOverLimit, ensure_within, fit

X = Platform.x


def test_the_limits_are_the_platforms_real_ones():
    limits = {platform: rules.limit for platform, rules in RULES.items()}
    assert limits == {
        Platform.x: 280,
        Platform.linkedin: 3000,
        Platform.threads: 500,
        Platform.facebook: 63206,
        Platform.instagram: 2200,
    }


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("hello", 5),
        ("", 0),
        ("日本", 4),  # CJK: 2 each
        ("한국어", 6),
        ("Привет", 6),  # Cyrillic is below U+10FF: 1 each
        ("\u201cquotes\u201d \u2014 and dashes \u2013 \u2018too\u2019", 29),  # U+2010-U+201F weigh 1
        ("…", 2),  # U+2026 is outside the light ranges
        ("👍", 2),
        ("👍🏽", 2),  # emoji with a skin tone
        ("❤️", 2),  # emoji with its presentation selector
        ("👩‍💻", 2),  # a ZWJ sequence
        ("👨‍👩‍👧‍👦", 2),
        ("🇺🇸", 2),  # a flag
        ("1️⃣", 2),  # a keycap
        ("a\ufe0f", 3),  # a selector after a letter is not an emoji
        ("cafe\u0301", 4),  # NFC: e + combining accent is one character
    ],
)
def test_x_weighs_characters_like_twitter_text(text, weight):
    assert count(X, text) == weight


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("https://example.com/a/very/long/path/indeed", 23),
        ("see https://example.com/a/very/long/path/indeed", 4 + 23),
        ("http://a.co", 23),  # shorter than 23 still weighs 23
        ("(https://example.com/x).", 1 + 23 + 2),  # punctuation after a link is text
        ("http://localhost:8000/a/very/long/path", 38),  # no real domain: X does not link it
        (LINK_PLACEHOLDER, 23),
        (f"Read it: {LINK_PLACEHOLDER}", 9 + 23),
        ("visit example.com/page", 6 + 23),  # X links a domain without a protocol
        ("ASP.NET", 23),  # it may be a link (real TLD): counted as one
        ("Node.js and socket.io", 21),  # a short two-part domain without a path: not linked
        ("mail me@example.com", 19),  # an address is not a link
    ],
)
def test_x_weighs_every_link_23(text, weight):
    assert count(X, text) == weight


def test_other_platforms_count_utf16_units_and_keep_room_for_the_link():
    assert count(Platform.linkedin, "日本") == 2
    assert count(Platform.linkedin, "👍") == 2  # outside the BMP: two UTF-16 units
    assert count(Platform.threads, "cafe\u0301") == 4
    assert count(Platform.threads, f"Read it: {LINK_PLACEHOLDER}") == 9 + LINK_ROOM
    assert count(Platform.linkedin, "https://example.com/a/very/long/path") == 36


def test_fit_cuts_at_a_word_boundary_with_an_ellipsis():
    assert fit(X, "alpha beta gamma delta", limit=13) == "alpha beta…"


def test_fit_prefers_a_whole_sentence_near_the_end():
    text = "Solar panels got cheap. Batteries store the surplus for the evening. " * 10
    cut = fit(X, text)
    assert count(X, cut) <= 280
    assert cut.endswith("evening.") or cut.endswith("cheap.")


def test_fit_cuts_text_without_spaces_and_weighs_cjk_double():
    cut = fit(X, "太陽光パネルは安くなった" * 40)
    assert 270 <= count(X, cut) <= 280
    cut = fit(X, "太陽光パネルは安くなった。" * 40)
    assert cut.endswith("。") and count(X, cut) <= 280


def test_fit_never_goes_over_with_emoji_and_links():
    text = " ".join(["🚀 solar https://example.com/page 👩‍💻 日本"] * 40)
    for limit in (1, 2, 23, 50, 280):
        assert count(X, fit(X, text, limit)) <= limit


def test_a_post_over_the_limit_is_refused():
    assert ensure_within(X, "x" * 280) == 280
    with pytest.raises(PostOverLimit, match="281 characters: the limit is 280"):
        ensure_within(X, "x" * 281)
    with pytest.raises(PostOverLimit):
        ensure_within(X, "日" * 141)  # 141 characters, but X weighs them 282
    with pytest.raises(PostOverLimit):
        social_completed(Platform.threads, 1, "y" * 501)
    with pytest.raises(PostOverLimit):  # every part of a thread is checked
        social_completed(X, 1, "a\n\nb", parts=["a", "b" * 281])


def test_the_payload_says_how_long_the_post_is():
    post = social_completed(X, 2, f"日本 {LINK_PLACEHOLDER}")
    assert (post.characters, post.limit, post.version, post.parts) == (4 + 1 + 23, 280, 2, [])
    thread = social_completed(X, 1, "a\n\nbb", parts=["a", "bb"])
    assert thread.characters == 2 and thread.parts == ["a", "bb"]
