"""Publishing profiles: a client's brand voice and the public address of its posts.

Kept in the `pressroom-profiles` key-value bucket (client id -> ClientProfile). The client reads and
saves its own over GET/PUT /v1/profile (profile_routes.py); Jobs._publish_start (jobs.py) puts it on
every job.requested (the link template falling back to PRESSROOM_GATEWAY_PUBLIC_URL_TEMPLATE); each
edit a person saves joins the voice's examples, the oldest going past the last few.
"""

from __future__ import annotations

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from pydantic import ValidationError

from pressroom_contracts.topology import PROFILES_BUCKET
from pressroom_contracts.voice import ClientProfile
from pressroom_runtime.broker import bus_retry
from pressroom_runtime.logs import get_logger
from pressroom_runtime.words import said_words

log = get_logger(__name__)

ATTEMPTS = 5  # compare-and-set rounds when two edits land at once
MIN_EXAMPLE_WORDS = 6


@bus_retry
async def load(js: JetStreamContext, client_id: str) -> ClientProfile | None:
    try:
        kv = await js.key_value(PROFILES_BUCKET.name)
        entry = await kv.get(client_id)
    except (BucketNotFoundError, KeyNotFoundError):
        return None
    if not entry.value:
        return None
    try:
        return ClientProfile.decode(entry.value)
    except ValidationError as exc:  # saved before a rule it breaks: jobs run without it until it is replaced
        log.warning("ignoring a stored profile that is no longer valid", client_id=client_id, error=str(exc))
        return None


async def save(js: JetStreamContext, client_id: str, profile: ClientProfile) -> None:
    kv = await js.key_value(PROFILES_BUCKET.name)
    await kv.put(client_id, profile.encode())


def shows_a_voice(text: str) -> bool:
    """Whether a person's text is prose enough to learn a voice from: MIN_EXAMPLE_WORDS words or more,
    not one word repeated. Every later job of the client is written after its examples, so a test edit,
    "aaaa…", a row of emoji or a two-word heading is not kept as one."""
    words = [w.lower() for w in said_words(text)]
    return len(words) >= MIN_EXAMPLE_WORDS and len(set(words)) * 2 > len(words)


async def remember_edit(js: JetStreamContext, client_id: str, text: str) -> None:
    """`text`, a person's own version of a post, becomes the newest example of the client's voice when
    it shows one. The edit itself is already stored: a bucket that cannot be written is logged, never
    an error."""
    if not shows_a_voice(text):
        return
    try:
        await _remember(js, client_id, text)
    except (BucketNotFoundError, nats.errors.Error, ValidationError) as exc:
        log.warning("could not keep an edit as a voice example", client_id=client_id, error=repr(exc))


async def _remember(js: JetStreamContext, client_id: str, text: str) -> None:
    kv = await js.key_value(PROFILES_BUCKET.name)
    for _ in range(ATTEMPTS):
        try:
            entry = await kv.get(client_id)
            profile, revision = ClientProfile.decode(entry.value or b"{}"), entry.revision
        except KeyNotFoundError:
            profile, revision = ClientProfile(), None
        updated = profile.model_copy(update={"voice": profile.voice.with_edit(text)})
        try:
            if revision is None:
                await kv.create(client_id, updated.encode())
            else:
                await kv.update(client_id, updated.encode(), last=revision)
            return
        except KeyWrongLastSequenceError:
            continue  # another edit landed first: read again
    log.warning("could not keep an edit as a voice example", client_id=client_id)
