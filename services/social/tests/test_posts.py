"""A model's answer shaped into a post: clean text, one link placeholder, hashtags, within the limit."""

import pytest

from pressroom_contracts.jobs import Platform
from pressroom_contracts.platforms import LINK_PLACEHOLDER, count
from pressroom_social.copywriter import ask_for
from pressroom_social.platforms import RULES
from pressroom_social.posts import clean, complete_sentences, compose, hashtags, prepare, usable

X = Platform.x


@pytest.mark.parametrize("platform", list(Platform))
def test_an_overlong_answer_is_cut_within_the_limit(platform):
    answer = "Remote work changes everything about teams. " * 2000
    draft = prepare(platform, answer, "The future of remote work")
    assert draft.over
    post = draft.fitted().text
    assert count(platform, post) <= RULES[platform].limit
    assert post.count(LINK_PLACEHOLDER) == 1
    assert "#" in post


def test_a_short_answer_is_kept_and_gets_link_and_hashtags():
    draft = prepare(X, "Why remote teams win.", "Remote work")
    assert not draft.over
    assert draft.text == "Why remote teams win. {link} #RemoteWork #Remote"


def test_the_models_link_placement_and_hashtags_are_kept():
    post = compose(X, "Solar is cheap now: {link} #Solar", "Rooftop solar")
    assert post == "Solar is cheap now: {link} #Solar #RooftopSolar"


def test_an_invented_address_becomes_the_placeholder_and_there_is_one_link():
    post = compose(X, "Read it at https://made.up/blog. Or here: {link} or [link]", "Solar")
    assert post.startswith("Read it at {link}. Or here:")
    assert post.count(LINK_PLACEHOLDER) == 1
    assert "made.up" not in post


def test_a_cut_that_would_lose_the_link_moves_it_to_the_end():
    answer = "Read {link} now. " + "Solar panels are cheaper every single year. " * 20
    post = compose(X, answer, "Solar")
    assert post.count(LINK_PLACEHOLDER) == 1 and count(X, post) <= 280


def test_preamble_markdown_and_quotes_are_removed():
    answer = 'Here\'s a post for X:\n\n"**Solar** is [cheap](https://x.y/z) now. ## not a heading"'
    assert clean(answer) == "Solar is cheap now. ## not a heading"
    assert clean("```\nSolar.\n```") == "Solar."
    assert clean("One.\n\n\n\nTwo.  Three") == "One.\n\nTwo. Three"


def test_paragraphs_are_kept_and_the_suffix_follows_a_blank_line():
    post = compose(Platform.linkedin, "A hook.\n\nA second paragraph.", "Heat pumps")
    assert post == "A hook.\n\nA second paragraph.\n\n{link} #HeatPumps #Pumps #Heat"


def test_hashtags_from_the_topic():
    assert hashtags("The future of remote work", 3) == ["#FutureRemoteWork", "#Future", "#Remote"]
    assert hashtags("Künstliche Intelligenz im Alltag", 2) == ["#Intelligenz", "#Künstliche"]
    assert hashtags("AI", 2) == []
    # Markup and addresses in a topic are not words of it.
    hostile = "Solar panels <script>alert(1)</script> visit http://evil.example.com/free-panels"
    assert hashtags(hostile, 4) == ["#SolarPanelsVisit", "#Panels", "#Solar", "#Visit"]


def test_an_answer_cut_by_the_token_cap_ends_at_its_last_sentence():
    assert (
        complete_sentences("One sentence. Two sentences here. And a thi")
        == "One sentence. Two sentences here."
    )
    assert complete_sentences("Nothing ends here") == "Nothing ends here"


def test_the_model_is_asked_for_plain_characters_that_fit_the_weighted_room():
    assert ask_for(X, "plain text", 200) == 180
    assert ask_for(X, "日本語" * 100, 200) == 90  # CJK weighs 2 on X: half as many characters
    assert ask_for(Platform.linkedin, "日本語" * 100, 200) == 180


def test_the_blogs_citation_markers_do_not_reach_a_post():
    assert (
        clean("Panels pay for themselves [1]. Storage helps [2][3].")
        == "Panels pay for themselves. Storage helps."
    )


@pytest.mark.parametrize(
    ("answer", "post"),
    [
        # Gemma 3 270M's posts, as they were published (LinkedIn showed "*Introduction*" literally).
        pytest.param("*Benefits*: It is one.", "Benefits: It is one.", id="single asterisks"),
        pytest.param(
            "*Introduction*\n\nSolar _really_ helps.",
            "Introduction\n\nSolar really helps.",
            id="single markers",
        ),
        pytest.param(
            "Use my_var_name: 2 * 3 * 4 panels.",
            "Use my_var_name: 2 * 3 * 4 panels.",
            id="no emphasis inside a word or around spaces",
        ),
        pytest.param(
            "Solar pays off.\n\nSolar pays off!\n\nsolar pays off.\n\nSolar  pays off.\n\nSolar pays off.",
            "Solar pays off.",
            id="a paragraph repeated five times is said once",
        ),
        pytest.param(
            "Go solar now. #SolarPower #solarpower #SOLARPOWER",
            "Go solar now. #SolarPower",
            id="a hashtag once, whatever its case",
        ),
        pytest.param(
            "Go solar now. #small-scalesolar #off-grid-life",
            "Go solar now. #smallscalesolar #offgridlife",
            id="a hyphen does not break a hashtag",
        ),
    ],
)
def test_markdown_repeats_and_hashtags_are_cleaned(answer: str, post: str) -> None:
    assert clean(answer) == post


@pytest.mark.parametrize(
    ("answer", "says_something"),
    [
        pytest.param("(short version) {link} #Solar #Energy", False, id="an aside, a link and hashtags"),
        pytest.param("...\nSolar Energy\n\n{link}", False, id="a label"),
        pytest.param("   \n", False, id="nothing"),
        pytest.param("Go solar now! {link} #Solar", True, id="a short post"),
        pytest.param("屋顶太阳能 {link}", True, id="Chinese"),
    ],
)
def test_a_post_of_junk_says_nothing(answer: str, says_something: bool) -> None:
    assert usable(clean(answer)) is says_something
