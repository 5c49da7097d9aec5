"""Who publishes and who reads each event: every Pressroom service (and the outside reader) as data.

The one source of truth for "who may do what" on the bus. The AsyncAPI catalogue takes its send and
receive operations from here, the NATS server's per-user permissions are derived from it
(pressroom_contracts.access), and the runtime refuses to publish or read back an event type a service
has not declared (check_publish / check_read), so a service that starts doing something new fails its
tests until it is written down here.

`python -m pressroom_contracts.parties blog.completed` prints an event's producers and readers.
"""

from __future__ import annotations

import sys

from pydantic import BaseModel, ConfigDict

from . import subjects, topology
from .events import EVENT_TYPES, STOPPED_TYPES

ALL_TYPES = frozenset(EVENT_TYPES)
# What every stage reports about its own work.
STAGE_REPORTS = frozenset({"stage.progress", "stage.failed", "usage.recorded"})


class UndeclaredEvent(RuntimeError):
    """A service publishing or reading an event type it has not declared: a bug, never retried into success."""


class Party(BaseModel):
    """One service (all its replicas) on the bus."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    consumer: topology.ConsumerSpec | None = None  # its durable: replicas share it
    publishes: frozenset[str] = frozenset()  # event types it stores on CONTENT
    reads: frozenset[str] = frozenset()  # event types it reads back from the stream (history, replays)
    streams_live: frozenset[str] = frozenset()  # stages whose text it publishes on live.<job>.<stage>.delta
    watches_live: bool = False  # subscribes to live deltas
    answers: tuple[str, ...] = ()  # request/reply subjects it serves (one replica answers each)
    asks: tuple[str, ...] = ()  # request/reply subjects it sends
    # Key-value buckets by name (topology.KEY_VALUE_BUCKETS), all created by provisioning: no service may
    # create one.
    writes_buckets: tuple[str, ...] = ()
    reads_buckets: tuple[str, ...] = ()
    # Runs the dead-letter keeper: records what the server gave up delivering to any consumer.
    keeps_dead_letters: bool = False

    @property
    def consumes(self) -> frozenset[str]:
        """The event types its durable delivers."""
        if self.consumer is None:
            return frozenset()
        return frozenset(t for t in ALL_TYPES if any(_matches(f, t) for f in self.consumer.filter_subjects))

    @property
    def receives(self) -> frozenset[str]:
        """Every event type it takes in, delivered or read back."""
        return self.consumes | self.reads


def _matches(filter_subject: str, event_type: str) -> bool:
    """Does a durable's filter (content.*.<type> or content.>) select this event type?"""
    if filter_subject == subjects.all_content():
        return True
    return filter_subject == subjects.content_of_type(event_type)


