from __future__ import annotations

import pytest

from imagen_core.sqlite_queue import SQLiteQueue, SQLiteQueueConfig
from tests.queue.contract import QueueContract


class TestSQLiteQueue(QueueContract):
    @pytest.fixture
    def queue_factory(self, tmp_path):
        path = tmp_path / "jobs.db"
        return lambda: SQLiteQueue(SQLiteQueueConfig(path=path, poll_s=0.05))
