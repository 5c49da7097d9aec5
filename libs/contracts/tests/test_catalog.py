"""The committed event catalogue and NATS topology must match the models: regenerate with `make catalog`."""

from pressroom_contracts.catalog import build_catalog, generated_files
from pressroom_contracts.events import EVENT_TYPES


def test_committed_files_are_up_to_date():
    for path, text in generated_files().items():
        assert path.exists(), f"{path} is missing: run `make catalog`"
        assert path.read_text() == text, f"{path} is stale: run `make catalog`"


def test_catalog_has_a_channel_and_schema_per_event():
    catalog = build_catalog()
    addresses = {channel["address"] for channel in catalog["channels"].values()}
    for event_type in EVENT_TYPES:
        assert f"content.{{job_id}}.{event_type}" in addresses
    assert "live.{job_id}.{stage}.delta" in addresses
    assert "JobRequest" in catalog["components"]["schemas"]
