"""When is a job done? Pure logic: the job's request and the artifacts recorded so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from pressroom_contracts.events import JobCompleted
from pressroom_contracts.jobs import JobRequest, Platform


@dataclass(frozen=True)
class Artifacts:
    """The latest version of each artifact a job has (None/empty: not there yet)."""

    blog_title: str | None = None
    platforms: frozenset[str] = field(default_factory=frozenset)
    image_key: str | None = None
    has_research: bool = False  # not needed to complete; says where a stalled job stopped


def missing(request: JobRequest, artifacts: Artifacts) -> list[str]:
    """What the job still waits for, e.g. ['blog', 'social:x', 'image']."""
    waiting = [] if artifacts.blog_title is not None else ["blog"]
    waiting += [f"social:{p}" for p in request.platforms if p not in artifacts.platforms]
    if request.image and artifacts.image_key is None:
        waiting.append("image")
    return waiting


def completion(request: JobRequest, artifacts: Artifacts) -> JobCompleted | None:
    """The job.completed payload once every requested artifact exists, else None.

    Research is not required: it may be skipped, and the blog cannot exist without it anyway.
    """
    if missing(request, artifacts) or artifacts.blog_title is None:
        return None
    return JobCompleted(
        blog_title=artifacts.blog_title,
        platforms=[Platform(p) for p in request.platforms],
        image_key=artifacts.image_key if request.image else None,
    )
