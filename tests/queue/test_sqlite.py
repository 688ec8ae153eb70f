from __future__ import annotations

from pathlib import Path

import pytest

from imagen_core import Request
from imagen_core.sqlite_queue import SQLiteQueue, SQLiteQueueConfig
from tests.queue.contract import QueueContract


class TestSQLiteQueue(QueueContract):
    @pytest.fixture
    def queue_factory(self, tmp_path):
        path = tmp_path / "jobs.db"
        return lambda: SQLiteQueue(SQLiteQueueConfig(path=path, poll_s=0.05))

    @pytest.fixture
    def queue_block(self, tmp_path):
        return f"queue: {{type: sqlite, path: '{tmp_path / 'jobs.db'}', poll_s: 0.05}}"


SUBMITTER = """
import sys
from pathlib import Path
from imagen_core import Request
from imagen_core import Request
from imagen_core.sqlite_queue import SQLiteQueue, SQLiteQueueConfig
queue = SQLiteQueue(SQLiteQueueConfig(path=Path(sys.argv[1])))
for i in range(3):
    queue.submit(Request(f"p{i}"), backend="mock")
"""


def test_processes_racing_to_create_the_file_all_land(tmp_path):
    # Processes that open a new queue file at once race to switch it to WAL and
    # create the table; SQLite answers some of them "locked" without waiting.
    import subprocess
    import sys

    for trial in range(3):
        path = tmp_path / f"jobs-{trial}.db"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", SUBMITTER, str(path)], stderr=subprocess.PIPE, text=True
            )
            for _ in range(6)
        ]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 6, errors
        assert len(SQLiteQueue(SQLiteQueueConfig(path=path)).list(limit=100)) == 18


def test_an_unusable_queue_file_is_one_clear_error(tmp_path, capsys, isolated_env):
    from imagen_core.cli import main
    from tests.helpers import write_config

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    write_config(isolated_env, f"queue: {{type: sqlite, path: '{blocker}/jobs.db'}}\n")
    with pytest.raises(SystemExit) as info:
        main(["submit", "a fox"])
    err = capsys.readouterr().err
    assert info.value.code == 1
    assert err == (
        f"imagen: job queue {blocker}/jobs.db: cannot create or open it (File exists); "
        "set queue.path in imagen.yaml to a writable place\n"
    )


def _plant(path, request_json: str) -> str:
    """A queued row written behind the queue's back (by hand, by another version)."""
    import sqlite3
    import uuid

    job_id = str(uuid.uuid4())
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO jobs (id, request, backend, status, created_at, updated_at)"
        " VALUES (?, ?, 'mock', 'queued', '2000-01-01T00:00:00+00:00',"
        " '2000-01-01T00:00:00+00:00')",
        (job_id, request_json),
    )
    db.commit()
    db.close()
    return job_id


@pytest.mark.parametrize(
    ("planted", "message"),
    [
        ('{"prompt": "x", "width": 0}', "width must be between 1 and 8192"),
        ('{"prompt": "x", "widht": 5}', "unknown field(s) widht"),
        ('{"prompt": "\\ud800x"}', "not valid text at character 1"),
        ("not json", "not JSON"),
        ('["x"]', "not an imagen request"),
        # Each check of the fast path from a row to a Request still refuses.
        ('{"prompt": "x", "seed": true}', "seed must be a whole number"),
        ('{"prompt": "x", "steps": 2.0}', "steps must be a whole number"),
        ('{"prompt": "x", "negative": 5}', "negative must be text"),
        ('{"prompt": "x", "inputs": {}}', "inputs are a list"),
        ('{"prompt": "x", "inputs": 0}', "inputs are a list"),
        ('{"prompt": "x", "inputs": [{"role": "image"}]}', "an input is {sha256, role, source}"),
        ('{"prompt": 7}', "the prompt is empty"),
    ],
)
def test_a_poison_job_fails_alone_and_every_reader_survives_it(tmp_path, planted, message):
    from imagen_core import Request

    path = tmp_path / "jobs.db"
    queue = SQLiteQueue(SQLiteQueueConfig(path=path))
    queue.init()
    poison = _plant(path, planted)
    good = queue.submit(Request("fine"), backend="mock")
    # Listing, showing and cancelling never break on it.
    listed = {job.id: job for job in queue.list()}
    assert listed[poison].request.prompt == "(invalid request)"
    assert message in listed[poison].error
    assert queue.get(poison).status == "queued"
    # The worker's claim fails it for good, once, and takes the valid job behind it.
    claimed = queue.claim("w1", backends=None, lease_s=30)
    assert claimed is not None and claimed.id == good.id
    failed = queue.get(poison)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error.startswith("invalid request: ") and message in failed.error
    assert queue.cancel(poison).status == "failed"


