"""SQLite's "database is locked" that its busy timeout does not cover.

Several imagen processes share one SQLite file (the ledger, the job queue), each
connection with a busy timeout. SQLite still answers "database is locked" at
once, without waiting, when processes race to create the file or to switch it
to WAL, or while one recovers the WAL: a moment later the same work succeeds.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


def when_unlocked(action: Callable[[], T], *, timeout_s: float) -> T:
    """``action()``, run again (backing off) while it fails with "database is
    locked", for up to ``timeout_s``; then that error is raised."""
    import sqlite3

    deadline = time.monotonic() + timeout_s
    pause = 0.005
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
