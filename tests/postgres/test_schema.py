"""The jobs table: created and migrated idempotently, shipped as a SQL file that
psql applies as it is, documented column by column, and strict about requests in
exactly the way imagen's Request is."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import psycopg
import pytest

from imagen_core.errors import InvalidRequest
from imagen_core.models import Request
from imagen_postgres import schema as ddl
from imagen_postgres.queue import PostgresQueue
from imagen_postgres.settings import PostgresQueueConfig

ROOT = Path(__file__).resolve().parents[2]


def doc_text() -> str:
    """The PostgreSQL part of the worker guide: docs/worker.md once the section
    is merged into it, docs/worker-postgres-section.md until then."""
    merged = (ROOT / "docs" / "worker.md").read_text()
    if "## The jobs table" in merged:
        return merged
    return (ROOT / "docs" / "worker-postgres-section.md").read_text()


SQL_FILE = resources.files("imagen_postgres").joinpath("schema.sql")


def columns(sql, schema: str) -> list[str]:
    rows = sql(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'jobs' ORDER BY ordinal_position",
        (schema,),
    )
    return [row["column_name"] for row in rows]


# ------------------------------------------------------------------ init


def test_init_twice_keeps_the_jobs(queue, sql, schema):
    job = queue.submit(Request("kept"), backend="mock")
    queue.init()
    queue.init()
    assert queue.get(job.id) == job
    assert (
        len(
            sql(
                f"SELECT 1 FROM pg_trigger WHERE tgrelid = '{schema}.jobs'::regclass "
                "AND NOT tgisinternal"
            )
        )
        == 1
    )


def test_init_in_another_schema_touches_nothing_named_imagen(queue, sql, schema):
    assert columns(sql, "imagen") == []
    functions = sql(
        "SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = %s ORDER BY 1",
        (schema,),
    )
    assert [f["proname"] for f in functions] == [
        "json_whole_between",
        "notify_job",
        "valid_inputs",
        "valid_request",
    ]
    notify = next(f["prosrc"] for f in functions if f["proname"] == "notify_job")
    assert f"'{schema}_jobs'" in notify
    valid = next(f["prosrc"] for f in functions if f["proname"] == "valid_request")
    assert f"{schema}.json_whole_between" in valid and "imagen." not in valid
    assert f"{schema}.valid_inputs" in valid


def test_the_table_has_the_documented_columns(queue, sql, schema):
    section = doc_text().split("## The jobs table", 1)[1]
    table = section.split("| column |", 1)[1].split("\n\n", 1)[0]
    documented = re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)
    assert columns(sql, schema) == documented


def test_the_claim_walks_the_index(queue, sql, schema):
    for n in range(50):
        queue.submit(Request(f"job {n}"), backend="mock")
    sql(f"ANALYZE {schema}.jobs")
    plan = sql(
        f"EXPLAIN SELECT id FROM {schema}.jobs WHERE (status = 'queued' OR "
        "(status = 'running' AND lease_until < now())) ORDER BY seq LIMIT 1 "
        "FOR UPDATE SKIP LOCKED"
    )
    assert "jobs_claimable" in " ".join(row["QUERY PLAN"] for row in plan)


def test_the_preferred_claim_finds_its_backend_on_an_index(queue, sql, schema):
    # Model affinity looks up the oldest queued job of one backend: an index
    # answers it, not a sort of every queued job.
    for n in range(50):
        queue.submit(Request(f"job {n}"), backend=("mock", "other")[n % 2])
    sql(f"ANALYZE {schema}.jobs")
    plan = sql(
        f"EXPLAIN SELECT id, created_at FROM {schema}.jobs WHERE status = 'queued' "
        "AND backend = 'other' ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED"
    )
    shown = " ".join(row["QUERY PLAN"] for row in plan)
    assert "jobs_queued_backend" in shown and "Sort" not in shown


def test_init_adds_the_backend_index_to_a_queue_made_before_it(queue, sql, schema):
    sql(f"DROP INDEX {schema}.jobs_queued_backend")
    queue.init()
    found = sql(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = "
        "'jobs_queued_backend'",
        (schema,),
    )
    assert [row["indexdef"] for row in found] == [
        f"CREATE INDEX jobs_queued_backend ON {schema}.jobs USING btree (backend, seq) "
        "WHERE (status = 'queued'::text)"
    ]


# ------------------------------------------------------------------ the SQL file


def test_the_module_prints_the_shipped_file(capsys):
    assert ddl.main([]) == 0
    assert capsys.readouterr().out == SQL_FILE.read_text()


def test_another_schema_rewrites_only_object_names():
    text = ddl.sql("render_farm")
    # No object and no channel of the schema imagen is left ("imagen.yaml" is prose).
    assert not re.search(r"\bimagen(\.(?!yaml)\w|_jobs\b|;)", text)
    assert "create schema if not exists render_farm;" in text
    assert "pg_notify('render_farm_jobs'" in text
    assert "`imagen queue init`" in text  # prose stays prose


def test_a_schema_name_that_is_not_plain_is_refused(capsys):
    with pytest.raises(ValueError):
        ddl.sql('x"; drop table y; --')
    with pytest.raises(SystemExit) as info:
        ddl.main(["--schema", "Bad-Name"])
    assert info.value.code == 2


@pytest.fixture(scope="module")
def own_database(postgres) -> str:
    """A database of this module's own: the file creates the schema `imagen`."""
    return postgres.create_database("imagen_schema_file")


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_psql_applies_the_file_twice_and_the_queue_works_on_it(postgres, own_database, monkeypatch):
    command = [
        "psql",
        postgres.dsn(own_database),
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-f",
        str(SQL_FILE),
    ]
    for _ in range(2):
        proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == ""
    monkeypatch.setenv("IMAGEN_DATABASE_URL", postgres.dsn(own_database))
    with PostgresQueue(PostgresQueueConfig()) as queue:  # every default: schema imagen
        job = queue.submit(Request("from psql's table"), backend="mock")
        assert queue.claim("w", backends=None, lease_s=60).id == job.id


