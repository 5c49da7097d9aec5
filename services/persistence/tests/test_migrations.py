import asyncio
import os
import subprocess
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import asyncpg
import pytest

from pressroom_persistence import migrate

TABLES = {"jobs", "research", "blog_posts", "social_posts", "images", "usage", "events", "alembic_version"}
HEAD = "0005"


def test_url_conversion_keeps_the_unix_socket_and_tcp_forms() -> None:
    socket = migrate.sqlalchemy_url("postgresql://postgres:@/pressroom?host=/tmp/pg dir")
    assert socket.drivername == "postgresql+asyncpg"
    assert (socket.database, socket.query["host"]) == ("pressroom", "/tmp/pg dir")
    tcp = migrate.sqlalchemy_url("postgres://u:p%40ss@db.example:6543/app?sslmode=require")
    assert (tcp.host, tcp.port, tcp.password, tcp.database) == ("db.example", 6543, "p@ss", "app")
    with pytest.raises(ValueError):
        migrate.sqlalchemy_url("mysql://u@h/db")


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_upgrade_applies_once_and_again_is_a_no_op(fresh_database_url: str) -> None:
    assert await migrate.current(fresh_database_url) is None
    await migrate.upgrade(fresh_database_url)
    assert await migrate.current(fresh_database_url) == HEAD
    assert await _tables(fresh_database_url) == TABLES
    await migrate.upgrade(fresh_database_url)
    assert await migrate.current(fresh_database_url) == HEAD


async def test_replicas_migrating_together_do_not_race(fresh_database_url: str) -> None:
    # Replicas are processes. Without the advisory lock their CREATE TABLEs collide (duplicate objects).
    # Each one imports, says so, then waits for the go on stdin, so that they really start together.
    code = (
        "import asyncio, sys; from pressroom_persistence import migrate; print('ready', flush=True); "
        "sys.stdin.readline(); asyncio.run(migrate.upgrade(sys.argv[1]))"
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, fresh_database_url, stdin=PIPE, stdout=PIPE, stderr=PIPE
        )
        for _ in range(4)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"ready\n"
    results = await asyncio.gather(*(asyncio.wait_for(p.communicate(b"go\n"), 60) for p in procs))
    assert [p.returncode for p in procs] == [0] * 4, [err.decode()[-2000:] for _, err in results]
    assert await migrate.current(fresh_database_url) == HEAD


async def test_upgrades_in_one_process_take_turns(fresh_database_url: str) -> None:
    await asyncio.gather(*(migrate.upgrade(fresh_database_url) for _ in range(3)))
    assert await migrate.current(fresh_database_url) == HEAD


