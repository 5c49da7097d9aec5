"""The compose test's text model: the suite's scripted OpenAI-compatible server (mounted beside this file
from libs/testkit) on a fixed port, answering the pipeline's three prompts. Runs in the gateway image,
which has starlette and uvicorn; OPENAI_BASE_URL=http://llm:8090/v1 and no key, as for Ollama or vLLM."""

import uvicorn
from scripted_llm import ScriptedLLM

llm = ScriptedLLM(default="A scripted answer.", stream_chunks=4, chunk_delay=0.0)
llm.when("Describe an illustration", "Sunlit solar panels on a suburban roof under a blue sky")
llm.when(
    "post promoting this blog post", "Rooftop solar is for everyone now: cheaper panels, smarter batteries."
)
llm.when(
    "blog post",
    "# Rooftop solar for everyone\n\nSolar panels turn sunlight into electricity, and costs fell sharply.\n\n"
    "## Why now\n\nPrices, policy and better inverters make it the right moment for most households.",
)
uvicorn.run(llm._app(), host="0.0.0.0", port=8090, log_level="warning", lifespan="off")
