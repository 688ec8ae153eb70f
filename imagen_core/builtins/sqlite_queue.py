"""The built-in job queue type ``sqlite`` (imagen_core.sqlite_queue), registered lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from imagen_core.registry import RegisterQueue
    from imagen_core.sqlite_queue import SQLiteQueue, SQLiteQueueConfig


def _queue(config: SQLiteQueueConfig) -> SQLiteQueue:
    from imagen_core.sqlite_queue import SQLiteQueue

    return SQLiteQueue(config)


def _config() -> type[SQLiteQueueConfig]:
    from imagen_core.sqlite_queue import SQLiteQueueConfig

    return SQLiteQueueConfig


@hookimpl
def register_queues(register: RegisterQueue) -> None:
    register("sqlite", _queue, config=_config)
