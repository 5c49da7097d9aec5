"""GET/PUT /v1/profile: a client's brand voice and link template (stored by profiles.py)."""

from __future__ import annotations

from fastapi import APIRouter

from pressroom_contracts.voice import ClientProfile
from pressroom_runtime.logs import get_logger

from .deps import CurrentClient, ServicesDep
from .errors import error_responses
from .profiles import load, save

log = get_logger(__name__)

router = APIRouter(tags=["profile"])


@router.get(
    "/v1/profile",
    response_model=ClientProfile,
    summary="Your publishing profile",
    description="Your brand voice (with the last edits your people saved, as examples) and the public "
    "address template of your posts.",
    responses=error_responses(401, 503),
)
async def get_profile(client: CurrentClient, services: ServicesDep) -> ClientProfile:
    return await load(services.bus.js, client.id) or ClientProfile()


@router.put(
    "/v1/profile",
    response_model=ClientProfile,
    summary="Save your publishing profile",
    description="Every prompt of your next jobs follows this voice; `link_template` (with `{slug}`) fills "
    "the `{link}` of their social posts. Edits kept as examples stay unless you send your own list.",
    responses=error_responses(413, 401, 422, 503),
)
async def put_profile(body: ClientProfile, client: CurrentClient, services: ServicesDep) -> ClientProfile:
    stored = await load(services.bus.js, client.id)
    if stored and not body.voice.edits:
        body = body.model_copy(update={"voice": body.voice.model_copy(update={"edits": stored.voice.edits})})
    await save(services.bus.js, client.id, body)
    log.info("profile saved", client_id=client.id)
    return body
