"""Provider choice, the OpenAI images adapter through the real SDK, and the cover-card provider."""

from __future__ import annotations

import asyncio
import io

import openai
import pytest
from openai import AsyncOpenAI
from PIL import Image

from pressroom_illustrator.adapters import CoverCardProvider, OpenAIImageProvider
from pressroom_illustrator.adapters.openai_images import fit_size
from pressroom_illustrator.app import image_provider
from pressroom_illustrator.prompts import final_prompt
from pressroom_illustrator.settings import IllustratorSettings
from pressroom_illustrator.storage import job_of, object_key
from pressroom_illustrator.sweep import SweepReport, run_sweeper
from pressroom_runtime.errors import Verdict, classify
from pressroom_testkit import ScriptedLLM


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("PROVIDER", "MODEL", "SIZE"):
        monkeypatch.delenv(f"PRESSROOM_ILLUSTRATOR_IMAGE_{name}", raising=False)
    monkeypatch.delenv("PRESSROOM_ILLUSTRATOR_IMAGES_BASE_URL", raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "cover"),
        ({"OPENAI_API_KEY": "sk-x"}, "openai"),
        ({"OPENAI_API_KEY": "unset"}, "cover"),
        ({"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://vllm:8000/v1"}, "cover"),
        (
            {
                "OPENAI_API_KEY": "sk-x",
                "OPENAI_BASE_URL": "http://vllm:8000/v1",
                "PRESSROOM_ILLUSTRATOR_IMAGES_BASE_URL": "https://images.example/v1",
            },
            "openai",
        ),
        ({"OPENAI_API_KEY": "sk-x", "PRESSROOM_ILLUSTRATOR_IMAGE_PROVIDER": "cover"}, "cover"),
    ],
)
def test_auto_chooses_openai_only_with_a_key_for_an_images_api(clean_env, env, expected) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    settings = IllustratorSettings()
    assert settings.resolved_image_provider() == expected
    assert image_provider(settings).name == ("openai" if expected == "openai" else "cover-card")


def test_openai_provider_never_falls_back_to_the_text_servers_base_url(clean_env) -> None:
    clean_env.setenv("OPENAI_API_KEY", "sk-x")
    clean_env.setenv("OPENAI_BASE_URL", "http://vllm:8000/v1")
    clean_env.setenv("PRESSROOM_ILLUSTRATOR_IMAGE_PROVIDER", "openai")
    provider = image_provider(IllustratorSettings())
    assert isinstance(provider, OpenAIImageProvider)
    assert str(provider.client.base_url).startswith("https://api.openai.com/v1")
    assert (provider.model, provider.size) == ("dall-e-3", "1792x1024")


def test_openai_chosen_without_a_key_is_a_clear_error(clean_env) -> None:
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        image_provider(IllustratorSettings(image_provider="openai"))


def test_sizes_fit_the_model() -> None:
    assert fit_size("dall-e-3", "1792x1024") == "1792x1024"
    assert fit_size("gpt-image-1", "1792x1024") == "1536x1024"
    assert fit_size("gpt-image-1", "1024x1792") == "1024x1536"
    assert fit_size("gpt-image-1", "auto") == "auto"
    assert fit_size("dall-e-3", "1536x1024") == "1792x1024"
    assert fit_size("some-other-model", "640x480") == "640x480"


def test_keys_and_prompts() -> None:
    assert object_key("j1", 3) == "jobs/j1/cover-v3.png"
    assert object_key("j1", 3, "square") == "jobs/j1/cover-v3-square.png"
    assert job_of("jobs/j1/cover-v3-square.png") == "j1"
    assert job_of("jobs/j1/deeper/x.png") is None and job_of("other/j1/x.png") is None
    assert final_prompt('  "A calm sea."\n', "T") == "A calm sea."
    assert final_prompt("", "Tides") == "An illustration for Tides"
    assert final_prompt("A calm sea.", "T", " in  ink ") == "A calm sea. in ink"


def images_client(llm: ScriptedLLM) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)


async def test_gpt_image_is_not_sent_response_format_and_reports_tokens(scripted_llm: ScriptedLLM) -> None:
    provider = OpenAIImageProvider(images_client(scripted_llm), model="gpt-image-1", size="1792x1024")
    drawing = await provider.draw(title="T", prompt="a quiet harbour at dawn", seed="s")
    [request] = scripted_llm.requests
    assert request.kind == "image" and "response_format" not in request.body
    assert request.body["size"] == "1536x1024" and request.prompt == "a quiet harbour at dawn"
    assert (drawing.image.width, drawing.image.height) == (1536, 1024)
    assert [(v.name, v.width, v.height) for v in drawing.variants] == [("square", 1024, 1024)]
    assert drawing.input_tokens == 5


@pytest.mark.parametrize(
    ("status", "verdict", "code"),
    [(400, Verdict.fail, "provider_rejected"), (401, Verdict.fail, "provider_auth"),
     (429, Verdict.wait, "provider_unavailable"), (500, Verdict.wait, "provider_unavailable")],
)  # fmt: skip
async def test_image_api_errors_are_classified(scripted_llm: ScriptedLLM, status, verdict, code) -> None:
    scripted_llm.fail(status)
    provider = OpenAIImageProvider(images_client(scripted_llm))
    with pytest.raises(openai.APIError) as raised:
        await provider.draw(title="T", prompt="p", seed="s")
    failure = classify(raised.value)
    assert (failure.verdict, failure.code) == (verdict, code)


async def test_cover_provider_draws_a_link_preview_and_a_square() -> None:
    drawing = await CoverCardProvider().draw(title="Tides and time", prompt="the sea", seed="job:v1")
    for picture, size in ((drawing.image, (1200, 630)), (drawing.variants[0], (1080, 1080))):
        image = Image.open(io.BytesIO(picture.data))
        assert (image.format, image.size) == ("PNG", size) == ("PNG", (picture.width, picture.height))
    again = await CoverCardProvider().draw(title="Tides and time", prompt="the sea", seed="job:v1")
    assert again == drawing  # deterministic: a redelivery stores the same bytes


async def test_the_sweeper_keeps_sweeping_through_failures_until_cancelled() -> None:
    calls = 0
    third = asyncio.Event()

    async def sweep() -> SweepReport:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("store away")
        if calls == 3:
            third.set()
        return SweepReport()

    task = asyncio.create_task(run_sweeper(sweep, interval=0.01, first_delay=0))
    await asyncio.wait_for(third.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("answer", "prompt"),
    [
        pytest.param(
            "# 10. Solar panels on the roof of an apartment building, photo credit : https://www . wayfairshop"
            " . com/product-images?p_cid=5437&lpid=6892# ) by @jenn",
            "Solar panels on the roof of an apartment building",
            id="a job's export alt text: numbering, a broken address, a credit, a handle",
        ),
        pytest.param(
            "* A **bright** roof with panels (see https://x.com/a)", "A bright roof with panels", id="link"
        ),
        pytest.param("- A cat. Image by @bob", "A cat.", id="credit"),
        pytest.param("A child (age 5) reading", "A child (age 5) reading", id="an aside stays"),
        pytest.param("2024 solar roofs in Berlin", "2024 solar roofs in Berlin", id="a number stays"),
        pytest.param("... ) ##", "An illustration for Tides", id="nothing left: the fallback"),
    ],
)
def test_the_prompt_is_the_picture_without_what_the_model_wrapped_it_in(answer: str, prompt: str) -> None:
    """It goes to the image API and is the picture's alt text in every export."""
    assert final_prompt(answer, "Tides") == prompt