def test_a_request_that_is_not_utf8_fails_alone(tmp_path):
    import sqlite3

    from imagen_core import Request

    path = tmp_path / "jobs.db"
    queue = SQLiteQueue(SQLiteQueueConfig(path=path))
    queue.init()
    poison = _plant(path, "{}")
    db = sqlite3.connect(path)
    db.execute(
        "UPDATE jobs SET request = CAST(X'7b2270726f6d7074223a202263616fe9227d' AS TEXT)"
        " WHERE id = ?",
        (poison,),
    )
    db.commit()
    db.close()
    good = queue.submit(Request("fine"), backend="mock")
    assert len(queue.list()) == 2
    assert queue.claim("w1", backends=None, lease_s=30).id == good.id
    assert queue.get(poison).status == "failed"


# ------------------------------------------------------------------ input images


def _png(color=(10, 200, 30)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, "PNG")
    return buffer.getvalue()


def _rows(path, query):
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def test_the_job_row_holds_hashes_and_an_image_is_stored_once(tmp_path):
    from imagen_core import ImageInput

    path = tmp_path / "jobs.db"
    queue = SQLiteQueue(SQLiteQueueConfig(path=path))
    image = ImageInput.from_bytes(_png())
    for prompt in ("a", "b"):
        queue.submit(Request(prompt, inputs=[image]), backend="mock")
    assert _rows(path, "SELECT sha256, length(data) FROM inputs") == [
        (image.sha256, len(image.data))
    ]
    requests = [row[0] for row in _rows(path, "SELECT request FROM jobs")]
    assert all(image.sha256 in text and len(text) < 400 for text in requests)


def test_a_queue_file_of_an_older_imagen_gains_the_inputs_table(tmp_path):
    import sqlite3

    from imagen_core import ImageInput

    path = tmp_path / "jobs.db"
    old = SQLITE_SCHEMA_BEFORE_INPUTS
    db = sqlite3.connect(path)
    db.executescript(old)
    db.execute(
        "INSERT INTO jobs (id, request, backend, status, created_at, updated_at)"
        " VALUES ('old', '{\"prompt\": \"kept\"}', 'mock', 'queued', '2026-01-01', '2026-01-01')"
    )
    db.commit()
    db.close()
    queue = SQLiteQueue(SQLiteQueueConfig(path=path))
    image = ImageInput.from_bytes(_png())
    queue.submit(Request("edit", inputs=[image]), backend="mock")
    assert queue.claim("w", backends=None, lease_s=60).request.prompt == "kept"
    assert queue.claim("w", backends=None, lease_s=60).request.inputs[0].data == image.data


SQLITE_SCHEMA_BEFORE_INPUTS = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, request TEXT NOT NULL, backend TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued','running','done','failed','canceled')),
    attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL DEFAULT 3,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, worker TEXT, lease_until REAL,
    result_path TEXT, error TEXT, metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX jobs_claim ON jobs (status, created_at);
