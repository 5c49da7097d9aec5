"""Dead letters: every message a consumer gave up on, with the reason, kept in the DEADLETTER stream and
replayable by an operator.

Two ways a message ends up here:
- a consumer terminates it (invalid in itself, a job nobody requested, a permanent failure, attempts
  run out): the runtime records it before the TERM (consumer.py);
- nats-server stops delivering it after max_deliver — a handler that crashes the process each time
  never gets to say anything — and publishes a MAX_DELIVERIES advisory, which the DEADLETTER stream
  keeps; the keeper (run by persistence) turns it into a dead letter and, for a stage's message,
  publishes that stage's `stage.failed`, so the job ends visibly instead of hanging.

    python -m pressroom_runtime.deadletter list [--consumer writer] [--job <id>]
    python -m pressroom_runtime.deadletter show <seq>
    python -m pressroom_runtime.deadletter replay <seq>

as a NATS user that may read DEADLETTER and publish on CONTENT (NATS_URL, NATS_USER, NATS_PASSWORD): on the
embedded stack, `eval "$(.venv/bin/pressroom env --as admin)"` first.

A replay publishes the original message again on its own subject (a new stream message, so every
consumer of that subject sees it; each is idempotent). The dead letter stays, for the record.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError
from pydantic import BaseModel, Field, ValidationError

from pressroom_contracts import subjects
from pressroom_contracts.events import Envelope, Producer, Stage, StageFailed, StageFailedEvent
from pressroom_contracts.topology import CONSUMERS, ConsumerSpec

from .broker import nats_servers
from .logs import configure_logging, get_logger
from .observability import DEAD_LETTERS
from .settings import ServiceSettings

log = get_logger(__name__)

MAX_DELIVERIES = "max_deliveries"


class DeadLetter(BaseModel):
    consumer: str
    stream: str
    stream_seq: int
    subject: str
    job_id: str | None = None
    reason: str = Field(description="A code: invalid_event, job_unknown, max_deliveries, a failure's code.")
    detail: str = ""
    deliveries: int = 1
    data_b64: str = Field("", description="The message body, base64 (empty when the stream lost it).")
    headers: dict[str, str] = {}
    recorded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def data(self) -> bytes:
        return base64.b64decode(self.data_b64)

    @classmethod
    def of(
        cls,
        msg: Msg | None,
        *,
        consumer: str,
        stream: str,
        stream_seq: int,
        subject: str,
        reason: str,
        detail: str,
        deliveries: int,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> DeadLetter:
        job_id = None
        try:
            job_id, _ = subjects.parse_content(subject)
        except subjects.SubjectError:
            pass
        return cls(
            consumer=consumer, stream=stream, stream_seq=stream_seq, subject=subject, job_id=job_id,
            reason=reason, detail=detail[:4000], deliveries=deliveries,
            data_b64=base64.b64encode(data if data is not None else (msg.data if msg else b"")).decode(),
            headers={k: str(v) for k, v in (headers if headers is not None else (msg.headers if msg else None) or {}).items()},
        )  # fmt: skip


async def record(nc: Client, letter: DeadLetter) -> int:
    """Stores the dead letter (once per consumer and stream message); returns its DEADLETTER sequence."""
    # The body's digest too: a stream recreated from scratch numbers its messages from 1 again.
    digest = hashlib.sha256(letter.data_b64.encode()).hexdigest()[:16]
    ack = await nc.jetstream().publish(
        subjects.deadletter(letter.consumer),
        letter.model_dump_json().encode(),
        headers={"Nats-Msg-Id": f"{letter.consumer}:{letter.stream}:{letter.stream_seq}:{digest}"},
        stream=subjects.DEADLETTER_STREAM,
    )
    if not ack.duplicate:
        DEAD_LETTERS.labels(letter.consumer, letter.reason).inc()
    return ack.seq


async def read(nc: Client, seq: int) -> DeadLetter:
    msg = await nc.jetstream().get_msg(subjects.DEADLETTER_STREAM, seq=seq)
    if not msg.subject or not msg.subject.startswith(subjects.DEADLETTER_PREFIX + "."):
        raise LookupError(f"message {seq} of {subjects.DEADLETTER_STREAM} is not a dead letter")
    return DeadLetter.model_validate_json(msg.data or b"")


async def letters(
    nc: Client, *, consumer: str | None = None, job_id: str | None = None, limit: int = 100
) -> list[tuple[int, DeadLetter]]:
    """Dead letters, oldest first, with their sequence in the DEADLETTER stream."""
    js = nc.jetstream()
    subject = subjects.deadletter(consumer) if consumer else subjects.all_deadletters()
    found: list[tuple[int, DeadLetter]] = []
    seq = 1
    while len(found) < limit:
        try:
            msg = await js.get_msg(subjects.DEADLETTER_STREAM, seq=seq, subject=subject, next=True)
        except NotFoundError:
            break
        seq = (msg.seq or seq) + 1
        try:
            letter = DeadLetter.model_validate_json(msg.data or b"")
        except ValidationError:
            continue
        if job_id is None or letter.job_id == job_id:
            found.append((seq - 1, letter))
    return found


async def replay(nc: Client, seq: int) -> int:
    """Publishes the dead letter's message again on its subject; returns its new stream sequence."""
    letter = await read(nc, seq)
    if not letter.data_b64:
        raise LookupError(f"dead letter {seq} has no message body to replay")
    # Without the original Nats-Msg-Id: the stream would drop it as a duplicate inside its window.
    headers = {k: v for k, v in letter.headers.items() if not k.startswith("Nats-")}
    ack = await nc.jetstream().publish(
        letter.subject, letter.data, headers=headers or None, stream=letter.stream
    )
    log.info("dead letter replayed", seq=seq, subject=letter.subject, new_seq=ack.seq)
    return ack.seq


