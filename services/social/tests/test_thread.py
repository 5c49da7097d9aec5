"""An X thread: the model's posts split and numbered, each within 280 as X counts, at most six."""

from pressroom_contracts.jobs import Platform
from pressroom_contracts.platforms import LINK_PLACEHOLDER, count
from pressroom_social.thread import MAX_PARTS, layout, split_posts

X = Platform.x
SUFFIX = "{link} #Solar"


def test_posts_are_split_at_blank_lines_rules_and_numbers():
    answer = "1/ First post.\n\n2/5 Second post.\n---\nThird post. (3/5)\n4. Fourth post\nPost 5: Fifth."
    assert split_posts(answer) == ["First post.", "Second post.", "Third post.", "Fourth post", "Fifth."]


def test_numbers_that_are_text_stay():
    assert split_posts("24/7 support matters.\n\nWe run 365 days.") == [
        "24/7 support matters.",
        "We run 365 days.",
    ]


def test_links_leave_the_posts_and_close_the_thread():
    thread = layout(split_posts("Solar is cheap: https://made.up/x\n\nRead more {link}"), SUFFIX)
    assert thread.parts == ["1/2 Solar is cheap:", "2/2 Read more {link} #Solar"]


def test_parts_are_numbered_and_each_fits_280():
    long_post = "Batteries keep the evening lit with stored sunshine. " * 12
    thread = layout(["Solar got cheap.", long_post, "That is the future."], SUFFIX)
    total = len(thread.parts)
    assert 4 <= total <= MAX_PARTS and thread.complete
    for number, part in enumerate(thread.parts, 1):
        assert part.startswith(f"{number}/{total} ")
        assert count(X, part) <= 280
    assert thread.parts[-1].endswith(SUFFIX)
    assert thread.text == "\n\n".join(thread.parts)
    assert thread.characters == max(count(X, p) for p in thread.parts)


def test_a_thread_too_long_for_six_parts_is_cut_and_says_so():
    posts = [f"Post {i}: " + "solar energy is great for every home " * 7 for i in range(10)]
    thread = layout(posts, SUFFIX)
    assert len(thread.parts) == MAX_PARTS and not thread.complete
    assert all(count(X, p) <= 280 for p in thread.parts)
    assert thread.parts[-1].endswith(SUFFIX)


def test_short_posts_are_packed_when_there_are_too_many():
    thread = layout([f"Point {i}." for i in range(12)], SUFFIX)
    assert thread.complete and len(thread.parts) == 1
    assert thread.parts[0].startswith("Point 0.") and thread.parts[0].endswith(SUFFIX)


def test_cjk_and_emoji_posts_are_weighed_as_x_does():
    post = "太陽光発電は家庭に最適です。🌞" * 30
    thread = layout([post], SUFFIX)
    assert thread.complete and len(thread.parts) > 1
    assert all(count(X, p) <= 280 for p in thread.parts)
    assert LINK_PLACEHOLDER in thread.parts[-1]
