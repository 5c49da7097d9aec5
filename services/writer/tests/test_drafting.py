"""Drafting against the scripted OpenAI-compatible server, through the real openai SDK."""

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