# ------------------------------------------------------------------ request rules

# As a web app would send them: JSON text, numbers written as it likes.
VALID = [
    '{"prompt": "a fox"}',
    '{"prompt": "a fox", "width": 1, "height": 8192, "seed": 18446744073709551615, "steps": 10000}',
    '{"prompt": "a fox", "seed": 0, "steps": 0, "style": null, "negative": ""}',
    '{"prompt": "a fox", "style": "blog", "extra": {"cfg": 3.5}, "backend": "ignored"}',
    '{"prompt": "a fox", "width": 1e3}',  # jsonb normalises it to 1000
    '{"prompt": "a fox", "strength": 0.5}',
    '{"prompt": "a fox", "strength": 0, "inputs": null}',
    '{"prompt": "a fox", "strength": null, "inputs": []}',
    f'{{"prompt": "a fox", "inputs": [{{"sha256": "{"a" * 64}"}}]}}',
    f'{{"prompt": "a fox", "inputs": [{{"sha256": "{"a" * 64}", "role": "image", '
    f'"source": "/x.png"}}, {{"sha256": "{"b" * 64}", "role": "reference", "source": null}}, '
    f'{{"sha256": "{"c" * 64}", "role": "mask"}}]}}',
    f'{{"prompt": "a fox", "inputs": [{{"sha256": "{"a" * 64}", "role": "reference"}}, '
    f'{{"sha256": "{"b" * 64}", "role": "reference"}}]}}',
    # the mask may come anywhere, the image first among the others
    f'{{"prompt": "a fox", "inputs": [{{"sha256": "{"a" * 64}", "role": "mask"}}, '
    f'{{"sha256": "{"b" * 64}"}}, {{"sha256": "{"c" * 64}", "role": "reference"}}]}}',
]
INVALID = [
    "{}",
    '["a fox"]',
    '{"prompt": ""}',
    '{"prompt": " \\t\\n "}',
    '{"prompt": 42}',
    '{"prompt": null}',
    '{"prompt": "a fox", "widht": 512}',
    '{"prompt": "a fox", "width": 0}',
    '{"prompt": "a fox", "width": 8193}',
    '{"prompt": "a fox", "width": 512.5}',
    '{"prompt": "a fox", "width": 512.0}',
    '{"prompt": "a fox", "width": "512"}',
    '{"prompt": "a fox", "width": true}',
    '{"prompt": "a fox", "seed": -1}',
    '{"prompt": "a fox", "seed": 18446744073709551616}',
    '{"prompt": "a fox", "steps": 10001}',
    '{"prompt": "a fox", "negative": null}',
    '{"prompt": "a fox", "style": 3}',
    '{"prompt": "a fox", "extra": []}',
    '{"prompt": "a fox", "strength": 1.5}',
    '{"prompt": "a fox", "strength": -0.1}',
    '{"prompt": "a fox", "strength": "0.5"}',
    '{"prompt": "a fox", "strength": true}',
    '{"prompt": "a fox", "inputs": {}}',
    '{"prompt": "a fox", "inputs": ["abc"]}',
    '{"prompt": "a fox", "inputs": [{"sha256": "ABC"}]}',
    f'{{"prompt": "a fox", "inputs": [{{"sha256": "{"A" * 64}"}}]}}',
    f'{{"prompt": "a fox", "inputs": [{{"sha256": "{"a" * 64}", "role": "thumbnail"}}]}}',
    f'{{"prompt": "a fox", "inputs": [{{"sha256": "{"a" * 64}", "role": null}}]}}',
    f'{{"prompt": "a fox", "inputs": [{{"sha256": "{"a" * 64}", "source": 3}}]}}',
    f'{{"prompt": "a fox", "inputs": [{{"sha256": "{"a" * 64}", "bytes": "…"}}]}}',
    f'{{"prompt": "a fox", "inputs": [{{"sha256": "{"a" * 64}"}}, {{"sha256": "{"b" * 64}"}}]}}',
    f'{{"prompt": "a fox", "inputs": [{{"sha256": "{"a" * 64}", "role": "mask"}}]}}',
    f'{{"prompt": "a fox", "inputs": [{{"sha256": "{"a" * 64}", "role": "reference"}}, '
    f'{{"sha256": "{"b" * 64}", "role": "image"}}]}}',
    f'{{"prompt": "a fox", "inputs": [{{"sha256": "{"a" * 64}"}}, '
    f'{{"sha256": "{"b" * 64}", "role": "mask"}}, {{"sha256": "{"c" * 64}", "role": "mask"}}]}}',
]
KEYS = {
    "prompt",
    "negative",
    "width",
    "height",
    "seed",
    "steps",
    "style",
    "extra",
    "backend",
    "strength",
    "inputs",
}


