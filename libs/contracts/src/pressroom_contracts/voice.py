"""A client's publishing profile: the brand voice every prompt of its jobs follows, and the public
address of its posts. Kept in the `pressroom-profiles` key-value bucket (topology.PROFILES_BUCKET), key =
client id; the gateway puts it on each job.requested, so stages never read the bucket themselves.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .jobs import Text

MAX_EXAMPLES = 3
MAX_EDITS = 5  # a person's last edits of this client's posts, newest last
MAX_EXAMPLE_CHARS = 4000

# Text: what goes into every prompt of the client's jobs takes what a job request's free text takes.
Words = Annotated[list[Annotated[Text, Field(min_length=1, max_length=60)]], Field(max_length=30)]
Example = Annotated[Text, Field(min_length=1, max_length=MAX_EXAMPLE_CHARS)]


class VoiceProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: Annotated[
        Text, Field(max_length=1000, description="How the brand sounds, in a few sentences.")
    ] = ""
    use_words: Words = Field(default=[], description="Words and phrases to use.")
    avoid_words: Words = Field(default=[], description="Words and phrases never to use.")
    examples: Annotated[list[Example], Field(max_length=MAX_EXAMPLES, description="Posts in the voice.")] = []
    edits: Annotated[
        list[Example], Field(max_length=MAX_EDITS, description="A person's last edits, kept by the gateway.")
    ] = []

    @property
    def empty(self) -> bool:
        return not (self.description or self.use_words or self.avoid_words or self.examples or self.edits)

    def with_edit(self, text: str) -> VoiceProfile:
        """The profile with `text` as the newest edit, the oldest dropped past MAX_EDITS."""
        edits = [*self.edits, text.strip()[:MAX_EXAMPLE_CHARS]][-MAX_EDITS:]
        return self.model_copy(update={"edits": edits})


class ClientProfile(BaseModel):
    """What the `pressroom-profiles` bucket keeps per client."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    voice: VoiceProfile = VoiceProfile()
    link_template: str | None = Field(
        default=None,
        description="Public address of a post, with {slug}: e.g. https://blog.example.com/{slug}",
    )

    @field_validator("link_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return check_link_template(value)

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, data: bytes) -> ClientProfile:
        return cls.model_validate_json(data)


def check_link_template(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not value.startswith(("https://", "http://")) or "{slug}" not in value:
        raise ValueError("must be an http(s) address with {slug} in it, e.g. https://blog.example.com/{slug}")
    return value


def fill_link(template: str, slug: str) -> str:
    return template.replace("{slug}", slug)
