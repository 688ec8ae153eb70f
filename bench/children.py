"""The end-to-end rate of worker processes started together, shared by
bench/worker.py (SQLite) and bench/postgres_queue.py (PostgreSQL)."""

from __future__ import annotations

import multiprocessing
import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def jobs_per_s(
    target: Callable[..., None], args: Callable[[int], tuple], processes: int, work: Path, jobs: int
) -> float:
    """Start ``processes`` spawned children running ``target(*args(n), start, out)``,
    release them together through the barrier ``start``, and return ``jobs``
    over the time from the first child's start to the last one's end. Each child
    puts ``(done, began, ended)`` on ``out``. ``work`` is removed afterwards."""
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(processes + 1), context.Queue()
    children = [
        context.Process(target=target, args=(*args(n), start, out)) for n in range(processes)
    ]
    for child in children:
        child.start()
    start.wait(timeout=300)
    results = [out.get(timeout=600) for _ in children]
    for child in children:
        child.join(timeout=60)
    shutil.rmtree(work)
    done = sum(count for count, _, _ in results)
    assert done == jobs, (done, jobs)
    return jobs / (max(end for *_, end in results) - min(begin for _, begin, _ in results))