def python_accepts(data: object) -> bool:
    """Whether a worker could run this request (what it reads back from jsonb),
    its images standing in for the stored ones."""
    from imagen_core.models import ImageInput
    from imagen_core.queue import split_record

    if not isinstance(data, dict) or set(data) - KEYS:
        return False
    # Request does not check these three itself; the pipeline would choke on them.
    if not isinstance(data.get("negative", ""), str):
        return False
    if not isinstance(data.get("style"), (str, type(None))):
        return False
    if not isinstance(data.get("extra", {}), dict):
        return False
    try:
        fields, refs = split_record(data)
        images = [
            ImageInput(PNG, "image/png", 4, 4, role=r.role, source=r.source, sha256=r.sha256)
            for r in refs
        ]
        Request(**fields, inputs=images)
    except (InvalidRequest, TypeError):
        return False
    return True


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png()


@pytest.mark.parametrize("body", VALID + INVALID)
def test_the_table_and_request_agree_on_what_a_request_is(queue, sql, schema, body):
    [row] = sql("SELECT %s::jsonb::text AS stored", (body,))
    readable = python_accepts(json.loads(row["stored"]))  # what a worker reads back
    try:
        sql(f"INSERT INTO {schema}.jobs (request, backend) VALUES (%s::jsonb, 'mock')", (body,))
        stored = True
    except psycopg.errors.CheckViolation as exc:
        assert exc.diag.constraint_name == "jobs_request_valid"
        stored = False
    assert stored == readable == (body in VALID)
    if stored and '"sha256"' not in body:
        job = queue.claim("w", backends=None, lease_s=60)
        assert job is not None and job.request.prompt == "a fox"
    elif stored:  # its images were never stored: the job fails alone
        assert queue.claim("w", backends=None, lease_s=60) is None
        [failed] = queue.list(status="failed")
        assert "input aaaaaaaaaaaa… is not stored with the queue" in failed.error


