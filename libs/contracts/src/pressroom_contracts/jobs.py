"""What a person asks for: the job request (and what they ask of an existing job), validated once at the
edge and carried by the events.

Every free-text field is `Text`: a string PostgreSQL and a model can take, so no control character
(tab, newline and carriage return aside), no NUL and no lone surrogate; and no bidirectional override
or isolate, which would make what a person reads differ from what the model is given. Refused with a
message naming the field, on every transport, before anything is published.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

# C0 controls but tab, newline and carriage return; DEL; C1 controls; UTF-16 surrogates (only reachable
# through JSON escapes such as "\ud800", and not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# What shows nothing on screen: format characters (zero-width space, joiners, BOM …), separators, controls.
_INVISIBLE = ("Cc", "Cf", "Zs", "Zl", "Zp")


def storable(value: str) -> str:
    found = _UNSTORABLE.search(value)
    if found is not None:
        raise ValueError(f"must not contain control characters (found U+{ord(found.group()):04X})")
    found = _BIDI_CONTROLS.search(value)
    if found is not None:
        raise ValueError(
            f"must not contain bidirectional formatting characters (found U+{ord(found.group()):04X})"
        )
    return value


def visible_length(value: str) -> int:
    return sum(unicodedata.category(char) not in _INVISIBLE for char in value)


Text = Annotated[str, AfterValidator(storable)]


class Platform(StrEnum):
    linkedin = "linkedin"
    x = "x"
    threads = "threads"
    facebook = "facebook"
    instagram = "instagram"


class Length(StrEnum):
    short = "short"
    medium = "medium"
    long = "long"


# Target word counts of a blog post by requested length.
TARGET_WORDS: dict[Length, int] = {Length.short: 300, Length.medium: 700, Length.long: 1200}

# A BCP 47 tag, loosely: language, then optional script/region/variant subtags.
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class JobRequest(BaseModel):
    """The options of one job. Unknown fields are refused so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: Annotated[Text, Field(description="What to write about (3-500 characters).")]
    research: bool = True
    platforms: Annotated[
        list[Platform], Field(min_length=1, max_length=5, description="Platforms to derive a post for.")
    ] = [Platform.linkedin, Platform.x]
    tone: Annotated[Text, Field(max_length=60)] = "informative"
    audience: Annotated[Text, Field(max_length=120)] = "a general audience"
    language: Annotated[str, Field(description="BCP 47 language tag of the output.")] = "en"
    length: Length = Length.medium
    image: bool = True
    sources: Annotated[list[AnyHttpUrl], Field(max_length=10, description="URLs research must include.")] = []
    x_thread: Annotated[bool, Field(description="Write the X post as a thread of numbered posts.")] = False
    budget_usd: Annotated[
        float | None, Field(gt=0, le=1000, description="Stop the job when its estimated cost exceeds this.")
    ] = None

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        value = " ".join(value.split())
        if not 3 <= len(value) <= 500:
            raise ValueError("must be 3 to 500 characters after trimming")
        if visible_length(value) < 3:
            raise ValueError("must have at least 3 visible characters")
        return value

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: list[Platform]) -> list[Platform]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a platform")
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not _BCP47.match(value):
            raise ValueError("must be a BCP 47 language tag such as 'en' or 'pt-BR'")
        return value

    @property
    def target_words(self) -> int:
        return TARGET_WORDS[self.length]


# ---- what a person asks of an existing job ----------------------------------------------------------------
# Shared by every transport (REST bodies, /v1/ws frames), so each one refuses the same input the same way.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class CancelRequest(_Strict):
    reason: Annotated[Text, Field(min_length=1, max_length=200)] = "cancelled by the user"


class RegenerateRequest(_Strict):
    stage: Literal["blog", "social", "image"]
    platform: Platform | None = Field(None, description="social only: which post; all when omitted.")
    instructions: Annotated[Text | None, Field(max_length=500)] = None


class BlogEdit(_Strict):
    title: Annotated[Text, Field(min_length=1, max_length=300)]
    markdown: Annotated[Text, Field(min_length=1, max_length=200_000)]

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return _not_blank(" ".join(value.split()))

    @field_validator("markdown")
    @classmethod
    def _markdown(cls, value: str) -> str:
        return _not_blank(value)


class SocialEdit(_Strict):
    text: Annotated[Text, Field(min_length=1, max_length=70_000)]

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return _not_blank(value)
