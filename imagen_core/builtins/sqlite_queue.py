"""The built-in job queue type ``sqlite`` (imagen_core.sqlite_queue), registered lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from imagen_core.registry import RegisterQueue


@hookimpl
def register_queues(register: RegisterQueue) -> None:
    from imagen_core.sqlite_queue import SQLiteQueue, SQLiteQueueConfig

    register("sqlite", SQLiteQueue, config=SQLiteQueueConfig)
