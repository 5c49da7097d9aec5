"""The committed event catalogue and NATS topology must match the models: regenerate with `make catalog`."""

from pressroom_contracts.catalog import build_catalog, generated_files
from pressroom_contracts.events import EVENT_CLASSES, EVENT_TYPES


def test_committed_files_are_up_to_date():
    files = generated_files()
    assert files, "the generator produced no files"
    for path, text in files.items():
        assert path.exists(), f"{path} is missing: run `make catalog`"
        assert path.read_text() == text, f"{path} is stale: run `make catalog`"


def _operations(catalog: dict, action: str, channel: str) -> list[str]:
    return [
        name
        for name, op in catalog["operations"].items()
        if op["action"] == action and op["channel"]["$ref"] == f"#/channels/{channel}"
    ]


def test_every_event_type_has_its_channel_a_sender_and_receivers():
    catalog = build_catalog()
    addresses = {channel["address"] for channel in catalog["channels"].values()}
    assert len(EVENT_TYPES) == len(EVENT_CLASSES) == 15
    assert len(addresses) == len(EVENT_TYPES) + 1  # and the live deltas
    assert "live.{job_id}.{stage}.delta" in addresses
    assert "JobRequest" in catalog["components"]["schemas"]
    for event_type in EVENT_TYPES:
        assert f"content.{{job_id}}.{event_type}" in addresses
        channel = event_type.replace(".", "_")
        assert _operations(catalog, "send", channel), f"no sender of {event_type}"
        assert _operations(catalog, "receive", channel), f"no receiver of {event_type}"


def test_operations_name_the_service_and_how_it_receives():
    catalog = build_catalog()
    assert _operations(catalog, "send", "blog_completed") == ["writer_sends_blog_completed"]
    receivers = set(_operations(catalog, "receive", "blog_completed"))
    assert receivers == {
        f"{name}_receives_blog_completed"
        for name in ("social", "illustrator", "persistence", "gateway", "writer")
    }
    social = catalog["operations"]["social_receives_blog_completed"]
    assert social["tags"] == [{"name": "social"}]
    assert "durable consumer 'social'" in social["summary"]
    assert "read back" in catalog["operations"]["gateway_receives_blog_completed"]["summary"]
    assert _operations(catalog, "send", "live_delta") == ["writer_sends_live_delta_blog"]
    # Every message reference resolves within the document.
    for op in catalog["operations"].values():
        channel = op["channel"]["$ref"].removeprefix("#/channels/")
        for ref in op["messages"]:
            message = ref["$ref"].rsplit("/", 1)[1]
            assert message in catalog["channels"][channel]["messages"]
