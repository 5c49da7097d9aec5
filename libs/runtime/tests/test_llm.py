"""The text-model client against the scripted OpenAI-compatible server: what each profile sends, what a
streamed answer gives back (text, the provider's token count, the finish reason), and a refusal or an
outage still raised as the SDK's own error, so that the stage runner's classification stands."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re

import openai
import pytest

from pressroom_runtime.errors import Verdict, classify
from pressroom_runtime.llm import Prompt, TextModel
from pressroom_runtime.settings import LLMProfile


@pytest.fixture
async def model_of(scripted_llm):
    """Model clients on the scripted server, closed after the test."""
    made: list[TextModel] = []

    def make(profile: LLMProfile = LLMProfile.chat, timeout: float | None = None) -> TextModel:
        settings = scripted_llm.text_model(profile).settings
        model = TextModel(settings if timeout is None else settings.model_copy(update={"timeout": timeout}))
        made.append(model)
        return model

    yield make
    for model in made:
        await model.aclose()


PROMPT = Prompt(
    system="You write.", user="Write about solar.", document="A post about solar:\n", stop=("\n\n##",)
)


async def test_a_chat_model_gets_messages_and_streams_the_answer_with_its_usage(
    scripted_llm, model_of
) -> None:
    scripted_llm.reply("Panels on the roof <eos>turn sunlight into power.")
    model = model_of(LLMProfile.chat)
    stream = model.stream(PROMPT, max_tokens=64)
    pieces = [piece async for piece in stream]

    assert "".join(pieces) == "Panels on the roof turn sunlight into power."  # a special token dropped
    assert len(pieces) > 1  # streamed, not answered at once
    assert stream.finish_reason == "stop"
    assert stream.usage.output_tokens == 8 and stream.usage.input_tokens > 0
    (request,) = scripted_llm.requests
    assert request.kind == "chat" and request.stream
    assert request.body["messages"] == [
        {"role": "system", "content": "You write."},
        {"role": "user", "content": "Write about solar."},
    ]
    assert request.body["max_tokens"] == 64 and request.body["stop"] == ["\n\n##"]
    assert request.body["stream_options"] == {"include_usage": True}
    assert "grammar" not in request.body and "repeat_penalty" not in request.body


async def test_a_base_model_continues_the_document_under_its_grammar(scripted_llm, model_of) -> None:
    scripted_llm.reply("Solar is cheap now.")
    model = model_of(LLMProfile.completion)
    generation = await model.complete(
        Prompt(system="", user="", document="Doc:\n", grammar='root ::= "x"'), 32
    )

    assert generation.text == "Solar is cheap now." and generation.finish_reason == "stop"
    (request,) = scripted_llm.requests
    assert request.kind == "completion" and request.body["prompt"] == "Doc:\n"
    assert request.body["grammar"] == 'root ::= "x"'
    assert request.body["repeat_penalty"] == model.settings.repeat_penalty
    assert "stop" not in request.body  # none asked for


@pytest.mark.parametrize(
    ("status", "error", "verdict"),
    [
        (401, openai.AuthenticationError, Verdict.fail),
        (400, openai.BadRequestError, Verdict.fail),
        (503, openai.InternalServerError, Verdict.wait),
        (429, openai.RateLimitError, Verdict.wait),
    ],
)
async def test_a_provider_error_is_the_sdks_own_and_classified(
    scripted_llm, model_of, status, error, verdict
) -> None:
    scripted_llm.fail(status)
    with pytest.raises(error) as raised:
        await model_of().complete(PROMPT, 16)
    assert classify(raised.value).verdict is verdict


async def test_a_provider_that_does_not_answer_in_time_is_an_outage(scripted_llm, model_of) -> None:
    scripted_llm.hang(seconds=5)
    with pytest.raises(openai.APITimeoutError) as raised:
        await model_of(timeout=0.5).complete(PROMPT, 16)
    assert classify(raised.value).verdict is Verdict.wait


async def test_a_stream_cut_half_way_is_a_connection_error_and_an_outage(scripted_llm, model_of) -> None:
    scripted_llm.reply(" ".join(f"word{i}" for i in range(40)))
    scripted_llm.cut(after_chunks=3)
    pieces: list[str] = []
    with pytest.raises(openai.APIConnectionError) as raised:
        async for piece in model_of().stream(PROMPT, 64):
            pieces.append(piece)
    assert pieces  # what came before the cut was streamed
    assert classify(raised.value).verdict is Verdict.wait


class ClosesKeptAliveConnections:
    """A provider that behaves as llama.cpp's server does: it advertises keep-alive, yet a connection
    that carried a streamed answer is closed — here just as the next request arrives on it, the race a
    client loses when the close comes after its pool checked the connection."""

    def __init__(self) -> None:
        self.answered = 0
        self.dropped = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered_here = False
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length[1]) if length else 0)
                if answered_here:
                    self.dropped += 1
                    break
                answered_here = True
                self.answered += 1
                writer.write(self.streamed_answer("Sunlight becomes power."))
                await writer.drain()
        writer.close()

    @staticmethod
    def streamed_answer(text: str) -> bytes:
        def event(delta: dict[str, str], finish: str | None) -> bytes:
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
            chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
            data = f"data: {json.dumps(chunk)}\n\n".encode()
            return b"%x\r\n%s\r\n" % (len(data), data)

        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
            b"Keep-Alive: timeout=5, max=100\r\n\r\n"
        )
        body = event({"content": text}, None) + event({}, "stop")
        done = b"data: [DONE]\n\n"
        return head + body + b"%x\r\n%s\r\n" % (len(done), done) + b"0\r\n\r\n"


async def test_calls_in_a_row_survive_a_server_that_closes_kept_alive_connections(scripted_llm) -> None:
    provider = ClosesKeptAliveConnections()
    server = await asyncio.start_server(provider.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = scripted_llm.text_model().settings.model_copy(
        update={"base_url": f"http://127.0.0.1:{port}/v1"}
    )
    model = TextModel(settings)
    try:
        answers = [(await model.complete(PROMPT, 16)).text for _ in range(5)]
    finally:
        await model.aclose()
        server.close()
        await server.wait_closed()
    assert answers == ["Sunlight becomes power."] * 5
    # Each call after the first went out on the kept-alive connection, was dropped, and went again.
    assert (provider.answered, provider.dropped) == (5, 4)
