"""The JetStream topology as data: the streams, every durable consumer and the key-value buckets.

This is the single source of truth. The provisioning step (pressroom_runtime.provisioning) creates
or reconciles exactly this on the server — with the replica count and size bounds of its settings
applied on top (1 replica by default, 3 on a cluster) —; services only bind to the durables named here,
and deploy/nats/topology.json is generated from it for operators.
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
    replicas: int = 1
    description: str = ""


class ConsumerSpec(BaseModel):
    """One durable pull consumer shared by every replica of a service."""

    model_config = ConfigDict(frozen=True)

    durable: str
    filter_subjects: tuple[str, ...]
    description: str
    stream: str = subjects.STREAM
    # The stage a message given up on fails (events.Stage value); None: nobody's job fails for it.
    stage: str | None = None
    ack_wait_seconds: float = 30.0
    # Bounds crash loops and bugs only: an outage is waited out without spending deliveries.
    max_deliver: int = 5
    # A server-side ceiling on messages handed out and not yet acknowledged, over all replicas; each
    # replica holds at most its own concurrency, so this only needs to exceed replicas x concurrency.
    max_ack_pending: int = 1024


CONTENT_STREAM = StreamSpec(
    name=subjects.STREAM,
    subjects=[subjects.all_content()],
    max_age_seconds=14 * 24 * 3600,
    duplicate_window_seconds=15 * 60,
    description="Every stored event of every job",
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
    description="Live text as it is written, kept briefly for watchers that connect mid-blog",
)

# What consumers terminated (deadletter.<consumer>, written by the runtime) and nats-server's advisories
# for messages it stopped delivering after max_deliver (turned into dead letters by the keeper).
DEADLETTER_STREAM = StreamSpec(
    name=subjects.DEADLETTER_STREAM,
    subjects=[subjects.all_deadletters(), subjects.max_deliveries_advisory()],
    max_age_seconds=30 * 24 * 3600,
    duplicate_window_seconds=15 * 60,
    description="Messages consumers gave up on, with the reason; replayable by an operator",
)

STREAMS: tuple[StreamSpec, ...] = (CONTENT_STREAM, LIVE_STREAM, DEADLETTER_STREAM)

REGENERATE = subjects.content_of_type("regenerate.requested")

RESEARCH = ConsumerSpec(
    durable="research",
    filter_subjects=(subjects.content_of_type("job.requested"),),
    description="research: turns a job request into sources and notes",
    stage="research",
)
WRITER = ConsumerSpec(
    durable="writer",
    filter_subjects=(subjects.content_of_type("research.completed"), REGENERATE),
    description="writer: writes the blog post from the research, or again on request",
    stage="blog",
)
SOCIAL = ConsumerSpec(
    durable="social",
    filter_subjects=(subjects.content_of_type("blog.completed"), REGENERATE),
    description="social: derives one post per requested platform, or one again on request",
    stage="social",
)
ILLUSTRATOR = ConsumerSpec(
    durable="illustrator",
    filter_subjects=(subjects.content_of_type("blog.completed"), REGENERATE),
    description="illustrator: draws and stores the illustration, or again on request",
    stage="image",
)
PERSISTENCE = ConsumerSpec(
    durable="persistence",
    filter_subjects=(subjects.all_content(),),
    description="persistence: records every event and decides completion",
    stage="job",
    max_deliver=10,
    max_ack_pending=4096,
)
DEADLETTER = ConsumerSpec(
    durable="deadletter",
    filter_subjects=(subjects.max_deliveries_advisory(),),
    description="dead-letter keeper (in persistence): records messages the server gave up delivering",
    stream=subjects.DEADLETTER_STREAM,
)

# The services' durables on CONTENT (what replicas scale on); DURABLES is everything provisioning makes.
CONSUMERS: tuple[ConsumerSpec, ...] = (RESEARCH, WRITER, SOCIAL, ILLUSTRATOR, PERSISTENCE)
DURABLES: tuple[ConsumerSpec, ...] = (*CONSUMERS, DEADLETTER)


class KeyValueSpec(BaseModel):
    """A JetStream key-value bucket."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    history: int = 1
    storage: str = "file"
    replicas: int = 1
    max_bytes: int = -1
    ttl_seconds: float = 0  # every entry expires this long after it was written; 0: never

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


# POST /v1/jobs Idempotency-Key: sha256(client, key) -> the job it started and the request's fingerprint,
# for 24 hours (pressroom_gateway.idempotency). Written by the gateway only.
IDEMPOTENCY_BUCKET = KeyValueSpec(
    name="pressroom-idempotency",
    description="POST /v1/jobs Idempotency-Key -> job id, for 24 h (gateway)",
    ttl_seconds=24 * 3600,
)

KEY_VALUE_BUCKETS: tuple[KeyValueSpec, ...] = (
    KEY_BUCKET,
    JOBS_BUCKET,
    PROFILES_BUCKET,
    IDEMPOTENCY_BUCKET,
)


def topology_document() -> dict[str, object]:
    return {
        "streams": [stream.model_dump() for stream in STREAMS],
        "consumers": [consumer.model_dump() for consumer in DURABLES],
        "key_value": [bucket.model_dump() for bucket in KEY_VALUE_BUCKETS],
    }
