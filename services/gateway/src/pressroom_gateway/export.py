"""A job's content outside Pressroom: the blog as sanitised HTML, the whole job as Markdown, and a zip
with the post, each social post and the image files (GET /v1/jobs/{id}/export.md, export.zip).

Exported Markdown starts with YAML front matter that Hugo, Jekyll and Astro read as it is (title,
description, date, slug, lang, tags, reading time, image), from the post's SEO pack
(pressroom_runtime.seo). Nothing exported expires: the illustration is a file of the zip, and the
Markdown points at it by its path there (images/…). A {link} placeholder left in a social post (no
public address was known for the post) is dropped.

Markdown is rendered by markdown-it-py (CommonMark, tables, strikethrough, raw HTML off) and then
cleaned by nh3 (an allow-list of tags and attributes, safe URL schemes, rel="noopener noreferrer" on
links): what the model or an editor wrote can never run script in a reader's browser.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime
from typing import Annotated

import nh3
import urllib3
import yaml
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from markdown_it import MarkdownIt
from minio.error import S3Error

from pressroom_contracts.events import SeoPack
from pressroom_contracts.jobs import Platform
from pressroom_contracts.platforms import LINK_PLACEHOLDER
from pressroom_contracts.queries import JobReply
from pressroom_runtime.logs import get_logger
from pressroom_runtime.seo import seo_pack, shorten

from .deps import CurrentClient, JobId, ServicesDep
from .errors import Unavailable, error_responses
from .presign import Storage

log = get_logger(__name__)

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

PLATFORM_NAMES = {
    Platform.linkedin: "LinkedIn",
    Platform.x: "X",
    Platform.threads: "Threads",
    Platform.facebook: "Facebook",
    Platform.instagram: "Instagram",
}


def render_html(markdown: str) -> str:
    return nh3.clean(_MARKDOWN.render(markdown))


def _title(job: JobReply) -> str:
    return job.blog.title if job.blog else job.job.topic


def _post(job: JobReply) -> str:
    """The blog as Markdown under its title (the writer's markdown may or may not start with it)."""
    title = _title(job)
    body = job.blog.markdown.strip() if job.blog else "_No blog post yet._"
    first = body.splitlines()[0].strip() if body else ""
    if first.lstrip("#").strip() == title.strip() and first.startswith("#"):
        return body + "\n"
    return f"# {title}\n\n{body}\n"


def _platform_name(platform: str) -> str:
    try:
        return PLATFORM_NAMES[Platform(platform)]
    except ValueError:
        return platform


def language_of(job: JobReply) -> str:
    """The language the post is in: the one asked for, unless the checks found it written in another."""
    checks = job.blog.checks if job.blog else None
    if checks is not None and checks.language_matches is False and checks.detected_language:
        return checks.detected_language
    return str(job.job.request.get("language") or "en")


def job_seo(job: JobReply) -> SeoPack:
    """The SEO pack of the job's latest post, edited or not (REST shows it; the front matter uses it)."""
    body = job.blog.markdown if job.blog else ""
    return seo_pack(
        topic=job.job.topic,
        title=_title(job),
        body=re.sub(r"^# [^\n]*\n+", "", body.split("\n## Sources\n")[0].strip()),
        language=language_of(job),
        words=job.blog.word_count if job.blog else 0,
        citations=[],
    )


def front_matter(job: JobReply, image: str | None) -> str:
    """YAML front matter for static site generators, between `---` lines."""
    title = _title(job)
    language = language_of(job)
    seo = job_seo(job)
    fields: dict[str, object] = {
        "title": title,
        "description": seo.meta_description,
        "date": (job.blog.created_at if job.blog else job.job.created_at).isoformat(),
        "slug": seo.slug,
        "lang": language,
        "tags": seo.keywords,
        "reading_time": seo.reading_minutes,
        "draft": False,
    }
    if image:
        fields["image"] = image
    return "---\n" + yaml.safe_dump(fields, allow_unicode=True, sort_keys=False) + "---\n\n"


def without_link(text: str) -> str:
    """A social post without the {link} placeholder, its spacing tidy."""
    if LINK_PLACEHOLDER not in text:
        return text.strip()
    lines = [" ".join(line.replace(LINK_PLACEHOLDER, " ").split()) for line in text.strip().split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def job_markdown(job: JobReply) -> str:
    """Front matter, post, each social post, the illustration (by its path in the zip): one document."""
    image = _image_files(job)[0][1] if job.images else None
    parts = [front_matter(job, image) + _post(job).rstrip(), ""]
    if job.social:
        parts += ["---", "", "## Social posts", ""]
        for platform, post in job.social.items():
            parts += [f"### {_platform_name(platform)}", "", without_link(post.text), ""]
    if job.images and image:
        parts += ["## Illustration", "", f"![{alt_text(job.images.prompt)}]({image})", ""]
    return "\n".join(parts).rstrip() + "\n"


ALT_CHARS = 200


def alt_text(text: str) -> str:
    """A picture's description as Markdown alt text: no brackets, within ALT_CHARS, cut at a word."""
    return shorten(re.sub(r"[\[\]\n]", " ", text), ALT_CHARS)


def slug(text: str, default: str = "job") -> str:
    value = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].strip("-")
    return value or default


def _image_files(job: JobReply) -> list[tuple[str, str]]:
    """(object key, file name in the zip) of the image and its variants, names unique."""
    if not job.images:
        return []
    keys = [("image", job.images.object_key)]
    for variant in job.images.variants:
        key = variant.get("object_key")
        if isinstance(key, str):
            keys.append((str(variant.get("name") or "variant"), key))
    files: list[tuple[str, str]] = []
    used: set[str] = set()
    for name, key in keys:
        base = key.rsplit("/", 1)[-1] or f"{name}.bin"
        if base in used:
            base = f"{slug(name, 'variant')}-{base}"
        used.add(base)
        files.append((key, f"images/{base}"))
    return files


async def job_zip(job: JobReply, storage: Storage) -> bytes:
    """post.md, social/<platform>.txt and images/<file> for the image and each variant."""
    images = _image_files(job)
    buffer = io.BytesIO()
    stamp = datetime.now(UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def add(name: str, data: bytes | str) -> None:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)

        post = front_matter(job, images[0][1] if images else None) + _post(job)
        if images:  # the post shows its illustration from the file beside it
            post += f"\n![{alt_text(job.images.prompt if job.images else '')}]({images[0][1]})\n"
        add("post.md", post)
        for platform, social in job.social.items():
            add(f"social/{slug(platform, 'platform')}.txt", without_link(social.text) + "\n")
        for key, name in images:
            try:
                data = await storage.get(key)
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                    log.warning("exported image missing from the store", job_id=job.job.id, key=key)
                    continue
                raise _store_unavailable(exc) from None
            except (OSError, urllib3.exceptions.HTTPError) as exc:
                raise _store_unavailable(exc) from None
            add(name, data)
    return buffer.getvalue()


def _store_unavailable(exc: Exception) -> Unavailable:
    log.warning("object store unavailable", error=repr(exc))
    return Unavailable("the object store is not answering; try again")


# ---- routes -------------------------------------------------------------------------------------------

router = APIRouter(tags=["export"])


async def _owned_job(job_id: JobId, client: CurrentClient, services: ServicesDep) -> JobReply:
    return await services.jobs.load(client, job_id)


OwnedJob = Annotated[JobReply, Depends(_owned_job)]


def _storage(services: ServicesDep) -> Storage:
    return services.storage


StorageDep = Annotated[Storage, Depends(_storage)]


@router.get(
    "/v1/jobs/{job_id}/export.md",
    summary="Export a job as Markdown",
    description="YAML front matter (Hugo, Jekyll, Astro), the blog post, each social post and the "
    "illustration by its path in export.zip (images/…): nothing in it expires. "
    "The bearer token may also be given as `?token=` for download links.",
    response_class=Response,
    responses={
        200: {"content": {"text/markdown": {}}, "description": "The job as one Markdown document."},
        **error_responses(401, 404, 503),
    },
)
async def export_markdown(job: OwnedJob) -> Response:
    return Response(
        job_markdown(job),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{slug(_title(job))}.md"'},
    )


@router.get(
    "/v1/jobs/{job_id}/export.zip",
    summary="Export a job as a zip",
    description="`post.md`, `social/<platform>.txt` and the illustration files under `images/`. "
    "The bearer token may also be given as `?token=` for download links.",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The zip archive."},
        **error_responses(401, 404, 503),
    },
)
async def export_zip(job: OwnedJob, storage: StorageDep) -> Response:
    return Response(
        await job_zip(job, storage),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{slug(_title(job))}.zip"'},
    )