GATEWAY = Party(
    name="gateway",
    description="starts, cancels, edits and regenerates jobs for clients; replays each job to its watchers",
    publishes=frozenset(
        {"job.requested", "cancel.requested", "regenerate.requested", "blog.edited", "social.edited"}
    ),
    reads=ALL_TYPES,  # a job's whole history goes to its WebSocket and SSE watchers
    watches_live=True,
    asks=(subjects.QUERY_JOB, subjects.QUERY_JOBS),
    reads_buckets=(topology.KEY_BUCKET.name,),  # keys are made by `pressroom keys` (admin), not the gateway
    # Publishing profiles: saved over /v1/profile, and each edit a person saves joins the voice's examples.
    writes_buckets=(
        topology.JOBS_BUCKET.name,
        topology.IDEMPOTENCY_BUCKET.name,
        topology.PROFILES_BUCKET.name,
    ),
)
RESEARCH = Party(
    name="research",
    description=topology.RESEARCH.description,
    consumer=topology.RESEARCH,
    publishes=frozenset({"research.completed"}) | STAGE_REPORTS,
    reads=frozenset({"research.completed", *STOPPED_TYPES}),
    reads_buckets=(topology.JOBS_BUCKET.name,),
)
WRITER = Party(
    name="writer",
    description=topology.WRITER.description,
    consumer=topology.WRITER,
    publishes=frozenset({"blog.completed"}) | STAGE_REPORTS,
    # job.requested: the owner's brand voice, for every prompt.
    reads=frozenset({"job.requested", "research.completed", "blog.completed", "blog.edited", *STOPPED_TYPES}),
    streams_live=frozenset({"blog"}),
    reads_buckets=(topology.JOBS_BUCKET.name,),
)
SOCIAL = Party(
    name="social",
    description=topology.SOCIAL.description,
    consumer=topology.SOCIAL,
    publishes=frozenset({"social.completed"}) | STAGE_REPORTS,
    reads=frozenset(  # job.requested: the owner's brand voice and link template
        {
            "job.requested",
            "blog.completed",
            "blog.edited",
            "social.completed",
            "social.edited",
            *STOPPED_TYPES,
        }
    ),
    reads_buckets=(topology.JOBS_BUCKET.name,),
)
ILLUSTRATOR = Party(
    name="illustrator",
    description=topology.ILLUSTRATOR.description,
    consumer=topology.ILLUSTRATOR,
    publishes=frozenset({"image.completed"}) | STAGE_REPORTS,
    reads=frozenset({"job.requested", "blog.completed", "blog.edited", "image.completed", *STOPPED_TYPES}),
    reads_buckets=(topology.JOBS_BUCKET.name,),
)
PERSISTENCE = Party(
    name="persistence",
    description=topology.PERSISTENCE.description,
    consumer=topology.PERSISTENCE,
    # stage.failed: for a message a stage's consumer was given up on (the dead-letter keeper), and its own
    # (stage `job`) for an event it cannot record.
    publishes=frozenset({"job.completed", "job.failed", "job.cancelled", "stage.failed"}),
    answers=(subjects.QUERY_JOB, subjects.QUERY_JOBS),
    writes_buckets=(topology.JOBS_BUCKET.name,),
    keeps_dead_letters=True,
)

SERVICES: tuple[Party, ...] = (GATEWAY, RESEARCH, WRITER, SOCIAL, ILLUSTRATOR, PERSISTENCE)
BY_NAME: dict[str, Party] = {party.name: party for party in SERVICES}

# Other systems: read every stored event and every live delta with their own durable consumers; write nothing.
READER = Party(
    name="reader",
    description="other systems: their own durable consumers on CONTENT, read-only",
    reads=ALL_TYPES,
    watches_live=True,
)


def party(name: str) -> Party:
    try:
        return BY_NAME[name]
    except KeyError:
        raise UndeclaredEvent(f"{name!r} is not a declared service (pressroom_contracts.parties)") from None


def check_publish(service: str, event_type: str) -> None:
    if event_type not in party(service).publishes:
        raise UndeclaredEvent(
            f"{service} publishes {event_type!r}, which it has not declared in pressroom_contracts.parties"
        )


def check_read(service: str, event_type: str) -> None:
    if event_type not in party(service).receives:
        raise UndeclaredEvent(
            f"{service} reads {event_type!r}, which it has not declared in pressroom_contracts.parties"
        )


def producers(event_type: str) -> list[str]:
    return [p.name for p in SERVICES if event_type in p.publishes]


def consumers(event_type: str) -> list[str]:
    """Services whose durable delivers it."""
    return [p.name for p in SERVICES if event_type in p.consumes]


def readers(event_type: str) -> list[str]:
    """Services that read it back from the stream without consuming it."""
    return [p.name for p in SERVICES if event_type in p.reads and event_type not in p.consumes]


def describe(event_type: str) -> str:
    return (
        f"{event_type}\n"
        f"  published by {', '.join(producers(event_type)) or '-'}\n"
        f"  consumed by  {', '.join(consumers(event_type)) or '-'}\n"
        f"  read back by {', '.join(readers(event_type)) or '-'}"
    )


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or sorted(ALL_TYPES)
    unknown = [n for n in names if n not in ALL_TYPES]
    if unknown:
        print(f"unknown event type(s): {', '.join(unknown)}; known: {', '.join(sorted(ALL_TYPES))}")
        return 2
    print("\n".join(describe(n) for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
