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
