"""A configuration reference in Markdown, rendered from pydantic-settings classes.

Each settings field becomes a table row: the environment variables that set it, its type and bounds, its
default and its `Field(description=...)`. The names are worked out the way pydantic-settings reads them
(tests/test_configuration.py compares them with pydantic-settings' own answer for every class): the
`validation_alias` names when there are any, and the field's name under the class's `env_prefix` too
when there are none or the class sets `populate_by_name`; case does not matter.

This module knows no service: the workspace's docs/generate.py lists the classes of every service and
writes docs/configuration.md with it.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings


@dataclass(frozen=True)
class Table:
    """One settings class, or the fields it adds to a base that has a table of its own (`after`)."""

    settings: type[BaseSettings]
    title: str
    intro: str = ""
    after: type[BaseSettings] | None = None  # leave out the fields this base class declares
    prefix: str | None = None  # shown instead of the class's env_prefix, e.g. PRESSROOM_<SERVICE>_


@dataclass(frozen=True)
class Extra:
    """A variable read outside any settings class, and the source file that reads it."""

    name: str
    source: str
    description: str


@dataclass(frozen=True)
class Section:
    title: str
    intro: str = ""
    tables: Sequence[Table] = ()
    extras: Sequence[Extra] = field(default_factory=tuple)


def env_names(settings: type[BaseSettings], name: str, prefix: str | None = None) -> list[str]:
    """The environment variables that set this field, in the order they are looked up (the first one set
    wins), upper-cased."""
    info = settings.model_fields[name]
    config = settings.model_config
    if prefix is None:
        prefix = config.get("env_prefix", "")
    aliases: list[str] = []
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        for choice in alias.choices:
            if not isinstance(choice, str):
                raise TypeError(f"{settings.__name__}.{name}: an AliasPath is not supported here")
            aliases.append(choice)
    elif isinstance(alias, str):
        aliases.append(alias)
    elif alias is not None:
        raise TypeError(f"{settings.__name__}.{name}: an AliasPath is not supported here")
    names = [a.upper() for a in aliases]
    if not aliases or config.get("populate_by_name") or config.get("validate_by_name"):
        names.append((prefix + name).upper())
    return list(dict.fromkeys(names))


def own_fields(table: Table) -> list[str]:
    inherited = set(table.after.model_fields) if table.after is not None else set()
    return [name for name in table.settings.model_fields if name not in inherited]


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        return " or ".join(_type_name(member) for member in members)
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in annotation)
    if annotation is SecretStr:
        return "secret"
    if annotation is Path:
        return "path"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


# Field(ge=1) keeps annotated_types.Ge(ge=1) in the field's metadata, and so on.
_BOUNDS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))


def type_text(info: FieldInfo) -> str:
    text = _type_name(info.annotation)
    for constraint in info.metadata:
        for attribute, sign in _BOUNDS:
            value = getattr(constraint, attribute, None)
            if value is not None:
                text += f", {sign} {value}"
    return text


def default_text(info: FieldInfo) -> str:
    """The default as a user would write it; none for secrets, and none computed on this machine."""
    if info.default_factory is not None:
        return "*computed*"
    default = info.default
    if default is PydanticUndefined:
        return "*required*"
    if info.annotation is SecretStr or SecretStr in get_args(info.annotation):
        return "—"
    if default is None:
        return "*unset*"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, enum.Enum):
        return f"`{default.value}`"
    if isinstance(default, str) and not default:
        return '`""`'
    return f"`{default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(table: Table) -> str:
    lines = [f"### {table.title}", ""]
    if table.intro:
        lines += [table.intro, ""]
    if not table.settings.model_config.get("env_ignore_empty", False):
        lines += ["An empty variable here is a value, not unset.", ""]
    lines += ["| variable | type | default | what it does |", "|---|---|---|---|"]
    for name in own_fields(table):
        info = table.settings.model_fields[name]
        first, *also = env_names(table.settings, name, table.prefix)
        variable = f"`{first}`" + "".join(f"<br>also `{other}`" for other in also)
        description = info.description or ""
        lines.append(
            f"| {variable} | {_cell(type_text(info))} | {_cell(default_text(info))} | {_cell(description)} |"
        )
    return "\n".join(lines) + "\n"


def render_extras(extras: Sequence[Extra]) -> str:
    lines = ["| variable | read by | what it does |", "|---|---|---|"]
    for extra in extras:
        lines.append(f"| `{extra.name}` | `{extra.source}` | {_cell(extra.description)} |")
    return "\n".join(lines) + "\n"


def render(title: str, intro: str, sections: Sequence[Section]) -> str:
    parts = [f"# {title}\n", intro.strip() + "\n"]
    for section in sections:
        parts.append(f"## {section.title}\n")
        if section.intro:
            parts.append(section.intro.strip() + "\n")
        parts.extend(render_table(table) for table in section.tables)
        if section.extras:
            parts.append(render_extras(section.extras))
    return "\n".join(parts)
