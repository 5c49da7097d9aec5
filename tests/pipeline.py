"""Helpers for cross-service tests: drive a job over the gateway WebSocket, read what was stored."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import websockets

from pressroom_contracts.events import TERMINAL_TYPES
from pressroom_testkit.runner import ServiceRunner

BLOG_TITLE = "Rooftop solar for everyone"
OUTLINE_ANSWER = f"# {BLOG_TITLE}\n## What the panels do [1]\n## Why now [1]\n"
SECTION_ANSWER = (
    "Solar panels on the roof turn sunlight into electricity [1]. Costs fell sharply over a decade [1], "
    "and batteries let a home store the surplus [9]."
)
SOCIAL_ANSWER = "Rooftop solar is finally for everyone: cheaper panels, smarter batteries. " * 8
IMAGE_ANSWER = "A sunlit suburban roof covered in gleaming solar panels under a blue sky"


def script_pipeline(llm: Any) -> None:
    """Answers by prompt: the writer's (outline, then sections), the social posts' and the image prompt's."""
    llm.when("Describe an illustration", IMAGE_ANSWER)
    llm.when("post promoting this blog post", SOCIAL_ANSWER)
    llm.when("outline of a", OUTLINE_ANSWER)
    llm.when("blog post", SECTION_ANSWER)


def writer_jobs(llm: Any) -> list[Any]:
    """The writer's first request of each job it wrote (its outline)."""
    return [r for r in llm.requests if "outline of a" in r.prompt]


@dataclass
class JobWatch:
    job_id: str = ""
    frames: list[dict[str, Any]] = field(default_factory=list)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [f["event"] for f in self.frames if f["type"] == "event"]

    @property
    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def progress(self, stage: str) -> list[str]:
        return [
            e["data"]["message"]
            for e in self.events
            if e["type"] == "stage.progress" and e["data"]["stage"] == stage
        ]

    @property
    def deltas(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "delta"]


def ws_url(runner: ServiceRunner) -> str:
    """The gateway's /v1/ws for the services `runner` started, with a key of its test client."""
    return f"{(runner.gateway_url or '').replace('http', 'ws', 1)}/v1/ws?token={runner.api_token}"


async def run_job(runner: ServiceRunner, request: dict[str, Any], timeout: float = 120.0) -> JobWatch:
    """Starts a job on /v1/ws and collects every frame until the job ends."""
    watch = JobWatch()
    async with websockets.connect(ws_url(runner)) as ws:
        await ws.send(json.dumps({"type": "start", "request": request, "ref": "r1"}))
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await ws.recv())
                watch.frames.append(frame)
                if frame["type"] == "accepted":
                    watch.job_id = frame["job_id"]
                if frame["type"] == "error":
                    raise AssertionError(f"gateway error: {frame}")
                if frame["type"] == "event" and frame["event"]["type"] in TERMINAL_TYPES:
                    return watch


async def stored(database_url: str, job_id: str) -> dict[str, Any]:
    connection = await asyncpg.connect(database_url)
    try:
        return {
            "job": await connection.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id),
            "blogs": await connection.fetch("SELECT * FROM blog_posts WHERE job_id = $1", job_id),
            "social": await connection.fetch(
                "SELECT * FROM social_posts WHERE job_id = $1 ORDER BY platform", job_id
            ),
            "images": await connection.fetch("SELECT * FROM images WHERE job_id = $1", job_id),
            "usage": await connection.fetch("SELECT * FROM usage WHERE job_id = $1", job_id),
        }
    finally:
        await connection.close()
