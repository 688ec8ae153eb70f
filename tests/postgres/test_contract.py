"""The shared queue contract (tests/queue/contract.py), on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.queue.contract import QueueContract


class TestPostgresQueue(QueueContract):
    @pytest.fixture
    def queue_factory(self, make_queue):
        # Every handle has its own connections, on this test's own schema.
        return make_queue

    @pytest.fixture
    def queue_block(self, schema):
        return f"queue: {{type: postgres, schema: {schema}}}"

    def collect(self, queue) -> None:
        # Jobs failed inside a claim are left to the sweep (of old images).
        queue.sweep_inputs(older_than_s=0)
