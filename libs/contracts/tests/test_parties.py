"""Who publishes and who reads each event: the declarations are complete and consistent."""

import pytest

from pressroom_contracts import parties, topology
from pressroom_contracts.events import EVENT_TYPES


def test_every_event_type_has_a_producer_and_a_consumer():
    assert EVENT_TYPES
    for event_type in EVENT_TYPES:
        assert parties.producers(event_type), f"nobody publishes {event_type}"
        assert parties.consumers(event_type), f"no durable delivers {event_type}"


def test_one_producer_for_each_result():
    assert parties.producers("job.requested") == ["gateway"]
    assert parties.producers("blog.completed") == ["writer"]
    assert parties.producers("job.completed") == ["persistence"]
    assert parties.producers("stage.progress") == ["research", "writer", "social", "illustrator"]


def test_every_durable_belongs_to_exactly_one_service():
    owners = [p.consumer for p in parties.SERVICES if p.consumer is not None]
    assert sorted(c.durable for c in owners) == sorted(c.durable for c in topology.CONSUMERS)


def test_consumes_follows_the_durable_filters():
    assert parties.SOCIAL.consumes == {"blog.completed", "regenerate.requested"}
    assert parties.PERSISTENCE.consumes == set(EVENT_TYPES)
    assert parties.GATEWAY.consumes == set()


def test_checks_refuse_what_is_not_declared():
    parties.check_publish("writer", "blog.completed")
    parties.check_read("social", "blog.edited")
    with pytest.raises(parties.UndeclaredEvent, match=r"social publishes 'blog\.completed'"):
        parties.check_publish("social", "blog.completed")
    with pytest.raises(parties.UndeclaredEvent, match=r"research reads 'image\.completed'"):
        parties.check_read("research", "image.completed")
    with pytest.raises(parties.UndeclaredEvent, match="not a declared service"):
        parties.check_publish("nobody", "job.requested")


def test_one_lookup_answers_who_produces_and_who_reads(capsys):
    assert parties.main(["blog.completed"]) == 0
    out = capsys.readouterr().out
    assert "published by writer" in out
    assert "consumed by  social, illustrator, persistence" in out
    assert "read back by gateway, writer" in out
    assert parties.main(["blog.finished"]) == 2
