from __future__ import annotations

import pytest

from imagen_core.sqlite_queue import SQLiteQueue, SQLiteQueueConfig
from tests.queue.contract import QueueContract


class TestSQLiteQueue(QueueContract):
    @pytest.fixture
    def queue_factory(self, tmp_path):
        path = tmp_path / "jobs.db"
        return lambda: SQLiteQueue(SQLiteQueueConfig(path=path, poll_s=0.05))


SUBMITTER = """
import sys
from pathlib import Path
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
