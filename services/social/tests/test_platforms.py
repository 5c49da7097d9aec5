import pytest

from pressroom_contracts.jobs import Platform
from pressroom_social.platforms import LINK_PLACEHOLDER, RULES, count, fit
from pressroom_social.posts import compose


def test_x_counts_links_as_23_and_wide_characters_as_2():
    assert count(Platform.x, "hello") == 5
    assert count(Platform.x, "see https://example.com/a/very/long/path/indeed") == 4 + 23
    assert count(Platform.x, LINK_PLACEHOLDER) == 23
    assert count(Platform.x, "日本") == 4
    assert count(Platform.linkedin, "日本") == 2


@pytest.mark.parametrize("platform", list(Platform))
def test_an_overlong_answer_is_shortened_within_the_limit(platform):
    answer = "Remote work changes everything about teams. " * 2000
    post = compose(platform, answer, "The future of remote work")
    assert count(platform, post) <= RULES[platform].limit
    assert LINK_PLACEHOLDER in post
    assert "#" in post


def test_fit_cuts_at_a_word_boundary_with_an_ellipsis():
    text = fit(Platform.x, "alpha beta gamma delta", limit=13)
    assert text == "alpha beta…"


def test_a_short_answer_is_kept_and_gets_link_and_hashtags():
    post = compose(Platform.x, "Why remote teams win. {link}", "Remote work")
    assert post.startswith("Why remote teams win.")
    assert post.count(LINK_PLACEHOLDER) == 1
    assert "#Remote" in post
