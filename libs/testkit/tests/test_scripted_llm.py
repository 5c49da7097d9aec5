"""The scripted server speaks OpenAI's wire format well enough for the real SDK, failures included."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from pressroom_testkit import ScriptedLLM


def client(llm: ScriptedLLM, **kwargs: object) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0, **kwargs)  # type: ignore[arg-type]


async def test_chat_completion(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.reply("Hello from the script.")
    result = await client(scripted_llm).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Say hi"}]
    )
    assert result.choices[0].message.content == "Hello from the script."
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None and result.usage.completion_tokens == 4
    (request,) = scripted_llm.requests
    assert request.kind == "chat" and request.prompt == "Say hi" and not request.stream


async def test_completion_with_rules(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.when("Title:", "A Fine Title").when(lambda r: "platform: x" in r.prompt, "Short post")
    scripted_llm.reply(lambda r: f"echo {len(r.prompt)}")
    api = client(scripted_llm)
    first = await api.completions.create(model="m", prompt="Title: something")
    second = await api.completions.create(model="m", prompt="platform: x\nwrite")
    third = await api.completions.create(model="m", prompt="12345")
    assert [first.choices[0].text, second.choices[0].text, third.choices[0].text] == [
        "A Fine Title",
        "Short post",
        "echo 5",
    ]
    assert first.object == "text_completion"


async def test_chat_stream_in_several_chunks_with_usage(scripted_llm: ScriptedLLM) -> None:
    text = "one two three four five six seven eight nine ten eleven twelve"
    scripted_llm.reply(text)
    stream = await client(scripted_llm).chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    deltas, usage, finish = [], None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                deltas.append(choice.delta.content)
            finish = choice.finish_reason or finish
    assert "".join(deltas) == text
    assert len(deltas) >= 4
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 12 and usage.prompt_tokens == 1


async def test_completion_stream(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.reply("Solar panels turn light into electricity.")
    stream = await client(scripted_llm).completions.create(model="m", prompt="Solar", stream=True)
    pieces = [chunk.choices[0].text async for chunk in stream if chunk.choices]
    assert "".join(pieces) == "Solar panels turn light into electricity."
    assert len([p for p in pieces if p]) > 1
    assert scripted_llm.requests[0].stream


async def test_stream_without_usage_option_has_no_usage(scripted_llm: ScriptedLLM) -> None:
    stream = await client(scripted_llm).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert all([chunk.usage is None async for chunk in stream])


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, openai.InternalServerError),
        (429, openai.RateLimitError),
        (401, openai.AuthenticationError),
    ],
)
async def test_injected_failures_surface_as_sdk_errors(
    scripted_llm: ScriptedLLM, status: int, error: type[Exception]
) -> None:
    scripted_llm.fail(status, times=1)
    api = client(scripted_llm)
    with pytest.raises(error):
        await api.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    ok = await api.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert ok.choices[0].message.content


async def test_failures_before_sdk_retries_succeed(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.fail(500, times=2)
    api = AsyncOpenAI(base_url=scripted_llm.base_url, api_key="t", max_retries=2)
    result = await api.completions.create(model="m", prompt="x")
    assert result.choices[0].text
    assert len(scripted_llm.requests) == 3


async def test_api_key_is_enforced_when_set() -> None:
    with ScriptedLLM(api_key="right") as llm:
        with pytest.raises(openai.AuthenticationError):
            await AsyncOpenAI(base_url=llm.base_url, api_key="wrong", max_retries=0).completions.create(
                model="m", prompt="x"
            )
        good = await AsyncOpenAI(base_url=llm.base_url, api_key="right", max_retries=0).completions.create(
            model="m", prompt="x"
        )
        assert good.choices[0].text


async def test_hang_times_out_then_recovers(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.hang(times=1)
    api = client(scripted_llm, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await api.completions.create(model="m", prompt="x")
    assert time.monotonic() - started < 2
    scripted_llm.release()
    assert (await api.completions.create(model="m", prompt="x")).choices[0].text


async def test_cut_stream_breaks_mid_way(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.reply("a b c d e f g h i j k l m n o p").cut(after_chunks=2)
    stream = await client(scripted_llm).completions.create(model="m", prompt="x", stream=True)
    received: list[str] = []
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        async for chunk in stream:
            received.extend(c.text for c in chunk.choices)
    assert 0 < len(received) <= 2


async def test_models_and_concurrent_requests(scripted_llm: ScriptedLLM) -> None:
    api = client(scripted_llm)
    models = await api.models.list()
    assert [m.id for m in models.data] == [scripted_llm.model]
    results = await asyncio.gather(
        *(api.completions.create(model="m", prompt=f"p{i}", stream=False) for i in range(10))
    )
    assert len(results) == 10
    assert len(scripted_llm.requests) == 10