@pytest.mark.parametrize(
    ("columns_sql", "values", "rule"),
    [
        ("backend", "''", "jobs_backend_named"),
        ("backend, status", "'mock', 'paused'", "jobs_status_known"),
        ("backend, max_attempts", "'mock', 0", "jobs_max_attempts_check"),
        ("backend, attempts", "'mock', -1", "jobs_attempts_check"),
        ("backend, status", "'mock', 'running'", "jobs_running_has_lease"),
        ("backend, metadata", "'mock', '[]'", "jobs_metadata_check"),
    ],
)
def test_the_other_rules(queue, sql, schema, columns_sql, values, rule):
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        sql(
            f"INSERT INTO {schema}.jobs (request, {columns_sql}) "
            f"""VALUES ('{{"prompt": "x"}}', {values})"""
        )
    assert info.value.diag.constraint_name == rule


def test_a_prompt_only_python_finds_blank_fails_the_job_instead_of_stalling(queue, sql, schema):
    # U+3000 (ideographic space) is whitespace to Python, not to btrim's list.
    sql(
        f"INSERT INTO {schema}.jobs (request, backend) VALUES (%s::jsonb, 'mock')",
        ('{"prompt": "\\u3000"}',),
    )
    good = queue.submit(Request("good"), backend="mock")
    assert queue.claim("w", backends=None, lease_s=60).id == good.id
    [bad] = queue.list(status="failed")
    assert bad.error.startswith("invalid request: ") and "prompt is empty" in bad.error
    assert bad.request.prompt == "(invalid request)"


# ------------------------------------------------------------------ access


def documented_grants() -> str:
    text = doc_text()
    block = text.split("<!-- tested: tests/postgres/test_schema.py runs this block -->", 1)[1]
    return block.split("```sql\n", 1)[1].split("```", 1)[0]


def test_the_documented_web_app_access_works_and_goes_no_further(postgres, own_database, sql):
    admin = postgres.dsn(own_database)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(ddl.sql().encode())
        conn.execute(b"DROP ROLE IF EXISTS webapp")
        conn.execute(b"CREATE ROLE webapp LOGIN PASSWORD 'webapp-pw'")
        conn.execute(documented_grants().encode())
    with psycopg.connect(postgres.dsn(own_database, "webapp", "webapp-pw"), autocommit=True) as app:
        [job_id] = app.execute(
            b"""INSERT INTO imagen.jobs (request, backend) VALUES ('{"prompt": "hi"}', 'mock') """
            b"RETURNING id"
        ).fetchone()
        assert app.execute(
            b"SELECT status FROM imagen.jobs WHERE id = %s", (job_id,)
        ).fetchone() == ("queued",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(
                b"""INSERT INTO imagen.jobs (request, backend, status) """
                b"""VALUES ('{"prompt": "x"}', 'mock', 'done')"""
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(b"UPDATE imagen.jobs SET worker = 'me' WHERE id = %s", (job_id,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            app.execute(b"UPDATE imagen.jobs SET status = 'done' WHERE id = %s", (job_id,))
        canceled = app.execute(
            b"UPDATE imagen.jobs SET status = 'canceled', updated_at = now() "
            b"WHERE id = %s AND status IN ('queued', 'running') RETURNING status",
            (job_id,),
        ).fetchone()
        assert canceled == ("canceled",)


def test_row_level_security_hides_the_table_from_other_roles(postgres, own_database):
    admin = postgres.dsn(own_database)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(ddl.sql().encode())
        conn.execute(
            b"""INSERT INTO imagen.jobs (request, backend) VALUES ('{"prompt": "x"}', 'm')"""
        )
        conn.execute(b"DROP ROLE IF EXISTS snoop")
        conn.execute(b"CREATE ROLE snoop LOGIN PASSWORD 'snoop-pw'")
        conn.execute(b"GRANT USAGE ON SCHEMA imagen TO snoop; GRANT SELECT ON imagen.jobs TO snoop")
    with psycopg.connect(postgres.dsn(own_database, "snoop", "snoop-pw")) as conn:
        assert conn.execute(b"SELECT count(*) FROM imagen.jobs").fetchone() == (0,)
