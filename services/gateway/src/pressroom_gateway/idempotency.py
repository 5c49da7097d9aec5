"""`Idempotency-Key` for POST /v1/jobs: the same client sending the same key within 24 h gets the same job.

Why a KV bucket and not only the stream's de-duplication: the stream drops a repeated job.requested only
within its duplicate window (15 minutes), and a job id derived from the key would outlive 24 h. So the
mapping lives in the NATS KV bucket `pressroom-idempotency` (declared in pressroom_contracts.topology and
created by provisioning, every entry expiring 24 h after it was written), keyed by a hash of (client,
key), holding the job id and a fingerprint of the request:

1. `create` is atomic: of two concurrent first requests exactly one records its new job id; the other
   reads the winner's and answers with it.
2. The entry is written *before* job.requested is published, and a repeat whose job is not on the stream
   yet publishes that job.requested itself (same job id, so the same Nats-Msg-Id: a winner still
   publishing and the repeat are de-duplicated by the stream). A crash or a failed publish between the
   two steps is therefore completed by the client's retry instead of leaving a key that names no job.
3. A repeat with a different request is refused (422), as the IETF Idempotency-Key draft asks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.topology import IDEMPOTENCY_BUCKET
from pressroom_runtime.logs import get_logger

from .bus import Bus
from .errors import Unavailable

log = get_logger(__name__)

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Record:
    job_id: str
    fingerprint: str


def fingerprint(request: JobRequest) -> str:
    """Equal for requests that mean the same (the validated model, defaults filled in)."""
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


def kv_key(client_id: str, key: str) -> str:
    # KV keys allow only [-/_=.a-zA-Z0-9]; a hash also keeps the client's key out of the bucket.
    return hashlib.sha256(f"{client_id}\n{key}".encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._kv: KeyValue | None = None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await self.bus.js.key_value(IDEMPOTENCY_BUCKET.name)
            except BucketNotFoundError:
                log.error(
                    "the idempotency bucket is missing: run provisioning", bucket=IDEMPOTENCY_BUCKET.name
                )
                raise Unavailable("the idempotency store is not provisioned; try again later") from None
        return self._kv

    async def lookup(self, client_id: str, key: str) -> Record | None:
        kv = await self._bucket()
        try:
            entry = await kv.get(kv_key(client_id, key))
        except KeyNotFoundError:  # also a deleted or expired entry
            return None
        if not entry.value:
            return None
        return Record(**json.loads(entry.value))

    async def claim(self, client_id: str, key: str, record: Record) -> Record:
        """Records `record` unless the key is taken; returns the record that holds the key."""
        kv = await self._bucket()
        try:
            await kv.create(kv_key(client_id, key), json.dumps(asdict(record)).encode())
            return record
        except KeyWrongLastSequenceError:
            existing = await self.lookup(client_id, key)
            if existing is None:  # expired in between: vanishingly unlikely; take it again
                return await self.claim(client_id, key, record)
            return existing
