"""Drafting against the scripted OpenAI-compatible server, through the real openai SDK."""

import pytest

from pressroom_runtime.llm import Prompt, TextModel
from pressroom_runtime.settings import LLMProfile
from pressroom_writer.drafting import MAX_ROUNDS, draft

PROMPT = Prompt(system="sys", user="Write a post.", document="# Title\n\n")


def model(llm, profile: LLMProfile) -> TextModel:
    return llm.text_model(profile)


async def test_pieces_stream_with_offsets_that_add_up(scripted_llm):
    scripted_llm.reply("Solar panels are getting cheaper every year, and homes benefit. " * 20)
    seen: list[tuple[int, str]] = []

    async def on_piece(offset: int, text: str) -> None:
        seen.append((offset, text))

    text, usage = await draft(
        model(scripted_llm, LLMProfile.chat), PROMPT, target_words=50, max_tokens=500, on_piece=on_piece
    )

    assert len(seen) > 1
    rebuilt = ""
    for offset, piece in seen:
        assert offset == len(rebuilt)
        rebuilt += piece
    assert rebuilt.strip() == text
    assert usage.output_tokens > 0 and len(scripted_llm.requests) == 1


async def test_a_base_model_that_stops_early_is_asked_to_continue(scripted_llm):
    scripted_llm.reply("Too short.")

    async def ignore(offset: int, text: str) -> None:
        pass

    text, _ = await draft(
        model(scripted_llm, LLMProfile.completion), PROMPT, target_words=300, max_tokens=900, on_piece=ignore
    )

    assert len(scripted_llm.requests) == MAX_ROUNDS
    assert scripted_llm.requests[1].prompt.endswith("# Title\n\nToo short.\n\n")
    assert text == "\n\n".join(["Too short."] * MAX_ROUNDS)


async def test_a_chat_model_is_asked_once(scripted_llm):
    scripted_llm.reply("Too short.")

    async def ignore(offset: int, text: str) -> None:
        pass

    await draft(
        model(scripted_llm, LLMProfile.chat), PROMPT, target_words=300, max_tokens=900, on_piece=ignore
    )
    assert len(scripted_llm.requests) == 1


@pytest.mark.parametrize(
    ("rounds", "text"),
    [
        # Gemma 3 270M stopped mid-sentence; the next round was published after a paragraph break:
        # "harnessing this source of\n\npower generation", "install traditional\n\nbatteries".
        pytest.param(
            ["Homes are harnessing this source of", "power generation to improve lives.", "More."],
            "Homes are harnessing this source of power generation to improve lives.\n\nMore.",
            id="mid-sentence: a space",
        ),
        pytest.param(
            ["Few install traditional", " batteries on their rooftops.", "Fine."],
            "Few install traditional batteries on their rooftops.\n\nFine.",
            id="a round that brings its own space keeps it",
        ),
        pytest.param(
            ["Solar pays off in the end", ", as most owners find.", "Yes."],
            "Solar pays off in the end, as most owners find.\n\nYes.",
            id="a round that starts with punctuation is joined as it is",
        ),
        pytest.param(
            ["The benefits:", "- lower bills\n- cleaner air", "\n- less noise."],
            "The benefits:\n\n- lower bills\n- cleaner air\n- less noise.",
            id="after a colon, a new paragraph",
        ),
    ],
)
async def test_a_round_goes_on_with_an_unfinished_sentence(scripted_llm, rounds: list[str], text: str):
    answers = iter(rounds)
    scripted_llm.reply(lambda request: next(answers))
    streamed: list[str] = []

    async def on_piece(offset: int, piece: str) -> None:
        assert offset == len("".join(streamed))  # the watchers see what is published
        streamed.append(piece)

    drafted, _ = await draft(
        model(scripted_llm, LLMProfile.completion),
        PROMPT,
        target_words=300,
        max_tokens=900,
        on_piece=on_piece,
    )
    assert drafted == text == "".join(streamed).strip()
    assert scripted_llm.requests[1].prompt.endswith(rounds[0] + ("\n\n" if rounds[0].endswith(":") else ""))