"""


def documented_insert() -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "worker.md").read_text()
    block = text.split("<!-- tested: tests/queue/test_sqlite.py runs this block -->", 1)[1]
    return block.split("```sql\n", 1)[1].split("```", 1)[0]


def test_the_documented_insert_of_an_image_and_its_job_works(tmp_path):
    import datetime as dt
    import hashlib
    import sqlite3
    import uuid

    path = tmp_path / "jobs.db"
    queue = SQLiteQueue(SQLiteQueueConfig(path=path))
    queue.init()
    data = _png((1, 2, 3))
    params = {
        "id": str(uuid.uuid4()),
        "now": dt.datetime.now(dt.timezone.utc).isoformat(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "data": data,
    }
    db = sqlite3.connect(path, isolation_level=None)
    for statement in documented_insert().split(";"):
        if statement.strip():
            db.execute(statement, {k: v for k, v in params.items() if f":{k}" in statement})
    db.close()
    job = queue.claim("w", backends=None, lease_s=60)
    assert (job.id, job.request.prompt, job.request.strength) == (
        params["id"],
        "the same street at night",
        0.6,
    )
    [image] = job.request.inputs
    assert (image.data, image.role, image.source) == (data, "image", None)


def test_a_job_whose_image_is_missing_fails_alone(tmp_path):
    import sqlite3

    from imagen_core import ImageInput

    path = tmp_path / "jobs.db"
    queue = SQLiteQueue(SQLiteQueueConfig(path=path))
    image = ImageInput.from_bytes(_png())
    broken = queue.submit(Request("a", inputs=[image]), backend="mock")
    good = queue.submit(Request("b"), backend="mock")
    db = sqlite3.connect(path)
    db.execute("DELETE FROM inputs")
    db.commit()
    db.close()
    assert queue.claim("w", backends=None, lease_s=60).id == good.id
    failed = queue.get(broken.id)
    assert failed.status == "failed"
    assert failed.error == (
        f"invalid request: its image input {image.sha256[:12]}… is not stored with the "
        "queue (a job must be inserted after its input images, see docs/worker.md)"
    )


def test_a_stored_image_that_is_not_what_its_hash_says_fails_its_job(tmp_path):
    import sqlite3

    from imagen_core import ImageInput

    path = tmp_path / "jobs.db"
    queue = SQLiteQueue(SQLiteQueueConfig(path=path))
    image = ImageInput.from_bytes(_png())
    job = queue.submit(Request("a", inputs=[image]), backend="mock")
    db = sqlite3.connect(path)
    db.execute("UPDATE inputs SET data = ?", (_png((0, 0, 0)),))
    db.commit()
    db.close()
    assert queue.claim("w", backends=None, lease_s=60) is None
    failed = queue.get(job.id)
    assert failed.status == "failed"
    assert (
        failed.error
        == f"invalid request: the stored input {image.sha256[:12]}… does not match its hash"
    )


def test_an_existing_queue_file_gains_the_listing_index(tmp_path):
    # A jobs.db made before the index existed: the listing must not sort the
    # whole table, and the jobs already there keep their order.
    import sqlite3

    from imagen_core import Request

    path = tmp_path / "jobs.db"
    queue = SQLiteQueue(SQLiteQueueConfig(path=path))
    ids = [queue.submit(Request(f"p{i}"), backend="mock").id for i in range(5)]
    queue.close()
    db = sqlite3.connect(path)
    db.execute("DROP INDEX jobs_created")
    db.close()

    queue = SQLiteQueue(SQLiteQueueConfig(path=path))
    assert [job.id for job in queue.list(limit=3)] == ids[::-1][:3]
    queue.close()
    db = sqlite3.connect(path)
    plan = db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT 3"
    ).fetchall()
    db.close()
    steps = " ".join(row[3] for row in plan)
    assert "jobs_created" in steps and "TEMP B-TREE" not in steps


def test_a_claim_fails_exhausted_jobs_only_when_there_is_one(tmp_path):
    import time

    queue = SQLiteQueue(SQLiteQueueConfig(path=tmp_path / "jobs.db"))
    first = queue.submit(Request("a"), backend="mock")
    second = queue.submit(Request("b"), backend="mock", max_attempts=1)
    statements: list[str] = []
    queue._connect().set_trace_callback(statements.append)
    assert queue.claim("w", backends=None, lease_s=60).id == first.id
    # One statement (WITH … UPDATE) claims: no UPDATE for exhausted jobs when there is none.
    assert [s.split()[0] for s in statements] == ["BEGIN", "WITH", "COMMIT"]
    assert queue.claim("dead", backends=None, lease_s=0.05).id == second.id
    time.sleep(0.1)  # its only attempt's lease runs out: exhausted
    third = queue.submit(Request("c"), backend="mock")
    statements.clear()
    assert queue.claim("w", backends=None, lease_s=60).id == third.id
    assert sum("status = 'failed'" in s for s in statements) == 1  # in the claim's transaction
    failed = queue.get(second.id)
    assert failed.status == "failed" and "each of its 1 attempts" in (failed.error or "")
    queue.close()


@pytest.mark.parametrize("backends", [0, 2])
@pytest.mark.parametrize("prefer", [False, True])
def test_every_claim_walks_the_index(tmp_path, backends, prefer):
    # Taking the older of a job whose worker died and a queued job must not
    # scan or sort the table: each is a lookup on (status, created_at).
    import sqlite3

    from imagen_core.sqlite_queue import _claim_sql

    queue = SQLiteQueue(SQLiteQueueConfig(path=tmp_path / "jobs.db"))
    queue.init()
    queue.close()
    query = _claim_sql(backends, prefer)
    db = sqlite3.connect(tmp_path / "jobs.db")
    plan = db.execute(f"EXPLAIN QUERY PLAN {query}", [0] * query.count("?")).fetchall()
    db.close()
    steps = [row[3] for row in plan]
    assert "SEARCH jobs USING INDEX jobs_claim (status=?)" in steps
    assert not [step for step in steps if step.startswith("SCAN jobs") or "TEMP B-TREE" in step]
