"""Input images on the PostgreSQL queue: imagen.inputs, as imagen and a web app use it."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import psycopg
import pytest
from PIL import Image

from imagen_core import ImageInput, Request
from imagen_postgres import schema as ddl

ROOT = Path(__file__).resolve().parents[2]


def png(color=(10, 200, 30), size=(8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def stored(sql, schema) -> list[str]:
    return [row["sha256"] for row in sql(f"SELECT sha256 FROM {schema}.inputs ORDER BY 1")]


def test_the_job_row_holds_hashes_and_an_image_is_stored_once(queue, sql, schema):
    image = ImageInput.from_bytes(png())
    for prompt in ("a", "b"):
        queue.submit(Request(prompt, inputs=[image]), backend="mock")
    assert stored(sql, schema) == [image.sha256]
    rows = sql(f"SELECT request::text AS r FROM {schema}.jobs")
    assert all(image.sha256 in row["r"] and len(row["r"]) < 400 for row in rows)


def test_the_table_refuses_bytes_that_are_not_what_their_hash_says(queue, sql, schema):
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        sql(f"INSERT INTO {schema}.inputs (sha256, data) VALUES (%s, %s)", ("a" * 64, png()))
    assert info.value.diag.constraint_name == "inputs_sha256_of_data"


def old_ddl(schema: str) -> str:
    """The queue as imagen made it before input images: no imagen.inputs, and a
    request check that knows neither "inputs" nor "strength"."""
    marker = "-- " + "-" * 66 + f" {schema}.inputs"
    old = ddl.sql(schema).split(marker)[0] + "commit;"
    old = old.replace("'backend', 'inputs', 'strength']", "'backend']")
    old = re.sub(
        r"\n\s*and case\n\s*when jsonb_typeof\(r -> 'strength'\).*?end\n", "\n", old, flags=re.S
    )
    old = old.replace(f"\n            and {schema}.valid_inputs(r -> 'inputs')", "")
    assert f"table {schema}.inputs" not in old and "'inputs'" not in old
    return old


def test_init_adds_the_inputs_table_to_an_older_queue_while_it_is_used(
    make_queue, sql, schema, monkeypatch
):
    queue = make_queue()
    with queue._database.connect() as conn:
        conn.execute(old_ddl(schema).encode())
    job = queue.submit(Request("from before"), backend="mock")
    image = ImageInput.from_bytes(png())
    with pytest.raises(
        Exception, match=rf"{schema}.inputs does not exist: run `imagen queue init`"
    ):
        queue.submit(Request("edit", inputs=[image]), backend="mock")
    # A worker holds a job row, as a claim does, while init runs: init must not wait for it.
    claimed = queue.claim("w", backends=None, lease_s=60)
    assert claimed.id == job.id
    with psycopg.connect(queue._database._dsn(), autocommit=False) as busy:
        busy.execute(f"SELECT * FROM {schema}.jobs FOR UPDATE".encode()).fetchall()
        busy.execute(f"LOCK TABLE {schema}.jobs IN ROW EXCLUSIVE MODE".encode())
        monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=5000")
        fresh = make_queue()
        fresh.init()
        busy.rollback()
    edit = fresh.submit(Request("edit", inputs=[image]), backend="mock")
    assert fresh.complete(job.id, "w", result_path="/x.png", metadata={})
    assert fresh.claim("w", backends=None, lease_s=60).request.inputs[0].data == image.data
    assert fresh.get(edit.id).inputs[0].sha256 == image.sha256


def documented_insert() -> list[str]:
    text = (ROOT / "docs" / "worker.md").read_text()
    marker = "<!-- tested: tests/postgres/test_inputs.py runs this block"
    block = text.split(marker, 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    return [part.strip() for part in block.split(";") if part.strip()]


def test_the_documented_insert_of_an_image_and_its_job_works_for_a_web_app(postgres, monkeypatch):
    from tests.postgres.test_schema import documented_grants

    database = postgres.create_database("imagen_inputs_webapp")
    admin = postgres.dsn(database)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(ddl.sql().encode())
        # A role of its own (roles are the server's; test_schema's is "webapp").
        conn.execute(b"DROP ROLE IF EXISTS webapp_inputs")
        conn.execute(b"CREATE ROLE webapp_inputs LOGIN PASSWORD 'webapp-pw'")
        grants = re.sub(r"\bwebapp\b", "webapp_inputs", documented_grants())
        conn.execute(grants.encode())
    data = png((1, 2, 3))
    statements = documented_insert()
    assert statements[0] == "begin" and statements[-1] == "commit"
    with psycopg.connect(postgres.dsn(database, "webapp_inputs", "webapp-pw")) as app:
        for _ in range(2):  # the same image again: stored once, the job inserted
            for statement in statements[1:-1]:
                query = statement.replace("$1", "%s")
                app.execute(query.encode(), (data,) * statement.count("$1"))
            app.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(b"SELECT data FROM imagen.inputs")
    from imagen_postgres.queue import PostgresQueue
    from imagen_postgres.settings import PostgresQueueConfig

    monkeypatch.setenv("IMAGEN_DATABASE_URL", admin)
    with PostgresQueue(PostgresQueueConfig()) as queue:
        for _ in range(2):
            job = queue.claim("w", backends=None, lease_s=60)
            assert job.request.prompt == "the same street at night"
            assert job.request.strength == 0.6
            [image] = job.request.inputs
            assert (image.data, image.role, image.source) == (data, "image", "upload.png")
            queue.complete(job.id, "w", result_path="/x.png", metadata={})
        assert queue.input_bytes(image.sha256) is None


def test_submitting_an_image_while_its_last_job_ends_never_loses_it(make_queue, queue):
    """The collection after a job ends and a submit of the same image race; the
    new job must always find its image (the row lock orders them)."""
    image = ImageInput.from_bytes(png())
    failures: list[str] = []

    def loop(name: str) -> None:
        handle = make_queue()
        for _ in range(15):
            job = handle.submit(Request(name, inputs=[image]), backend=name)
            claimed = handle.claim(name, backends=[name], lease_s=60)
            if claimed is None or claimed.id != job.id:
                failures.append(f"{name}: {handle.get(job.id)}")
                return
            handle.complete(job.id, name, result_path="/x", metadata={})

    threads = [threading.Thread(target=loop, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert queue.input_bytes(image.sha256) is None  # every job ended: nothing kept
    assert queue.list(status="failed") == []


class Hooked:
    """A queue's connection that runs ``after[statement]()`` once that statement
    has run: the test's handle on the moment between two of its statements."""

    def __init__(self, conn, after):
        self._conn, self._after = conn, after

    def execute(self, query, params=None):
        cursor = self._conn.execute(query, params)
        hook = self._after.get(query)
        if hook is not None:
            hook()
        return cursor

    def __getattr__(self, name):
        return getattr(self._conn, name)


