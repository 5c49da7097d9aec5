"""The event catalogue (an AsyncAPI 3 document), the NATS topology and the NATS users' permissions,
generated from the contracts.

`python -m pressroom_contracts.catalog` rewrites the committed files; a test fails when they are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import access, parties, subjects
from .events import EVENT_CLASSES
from .protocol import DeltaMessage
from .topology import topology_document

CONTRACTS_ROOT = Path(__file__).resolve().parents[2]
CATALOG_PATH = CONTRACTS_ROOT / "catalog" / "asyncapi.json"
TOPOLOGY_PATH = CONTRACTS_ROOT.parents[1] / "deploy" / "nats" / "topology.json"
AUTH_PATH = TOPOLOGY_PATH.with_name("auth.conf")


def build_catalog() -> dict[str, Any]:
    classes: list[type[BaseModel]] = [*EVENT_CLASSES, DeltaMessage]
    mode: Literal["serialization"] = "serialization"
    models = [(cls, mode) for cls in classes]
    refs, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for cls in EVENT_CLASSES:
        event_type = cls.model_fields["type"].default
        name = cls.__name__.removesuffix("Event")
        messages[name] = {
            "name": event_type,
            "title": name,
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {
                    "Nats-Msg-Id": {"type": "string", "description": "<job>:<type>:<qualifier>, for dedup"}
                },
            },
            "payload": refs[(cls, "serialization")],
        }
        channel = _channel(event_type)
        channels[channel] = {
            "address": subjects.content_of_type(event_type).replace(".*.", ".{job_id}."),
            "parameters": {"job_id": {"description": "The job id."}},
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
    messages["Delta"] = {
        "name": "delta",
        "contentType": "application/json",
        "payload": refs[(DeltaMessage, "serialization")],
    }
    channels["live_delta"] = {
        "address": subjects.live("JOB", "STAGE").replace("JOB", "{job_id}").replace("STAGE", "{stage}"),
        "description": "Core NATS, not stored: text as it is generated.",
        "parameters": {"job_id": {}, "stage": {}},
        "messages": {"Delta": {"$ref": "#/components/messages/Delta"}},
    }
    operations = party_operations()
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Pressroom events",
            "version": "1.0.0",
            "description": "Stored on the JetStream stream CONTENT; see docs/architecture.md.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": defs["$defs"]},
    }


def _channel(event_type: str) -> str:
    return event_type.replace(".", "_")


def _operation(party: parties.Party, action: str, channel: str, message: str, how: str) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{message}"}],
        "summary": how,
        "tags": [{"name": party.name}],
    }


def party_operations() -> dict[str, Any]:
    """A send operation per event type each service publishes and a receive per type it takes in
    (through its durable or read back from the stream), from pressroom_contracts.parties."""
    names = {cls.model_fields["type"].default: cls.__name__.removesuffix("Event") for cls in EVENT_CLASSES}
    operations: dict[str, Any] = {}
    for party in parties.SERVICES:
        for event_type in sorted(party.publishes):
            channel = _channel(event_type)
            operations[f"{party.name}_sends_{channel}"] = _operation(
                party, "send", channel, names[event_type], f"{party.name} publishes it"
            )
        for event_type in sorted(party.receives):
            channel = _channel(event_type)
            how = (
                f"delivered to the durable consumer {party.consumer.durable!r}"
                if party.consumer is not None and event_type in party.consumes
                else "read back from the stream"
            )
            operations[f"{party.name}_receives_{channel}"] = _operation(
                party, "receive", channel, names[event_type], f"{party.name}: {how}"
            )
        for stage in sorted(party.streams_live):
            operations[f"{party.name}_sends_live_delta_{stage}"] = _operation(
                party,
                "send",
                "live_delta",
                "Delta",
                f"{party.name} streams the {stage} text as it is generated",
            )
        if party.watches_live:
            operations[f"{party.name}_receives_live_delta"] = _operation(
                party, "receive", "live_delta", "Delta", f"{party.name} relays live text to its watchers"
            )
    return operations


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def generated_files() -> dict[Path, str]:
    return {
        CATALOG_PATH: render(build_catalog()),
        TOPOLOGY_PATH: render(topology_document()),
        AUTH_PATH: access.deploy_authorization(),
    }


def main() -> None:
    for path, text in generated_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
