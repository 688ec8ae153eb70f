"""The end-to-end rate of worker processes started together, shared by
bench/worker.py (SQLite) and bench/postgres_queue.py (PostgreSQL)."""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import shutil
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def jobs_per_s(
    target: Callable[..., None], args: Callable[[int], tuple], processes: int, work: Path, jobs: int
) -> float:
    """Start ``processes`` spawned children running ``target(*args(n), start, out)``,
    release them together through the barrier ``start``, and return ``jobs``
    over the time from the first child's start to the last one's end. Each child
    puts ``(done, began, ended)`` on ``out``, or its traceback (a string) when it
    fails (``child``); ``work`` is removed afterwards."""
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(processes + 1), context.Queue()
    children = [
        context.Process(target=target, args=(*args(n), start, out)) for n in range(processes)
    ]
    for child in children:
        child.start()
    try:
        start.wait(timeout=300)
    except threading.BrokenBarrierError:
        raise RuntimeError(f"a worker failed to start: {failures(out)}") from None
    results = [out.get(timeout=600) for _ in children]
    if any(isinstance(result, str) for result in results):
        raise RuntimeError(f"a worker failed: {[r for r in results if isinstance(r, str)]}")
    for child in children:
        child.join(timeout=60)
    shutil.rmtree(work)
    done = sum(count for count, _, _ in results)
    assert done == jobs, (done, jobs)
    return jobs / (max(end for *_, end in results) - min(begin for _, begin, _ in results))


def failures(out: Any) -> list[str]:
    found = []
    with contextlib.suppress(queue.Empty):
        while True:
            item = out.get(timeout=1)
            if isinstance(item, str):
                found.append(item)
    return found


def child(run: Callable[[], tuple[int, float, float]], start: Any, out: Any) -> None:
    """Run one child's ``run`` (set up, wait on ``start``, work), putting its result
    on ``out``; a failure puts its traceback there and breaks the barrier, so the
    parent stops waiting at once and says why."""
    try:
        out.put(run())
    except BaseException:
        out.put(traceback.format_exc())
        start.abort()
        raise


def timed(work: Callable[[], int], start: Any) -> tuple[int, float, float]:
    """Wait for the others on ``start``, then ``work()``: (its count, began, ended)."""
    start.wait(timeout=300)
    began = time.monotonic()
    done = work()
    return done, began, time.monotonic()
