"""The object store (MinIO, SeaweedFS or any S3) through the `minio` SDK, off the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from .settings import S3Settings


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size_bytes: int
    content_type: str


@dataclass(frozen=True)
class ListedObject:
    key: str
    last_modified: datetime  # timezone-aware (UTC)
    size_bytes: int


class ObjectStore:
    def __init__(self, settings: S3Settings) -> None:
        endpoint = settings.endpoint.removeprefix("http://").removeprefix("https://").rstrip("/")
        self.bucket = settings.bucket
        self.client = Minio(
            endpoint,
            access_key=settings.access_key.get_secret_value(),
            secret_key=settings.secret_key.get_secret_value(),
            secure=settings.secure or settings.endpoint.startswith("https://"),
            region=settings.region,
        )

    async def ensure_bucket(self) -> None:
        def ensure() -> None:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)

        await asyncio.to_thread(ensure)

    async def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        digest = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(
            self.client.put_object,
            self.bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
            metadata={"sha256": digest},
        )
        return StoredObject(key=key, sha256=digest, size_bytes=len(data), content_type=content_type)

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            response = self.client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(read)

    async def exists(self, key: str) -> bool:
        def stat() -> bool:
            try:
                self.client.stat_object(self.bucket, key)
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                    return False
                raise
            return True

        return await asyncio.to_thread(stat)

    async def presign(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        return await asyncio.to_thread(self.client.presigned_get_object, self.bucket, key, expires)

    async def list_objects(self, prefix: str = "") -> list[ListedObject]:
        """Every object whose key starts with `prefix` (recursively), with its upload time."""

        def listing() -> list[ListedObject]:
            found = []
            for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if item.is_dir or item.object_name is None:
                    continue
                modified = item.last_modified or datetime.now(UTC)
                if modified.tzinfo is None:
                    modified = modified.replace(tzinfo=UTC)
                found.append(ListedObject(item.object_name, modified, item.size or 0))
            return found

        return await asyncio.to_thread(listing)

    async def delete(self, *keys: str) -> None:
        """Removes the objects; keys that do not exist are fine (S3 deletes are idempotent)."""
        if not keys:
            return

        def remove() -> None:
            errors = list(self.client.remove_objects(self.bucket, [DeleteObject(k) for k in keys]))
            failed = [e for e in errors if e.code not in ("NoSuchKey", "NoSuchObject", "NotFound")]
            if failed:
                first = failed[0]
                raise RuntimeError(
                    f"could not delete {len(failed)} object(s), e.g. {first.name}: {first.message}"
                )

        await asyncio.to_thread(remove)
