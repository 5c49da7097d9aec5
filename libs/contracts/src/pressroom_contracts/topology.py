"""The JetStream topology as data: the CONTENT stream, every durable consumer and the key-value buckets.

This is the single source of truth. The provisioning step (pressroom_runtime.provisioning) creates
or reconciles exactly this on the server; services only bind to the durables named here, and
deploy/nats/topology.json is generated from it for operators.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from . import subjects


class StreamSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    subjects: list[str]
    max_age_seconds: float
    duplicate_window_seconds: float
    storage: str = "file"
    max_bytes: int = -1  # -1: no size limit (the age limit alone)


class ConsumerSpec(BaseModel):
    """One durable pull consumer shared by every replica of a service."""

    model_config = ConfigDict(frozen=True)

    durable: str
    filter_subjects: tuple[str, ...]
    description: str
    ack_wait_seconds: float = 30.0
    # Bounded: a plain NAK redelivers at once and the server default is unlimited.
    max_deliver: int = 5
    max_ack_pending: int = 64


CONTENT_STREAM = StreamSpec(
    name=subjects.STREAM,
    subjects=[subjects.all_content()],
    max_age_seconds=14 * 24 * 3600,
    duplicate_window_seconds=15 * 60,
)

# Live text as it is written (live.<job>.<stage>.delta), kept briefly in memory so a watcher that
# connects mid-blog is given the text so far by any gateway replica. Nothing consumes it durably.
LIVE_STREAM = StreamSpec(
    name=subjects.LIVE_STREAM,
    subjects=[subjects.all_live()],
    max_age_seconds=15 * 60,
    duplicate_window_seconds=60,
    storage="memory",
    max_bytes=256 * 1024 * 1024,
)

STREAMS: tuple[StreamSpec, ...] = (CONTENT_STREAM, LIVE_STREAM)

REGENERATE = subjects.content_of_type("regenerate.requested")

RESEARCH = ConsumerSpec(
    durable="research",
    filter_subjects=(subjects.content_of_type("job.requested"),),
    description="research: turns a job request into sources and notes",
)
WRITER = ConsumerSpec(
    durable="writer",
    filter_subjects=(subjects.content_of_type("research.completed"), REGENERATE),
    description="writer: writes the blog post from the research, or again on request",
)
SOCIAL = ConsumerSpec(
    durable="social",
    filter_subjects=(subjects.content_of_type("blog.completed"), REGENERATE),
    description="social: derives one post per requested platform, or one again on request",
)
ILLUSTRATOR = ConsumerSpec(
    durable="illustrator",
    filter_subjects=(subjects.content_of_type("blog.completed"), REGENERATE),
    description="illustrator: draws and stores the illustration, or again on request",
)
PERSISTENCE = ConsumerSpec(
    durable="persistence",
    filter_subjects=(subjects.all_content(),),
    description="persistence: records every event and decides completion",
    max_deliver=10,
    max_ack_pending=256,
)

CONSUMERS: tuple[ConsumerSpec, ...] = (RESEARCH, WRITER, SOCIAL, ILLUSTRATOR, PERSISTENCE)


class KeyValueSpec(BaseModel):
    """A JetStream key-value bucket."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    history: int = 1
    storage: str = "file"

    @property
    def stream(self) -> str:
        """The stream JetStream keeps the bucket in."""
        return f"KV_{self.name}"


# API keys: sha256(token) hex -> the client's record (pressroom_runtime.apikeys); the token is never stored.
KEY_BUCKET = KeyValueSpec(
    name="pressroom-api-keys",
    description="Gateway API keys: sha256 of the token -> the client it authenticates",
)

# Job state: job id -> pressroom_contracts.jobstate.JobState. Created by the gateway before it publishes
# job.requested, moved forward only by persistence (which decides every status change), read by stages
# before paid work (one lookup instead of scanning the stream) and by gateways for ownership.
JOBS_BUCKET = KeyValueSpec(
    name="pressroom-jobs",
    description="Job state: job id -> owner and status (gateway creates, persistence advances)",
)

# Publishing profiles: client id -> pressroom_contracts.voice.ClientProfile (brand voice, link template).
# Written by the gateway (REST, and each edit a person saves); carried to the stages on job.requested.
PROFILES_BUCKET = KeyValueSpec(
    name="pressroom-profiles",
    description="Publishing profiles: client id -> brand voice and public link template (gateway)",
)

KEY_VALUE_BUCKETS: tuple[KeyValueSpec, ...] = (KEY_BUCKET, JOBS_BUCKET, PROFILES_BUCKET)


def topology_document() -> dict[str, object]:
    return {
        "stream": CONTENT_STREAM.model_dump(),
        "live_stream": LIVE_STREAM.model_dump(),
        "consumers": [consumer.model_dump() for consumer in CONSUMERS],
        "key_value": [bucket.model_dump() for bucket in KEY_VALUE_BUCKETS],
    }
