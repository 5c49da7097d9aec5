"""Images for REST clients: presigned GET URLs (the bucket stays private) and the bytes for exports.

The gateway reaches the object store at S3_ENDPOINT, which may be a name only the servers resolve
(`seaweedfs:8333` inside compose). A presigned URL carries the host it was signed for, so when browsers
must use another address (PRESSROOM_GATEWAY_S3_PUBLIC_ENDPOINT, e.g. `https://files.example.com` or
`localhost:8333`) URLs are signed for that address instead. Signing is local arithmetic: the public
client is given the region so the SDK never asks that address for the bucket's location.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import Field

from pressroom_runtime.objectstore import ObjectStore
from pressroom_runtime.settings import S3Settings

DEFAULT_REGION = "us-east-1"  # MinIO's and SeaweedFS's default; set S3_REGION for AWS


class StorageSettings(S3Settings):
    """S3Settings plus what only the gateway needs to hand out image URLs."""

    public_endpoint: str | None = Field(
        None,
        validation_alias="PRESSROOM_GATEWAY_S3_PUBLIC_ENDPOINT",
        description="Address browsers use for the object store, when S3_ENDPOINT is internal.",
    )
    presign_seconds: int = Field(
        3600,
        ge=60,
        le=7 * 24 * 3600,  # SigV4's limit
        validation_alias="PRESSROOM_GATEWAY_PRESIGN_SECONDS",
        description="Seconds an image URL the gateway hands out keeps working (60 to 7 days).",
    )


class Storage:
    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings
        self.store = ObjectStore(settings)
        public = settings.model_copy(
            update={
                "endpoint": settings.public_endpoint or settings.endpoint,
                "region": settings.region or DEFAULT_REGION,
            }
        )
        self._signer = ObjectStore(public)
        self.expires = timedelta(seconds=settings.presign_seconds)

    async def presign(self, key: str) -> tuple[str, datetime]:
        """A GET URL for the object and when it stops working."""
        expires_at = datetime.now(UTC) + self.expires
        return await self._signer.presign(key, self.expires), expires_at

    async def get(self, key: str) -> bytes:
        return await self.store.get(key)
