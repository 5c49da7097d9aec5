"""The gateway's REST API, answers validated with the contracts' models.

Every refusal is `{"error": {"code", "message"}}` with a matching status (docs/protocol.md). The job
answers are persistence's `JobReply`/`JobsReply` (pressroom_contracts.queries) with what the gateway adds
to them; only the additions this client reads are declared here.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from pressroom_contracts.jobs import Platform
from pressroom_contracts.queries import ImageView, JobReply, JobsReply, JobStatus

from .errors import AuthRefused, ClientError, Unreachable, reason
from .settings import job_path

Model = TypeVar("Model", bound=BaseModel)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class ImageAnswer(ImageView):
    url: str  # presigned: the bucket itself is private


class JobAnswer(JobReply):
    images: ImageAnswer | None  # the same image, with its URL


class VersionAnswer(BaseModel):
    job_id: str
    version: int


class Refused(ClientError):
    """The gateway answered with an error body: `code` is its machine-readable reason."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.status = status
        self.code = code


def refusal(response: httpx.Response) -> ClientError:
    try:
        detail = ErrorBody.model_validate_json(response.content).error
    except ValidationError:
        text = response.text.strip()[:300] or response.reason_phrase
        return ClientError(f"the gateway answered HTTP {response.status_code}: {text}")
    if response.status_code == 401:
        return AuthRefused(detail.message)
    if response.status_code == 503:
        return Unreachable(f"{detail.message} ({detail.code})")
    if response.status_code == 429 and "Retry-After" in response.headers:
        return Refused(429, detail.code, f"{detail.message}; retry in {response.headers['Retry-After']} s")
    return Refused(response.status_code, detail.code, detail.message)


class Rest:
    def __init__(self, gateway: str, token: str | None, timeout: float = 30.0) -> None:
        self.gateway = gateway
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(base_url=gateway, headers=headers, timeout=timeout)

    def __enter__(self) -> Rest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise Unreachable(
                f"cannot reach the gateway at {self.gateway} ({reason(exc)}); is it running?"
            ) from None
        except httpx.HTTPError as exc:
            raise Unreachable(f"{method} {self.gateway}{path} failed: {reason(exc)}") from None
        if response.is_error:
            raise refusal(response)
        return response

    def answer(self, model: type[Model], method: str, path: str, **kwargs: Any) -> Model:
        response = self.request(method, path, **kwargs)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ClientError(
                f"{method} {path}: unexpected answer from the gateway ({exc.errors()[0]['msg']})"
            ) from None

    # ---- reads ----------------------------------------------------------------------------------------

    def jobs(self, status: JobStatus | None, limit: int, cursor: str | None) -> JobsReply:
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status.value
        if cursor:
            params["cursor"] = cursor
        return self.answer(JobsReply, "GET", "/v1/jobs", params=params)

    def job(self, job_id: str) -> JobAnswer:
        return self.answer(JobAnswer, "GET", job_path(job_id))

    def export(self, job_id: str, fmt: str) -> bytes:
        return self.request("GET", job_path(job_id, f"/export.{fmt}")).content

    # ---- writes: each is an event the stages act on; 202 once the stream has it -----------------------

    def cancel(self, job_id: str, reason: str | None) -> None:
        self.request("POST", job_path(job_id, "/cancel"), json={"reason": reason} if reason else None)

    def regenerate(
        self, job_id: str, stage: str, platform: Platform | None, instructions: str | None
    ) -> None:
        body: dict[str, Any] = {"stage": stage}
        if platform is not None:
            body["platform"] = platform.value
        if instructions:
            body["instructions"] = instructions
        self.request("POST", job_path(job_id, "/regenerate"), json=body)

    def edit_blog(self, job_id: str, title: str, markdown: str) -> int:
        body = {"title": title, "markdown": markdown}
        return self.answer(VersionAnswer, "PUT", job_path(job_id, "/blog"), json=body).version

    def edit_social(self, job_id: str, platform: Platform, text: str) -> int:
        path = job_path(job_id, f"/social/{platform.value}")
        return self.answer(VersionAnswer, "PUT", path, json={"text": text}).version
