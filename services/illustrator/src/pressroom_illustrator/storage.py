"""Where pictures go in the object store, and what an upload failure means for the message."""

from __future__ import annotations

import re

from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError

from pressroom_contracts.subjects import JOB_ID_PATTERN
from pressroom_runtime.errors import PermanentError, TransientError
from pressroom_runtime.objectstore import ObjectStore, StoredObject

from .adapters import Picture

PREFIX = "jobs/"
_KEY = re.compile(rf"^{PREFIX}(?P<job>{JOB_ID_PATTERN.strip('^$')})/[^/]+$")

# The store refuses us: retrying will not help until an operator fixes the configuration.
_REFUSED = frozenset(
    {
        "AccessDenied",
        "AccountProblem",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "InvalidBucketName",
        "NoSuchBucket",
        "SignatureDoesNotMatch",
    }
)


def object_key(job_id: str, version: int, variant: str | None = None) -> str:
    """jobs/<job>/cover-v<version>.png, or jobs/<job>/cover-v<version>-<variant>.png."""
    suffix = f"-{variant}" if variant and variant != "main" else ""
    return f"{PREFIX}{job_id}/cover-v{version}{suffix}.png"


def job_of(key: str) -> str | None:
    """The job id in a key this service wrote, or None for anything else."""
    match = _KEY.match(key)
    return match["job"] if match else None


async def upload(store: ObjectStore, key: str, picture: Picture) -> StoredObject:
    try:
        return await store.put(key, picture.data, picture.content_type)
    except S3Error as exc:
        message = f"the object store refused {key}: {exc.code} ({exc.message})"
        if exc.code in _REFUSED:
            raise PermanentError(message, code="storage_refused") from exc
        raise TransientError(message, code="storage_unavailable") from exc
    except (MinioException, HTTPError) as exc:  # 5xx, garbled answers, connection failures
        raise TransientError(
            f"the object store is unavailable for {key}: {type(exc).__name__}: {exc}",
            code="storage_unavailable",
        ) from exc
