"""The real local model: Gemma 3 270M (a base model) through llama.cpp and the openai SDK."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI
from pydantic import SecretStr

from pressroom_devstack.model import MODEL_ID, LocalModel
from pressroom_runtime.llm import Prompt, TextModel
from pressroom_runtime.settings import LLMProfile, LLMSettings
from pressroom_testkit.processes import assert_gone

pytestmark = pytest.mark.model


async def test_local_model_completes_a_document_style_prompt(local_model_url: str) -> None:
    client = AsyncOpenAI(base_url=local_model_url, api_key="local", max_retries=0, timeout=60)
    models = await client.models.list()
    assert MODEL_ID in [m.id for m in models.data]
    result = await client.completions.create(
        model=MODEL_ID,
        prompt="# Solar energy\n\nSolar panels turn sunlight into",
        max_tokens=16,
        temperature=0,
        extra_body={"repeat_penalty": 1.2},
    )
    assert result.choices[0].text.strip()
    assert result.usage is not None and 0 < result.usage.completion_tokens <= 16

    stream = await client.completions.create(
        model=MODEL_ID, prompt="Open-source software is", max_tokens=12, stream=True
    )
    pieces = [chunk.choices[0].text async for chunk in stream if chunk.choices]
    assert len(pieces) > 1 and "".join(pieces).strip()


async def test_the_model_client_makes_calls_in_a_row_on_the_local_model(local_model_url: str) -> None:
    # llama.cpp's server closes a connection after a streamed answer, though it offers keep-alive. A
    # client that reuses it unchecked (the SDK's aiohttp transport) fails every second call; httpx's
    # check before reuse loses the race now and then (3 of 40 calls failed here without
    # StaleConnectionRetry). Twenty short calls: with no retry, most runs of this test fail.
    model = TextModel(
        LLMSettings(
            base_url=local_model_url,
            api_key=SecretStr("local"),
            model=MODEL_ID,
            profile=LLMProfile.completion,
        )
    )
    try:
        for n in range(20):
            prompt = Prompt(system="", user="", document=f"# Solar panels, part {n}\n\nSolar panels")
            assert (await model.complete(prompt, max_tokens=8)).text.strip()
    finally:
        await model.aclose()


def test_local_model_stops_clean(local_model: LocalModel) -> None:
    # A second server on the same (cached) model file, to check stop() on its own.
    other = LocalModel(local_model.models_dir, local_model.log_path.with_name("other.log"), threads=1)
    other.start()
    port = other.url.rsplit(":", 1)[1]
    other.stop()
    assert_gone(port)
