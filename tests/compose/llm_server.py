"""The compose test's text model: the suite's scripted OpenAI-compatible server (mounted beside this file
from libs/testkit) on a fixed port, answering the pipeline's prompts as tests/pipeline.py scripts them.
Runs in the Pressroom image, which has starlette and uvicorn; OPENAI_BASE_URL=http://llm:8090/v1 and no
key, as for Ollama or vLLM."""

import uvicorn
from scripted_llm import ScriptedLLM

llm = ScriptedLLM(default="A scripted answer.", stream_chunks=4, chunk_delay=0.0)
llm.when("Describe an illustration", "Sunlit solar panels on a suburban roof under a blue sky")
llm.when(
    "post promoting this blog post", "Rooftop solar is for everyone now: cheaper panels, smarter batteries."
)
# The writer plans (an outline), then writes each section.
llm.when("outline of a", "# Rooftop solar for everyone\n## What the panels do []\n## Why now []\n")
llm.when(
    "blog post",
    "Solar panels on the roof turn sunlight into electricity. Costs fell sharply over a decade, and "
    "batteries let a home store the surplus.",
)
uvicorn.run(llm._app(), host="0.0.0.0", port=8090, log_level="warning", lifespan="off")