def hook(monkeypatch, queue, after):
    conn = queue._connection()
    monkeypatch.setattr(queue, "_connection", lambda: Hooked(conn, after))
    return conn


def test_a_collection_never_deletes_an_image_it_could_not_lock(
    make_queue, queue, dsn, sql, monkeypatch
):
    """The interleaving that lost an image (found by a busy-core run): a submit's
    transaction has stored the image, not committed, when an ended job's
    collection locks its rows (so it locks none); it commits, a submit of the same
    image takes the row's lock, and the collection's DELETE, blocked on that lock,
    rechecked the row with its own older snapshot, in which the new job did not
    exist yet, and deleted the image of a queued job."""
    image = ImageInput.from_bytes(png((4, 5, 6)))
    submitter = make_queue()
    s2_locked, c_blocked = threading.Event(), threading.Event()
    with psycopg.connect(dsn) as app:
        app.execute(queue._sql.store_input, (image.sha256, image.data))  # not committed

        def after_lock() -> None:
            app.commit()  # the image alone: a job that never came, for now
            threading.Thread(target=submit, daemon=True).start()
            assert s2_locked.wait(timeout=60)

        def after_store() -> None:
            s2_locked.set()
            assert c_blocked.wait(timeout=60)

        collector = hook(monkeypatch, queue, {queue._sql.lock_inputs: after_lock})
        hook(monkeypatch, submitter, {submitter._sql.store_input: after_store})
        submitted: list[str] = []

        def submit() -> None:
            submitted.append(submitter.submit(Request("j2", inputs=[image]), backend="b").id)

        collecting = threading.Thread(target=queue._collect_hashes, args=([image.sha256],))
        collecting.start()
        pid = collector.info.backend_pid
        deadline = time.monotonic() + 60
        # Until the collection ends, or waits for the submit's lock.
        while collecting.is_alive():
            [row] = sql("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))
            if row["wait_event_type"] == "Lock":
                break
            assert time.monotonic() < deadline
            time.sleep(0.01)
        c_blocked.set()
        collecting.join(timeout=60)
        deadline = time.monotonic() + 60
        while not submitted:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert queue.input_bytes(image.sha256) == image.data
    claimed = queue.claim("w", backends=["b"], lease_s=60)
    assert claimed is not None and claimed.id == submitted[0]
    assert [item.data for item in claimed.request.inputs] == [image.data]


def test_the_sweep_takes_old_images_no_job_needs(queue, sql, schema):
    image = ImageInput.from_bytes(png())
    orphan = png((9, 9, 9))
    import hashlib

    digest = hashlib.sha256(orphan).hexdigest()
    sql(f"INSERT INTO {schema}.inputs (sha256, data) VALUES (%s, %s)", (digest, orphan))
    queue.submit(Request("x", inputs=[image]), backend="mock")
    assert queue.sweep_inputs() == 0  # both are new
    sql(f"UPDATE {schema}.inputs SET stored_at = now() - interval '2 hours'")
    assert queue.sweep_inputs() == 1
    assert stored(sql, schema) == [image.sha256]  # a queued job needs it


def test_a_collection_that_fails_is_a_warning_and_the_job_is_done(queue, capsys):
    image = ImageInput.from_bytes(png())
    job = queue.submit(Request("x", inputs=[image]), backend="mock")
    queue.claim("w", backends=None, lease_s=60)
    queue._sql.lock_inputs = b"SELECT no_such_function(%s)"
    assert queue.complete(job.id, "w", result_path="/x.png", metadata={}) is True
    assert queue.get(job.id).status == "done"
    err = capsys.readouterr().err
    assert err.startswith("imagen: queue: could not delete the input images of an ended job: ")
    assert queue.input_bytes(image.sha256) == image.data  # left for the sweep
