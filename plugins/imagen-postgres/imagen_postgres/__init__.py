"""imagen-postgres: the ``postgres`` job queue, for many workers on many machines.

Jobs live in one table (``imagen.jobs``, documented for web apps that insert
into it directly); workers claim them with ``SELECT … FOR UPDATE SKIP LOCKED``
and sleep on ``LISTEN`` until a new job is announced by ``NOTIFY``.

Registering is cheap: the config class is attrs only, and psycopg and the queue
module are imported when a queue is built, not when imagen starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core import hookimpl

if TYPE_CHECKING:
    from imagen_core.registry import RegisterQueue
    from imagen_postgres.queue import PostgresQueue
    from imagen_postgres.settings import PostgresQueueConfig


def make_queue(config: PostgresQueueConfig) -> PostgresQueue:
    """The factory imagen calls with the structured ``queue:`` block."""
    from imagen_postgres.queue import PostgresQueue

    return PostgresQueue(config)


def _config() -> type[PostgresQueueConfig]:
    from imagen_postgres.settings import PostgresQueueConfig

    return PostgresQueueConfig


@hookimpl
def register_queues(register: RegisterQueue) -> None:
    # The settings module loads when a postgres queue is used, not for sqlite's jobs.
    register("postgres", make_queue, config=_config)