class Keeper:
    """Turns nats-server's MAX_DELIVERIES advisories into dead letters and stage.failed events."""

    def __init__(
        self, nc: Client, publish: Callable[[Envelope], Awaitable[object]], producer: Producer
    ) -> None:
        self.nc = nc
        self.publish = publish
        self.producer = producer
        self.specs: dict[tuple[str, str], ConsumerSpec] = {(c.stream, c.durable): c for c in CONSUMERS}

    async def handle(self, msg: Msg) -> None:
        """One advisory; raises (and so is tried again) only when NATS cannot be reached."""
        try:
            advisory = json.loads(msg.data)
            stream, consumer, seq = advisory["stream"], advisory["consumer"], int(advisory["stream_seq"])
            deliveries = int(advisory.get("deliveries", 0))
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable advisory", subject=msg.subject)
            return
        try:
            original = await self.nc.jetstream().get_msg(stream, seq=seq)
            subject, data, headers = original.subject or "", original.data or b"", original.headers or {}
        except NotFoundError:  # aged out of its stream meanwhile
            subject, data, headers = "", b"", {}
        spec = self.specs.get((stream, consumer))
        detail = (
            f"{consumer} stopped receiving it after {deliveries} deliveries: its handler crashed, hung or "
            "failed unexpectedly every time"
        )
        letter = DeadLetter.of(
            None, consumer=consumer, stream=stream, stream_seq=seq, subject=subject, reason=MAX_DELIVERIES,
            detail=detail, deliveries=deliveries, data=data, headers=headers,
        )  # fmt: skip
        await record(self.nc, letter)
        log.error("message given up after max deliveries", consumer=consumer, subject=subject, seq=seq)
        if spec is not None and spec.stage is not None and letter.job_id is not None:
            await self.publish(
                StageFailedEvent(
                    job_id=letter.job_id,
                    producer=self.producer,
                    attempt=max(1, deliveries),
                    data=StageFailed(
                        stage=Stage(spec.stage), code=MAX_DELIVERIES, message=detail, retryable=True,
                        attempt=max(1, deliveries),
                    ),
                )
            )  # fmt: skip


# ---- the operator's command -------------------------------------------------------------------------


ADMIN_HINT = (
    'it needs a NATS user that may read DEADLETTER (embedded stack: eval "$(pressroom env --as admin)")'
)


async def _main(args: argparse.Namespace, settings: ServiceSettings) -> int:
    password = settings.nats_password.get_secret_value() if settings.nats_password else None
    refusals: list[Exception] = []

    async def refused(exc: Exception) -> None:  # the server's asynchronous errors: permissions, auth
        refusals.append(exc)

    try:
        nc = await nats.connect(
            nats_servers(settings.nats_url),
            user=settings.nats_user,
            password=password,
            connect_timeout=5,
            allow_reconnect=False,  # an operator's one-shot command: fail at once, not in a retry loop
            error_cb=refused,
        )
    except Exception as exc:  # refused credentials, nobody listening: said in one line, not a traceback
        print(f"error: cannot connect to NATS at {settings.nats_url}: {exc or type(exc).__name__}; "
              f"{ADMIN_HINT}", file=sys.stderr)  # fmt: skip
        return 2
    try:
        if args.command == "list":
            for seq, letter in await letters(nc, consumer=args.consumer, job_id=args.job, limit=args.limit):
                print(f"{seq}\t{letter.recorded_at:%Y-%m-%d %H:%M:%S}\t{letter.consumer}\t{letter.reason}\t"
                      f"{letter.subject}\t{letter.detail[:120]}")  # fmt: skip
        elif args.command == "show":
            letter = await read(nc, args.seq)
            print(
                json.dumps(
                    {**letter.model_dump(mode="json"), "data": letter.data.decode(errors="replace")}, indent=2
                )
            )
        else:
            print(f"replayed as {subjects.STREAM} message {await replay(nc, args.seq)}")
    except (LookupError, NotFoundError) as exc:
        print(f"error: {exc or 'no such dead letter'}", file=sys.stderr)
        return 1
    except TimeoutError:  # what a request the user may not make gets (the server says why, aside)
        reason = f" ({refusals[-1]})" if refusals else ""
        print(f"error: NATS did not answer{reason}; {ADMIN_HINT}", file=sys.stderr)
        return 2
    finally:
        await nc.close()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pressroom_runtime.deadletter",
        description=" ".join(__doc__.split("\n\n")[0].split()),  # the first paragraph
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="dead letters, oldest first")
    listing.add_argument("--consumer", help="only this consumer's (research, writer, …)")
    listing.add_argument("--job", help="only this job's")
    listing.add_argument("--limit", type=int, default=100)
    commands.add_parser("show", help="one dead letter with its message").add_argument("seq", type=int)
    commands.add_parser("replay", help="publish its message again").add_argument("seq", type=int)
    args = parser.parse_args(argv)
    settings = ServiceSettings()
    configure_logging(settings.log_level, settings.log_format, service="deadletter")
    raise SystemExit(asyncio.run(_main(args, settings)))


if __name__ == "__main__":
    main()
