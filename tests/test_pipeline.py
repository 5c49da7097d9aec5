"""A job through all six services as separate processes, over a real WebSocket, on real servers."""

from __future__ import annotations

import hashlib

import httpx

from pipeline import run_job, script_pipeline, stored

REQUEST = {"topic": "Rooftop solar panels for homes", "research": True, "platforms": ["linkedin", "x"]}


async def test_a_job_travels_every_stage_and_is_stored(
    service_runner, scripted_llm, database_url, s3, nats_server
):
    script_pipeline(scripted_llm)
    service_runner.start()

    watch = await run_job(service_runner, REQUEST)

    assert watch.types[0] == "job.requested"
    assert watch.types[-1] == "job.completed"
    for event_type in ("research.completed", "blog.completed", "social.completed", "image.completed"):
        assert event_type in watch.types
    seqs = [f["seq"] for f in watch.frames if f["type"] == "event"]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for stage in ("research", "blog", "social", "image"):
        assert watch.progress(stage), f"no progress from {stage}"
    assert any("knowledge base" in m for m in watch.progress("research"))

    # The blog streamed as it was written: the deltas add up to the model's answer, in order.
    deltas = [d for d in watch.deltas if d["stage"] == "blog"]
    assert deltas and [d["offset"] for d in deltas] == sorted(d["offset"] for d in deltas)
    assert "".join(d["text"] for d in deltas).startswith("# Rooftop solar for everyone")

    research = next(e for e in watch.events if e["type"] == "research.completed")["data"]
    assert research["provider"] == "knowledge-base" and research["sources"]

    rows = await stored(database_url, watch.job_id)
    assert rows["job"]["status"] == "completed"
    (blog,) = rows["blogs"]
    assert blog["title"] == "Rooftop solar for everyone"
    assert "[9]" not in blog["markdown"], "a citation of a source research never returned survived"
    assert [p["platform"] for p in rows["social"]] == ["linkedin", "x"]
    x_post = next(p for p in rows["social"] if p["platform"] == "x")
    assert x_post["characters"] <= 280
    (image,) = rows["images"]
    data = s3.client().get_object(s3.bucket, image["object_key"]).read()
    assert hashlib.sha256(data).hexdigest() == image["sha256"]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert {u["stage"] for u in rows["usage"]} >= {"blog", "social", "image"}
    # Each service ran as its own NATS user and did nothing its permissions refuse.
    for service in ("gateway", "research", "writer", "social", "illustrator", "persistence"):
        assert (service_runner.replica(service).process.env or {})["NATS_USER"] == service
    assert "Violation" not in nats_server.log_path.read_text()
    logs = "".join(path.read_text() for path in service_runner.log_dir.glob("*.log"))
    assert nats_server.users is not None and "gateway-0" in logs
    for password in nats_server.users.passwords.values():
        assert password not in logs, "a NATS password was written to a service log"


async def test_each_service_serves_its_metrics(service_runner, scripted_llm):
    script_pipeline(scripted_llm)
    service_runner.start()
    await run_job(service_runner, {**REQUEST, "image": False})

    async with httpx.AsyncClient() as client:
        writer = service_runner.replica("writer")
        text = (await client.get(f"http://127.0.0.1:{writer.health_port}/metrics")).text
    assert 'pressroom_messages_total{consumer="writer",outcome="acked"} 1.0' in text
    assert 'pressroom_events_published_total{type="blog.completed"} 1.0' in text