async def test_alembic_cli_uses_database_url(fresh_database_url: str) -> None:
    ini = Path(__file__).parents[1] / "alembic.ini"
    alembic = Path(sys.executable).parent / "alembic"
    env = {**os.environ, "DATABASE_URL": fresh_database_url}
    result = await asyncio.to_thread(
        subprocess.run,
        [str(alembic), "-c", str(ini), "upgrade", "head"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert await migrate.current(fresh_database_url) == HEAD


async def test_0005_keeps_the_posts_stored_before_it_without_checks(fresh_database_url: str) -> None:
    await migrate.upgrade(fresh_database_url, "0004")
    conn = await asyncpg.connect(fresh_database_url)
    try:
        await conn.execute(
            """INSERT INTO jobs (id, status, request, created_at) VALUES ('j1', 'completed', '{}', now());
               INSERT INTO blog_posts (job_id, version, title, markdown, word_count, citations, model,
                                       input_tokens, output_tokens)
               VALUES ('j1', 1, 'T', '# T', 1, '[]', 'm', 1, 2);
               INSERT INTO social_posts (job_id, platform, version, text, characters, char_limit)
               VALUES ('j1', 'x', 1, 'post', 4, 280)"""
        )
        await migrate.upgrade(fresh_database_url)
        assert await migrate.current(fresh_database_url) == HEAD
        assert await conn.fetchval("SELECT checks FROM blog_posts") is None
        assert await conn.fetchval("SELECT checks FROM social_posts") is None
    finally:
        await conn.close()


async def test_0002_upgrades_a_database_at_0001_with_data_in_it(fresh_database_url: str) -> None:
    await migrate.upgrade(fresh_database_url, "0001")
    conn = await asyncpg.connect(fresh_database_url)
    try:
        await conn.execute(
            """INSERT INTO jobs (id, status, request, owner, created_at, cost_usd)
               VALUES ('j1', 'completed', '{"topic": "Old job", "platforms": ["x"]}', 'alice', now(), 0.5)"""
        )
        for version in (1, 2):
            await conn.execute(
                """INSERT INTO blog_posts (job_id, version, title, markdown, word_count, citations, model,
                                           input_tokens, output_tokens)
                   VALUES ('j1', $1, 'T', '# T', 1, '[]', 'm', 1, 2)""",
                version,
            )
        await conn.execute(
            """INSERT INTO social_posts (job_id, platform, version, text, characters, char_limit)
               VALUES ('j1', 'x', 1, 'post', 4, 280)"""
        )
        await conn.execute(
            """INSERT INTO images (job_id, version, object_key, prompt, width, height, content_type, sha256,
                                   size_bytes, provider)
               VALUES ('j1', 1, 'j1/cover.png', 'p', 1200, 630, 'image/png', 'abc', 10, 'cover-card')"""
        )

        await migrate.upgrade(fresh_database_url)
        assert await migrate.current(fresh_database_url) == HEAD

        job = await conn.fetchrow("SELECT status, owner, cost_usd, budget_usd, cancel_reason FROM jobs")
        assert (job["status"], job["owner"], float(job["cost_usd"])) == ("completed", "alice", 0.5)
        assert (job["budget_usd"], job["cancel_reason"]) == (None, None)
        blogs = await conn.fetch("SELECT version, origin, editor, model FROM blog_posts ORDER BY version")
        assert [tuple(r) for r in blogs] == [(1, "generated", None, "m"), (2, "regenerated", None, "m")]
        social = await conn.fetchrow("SELECT origin, editor, parts::text, text FROM social_posts")
        assert tuple(social) == ("generated", None, "[]", "post")
        image = await conn.fetchrow("SELECT origin, variants::text, object_key FROM images")
        assert tuple(image) == ("generated", "[]", "j1/cover.png")

        # The new columns take what the service now writes, and refuse an unknown origin.
        await conn.execute(
            """INSERT INTO blog_posts (job_id, version, origin, editor, title, markdown, word_count,
                                       citations, model, input_tokens, output_tokens)
               VALUES ('j1', 3, 'edited', 'bob', 'T', '# T', 1, '[]', NULL, 0, 0)"""
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE social_posts SET origin = 'invented'")
    finally:
        await conn.close()


async def test_0002_downgrades_to_0001(fresh_database_url: str) -> None:
    await migrate.upgrade(fresh_database_url)
    conn = await asyncpg.connect(fresh_database_url)
    try:
        await conn.execute(
            """INSERT INTO jobs (id, status, request, created_at) VALUES ('j1', 'running', '{}', now());
               INSERT INTO blog_posts (job_id, version, origin, editor, title, markdown, word_count,
                                       citations, model, input_tokens, output_tokens)
               VALUES ('j1', 1, 'edited', 'bob', 'T', '# T', 1, '[]', NULL, 0, 0)"""
        )
        ini = Path(__file__).parents[1] / "alembic.ini"
        alembic = Path(sys.executable).parent / "alembic"
        result = await asyncio.to_thread(
            subprocess.run,
            [str(alembic), "-c", str(ini), "downgrade", "0001"],
            env={**os.environ, "DATABASE_URL": fresh_database_url},
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert await migrate.current(fresh_database_url) == "0001"
        assert await conn.fetchval("SELECT model FROM blog_posts") == ""
        await migrate.upgrade(fresh_database_url)
        assert await conn.fetchval("SELECT origin FROM blog_posts") == "generated"
    finally:
        await conn.close()
