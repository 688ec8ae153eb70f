"""The baseline of the end-to-end worker figures: a plain worker, written by hand,
that imports nothing of imagen (bench/worker.py and bench/postgres_queue.py run
it beside ``imagen worker``).

Per job it does what imagen's worker must do and nothing more: the same claim
SQL as imagen's queue (copied here), the mock picture rendered by the same code
(a copy of imagen_mock/picture.py, imported as a plain module, as bench/run.py's
baseline does), the PNG written the way imagen writes it (a temporary file in
the output folder, written, fsynced, then renamed into place), and the same
complete SQL. No sidecar, no ledger, no log line.

    .venv/bin/python bench/plain_worker.py JOBS.db OUTPUT_FOLDER   # runs until the queue is empty
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

PICTURE = Path(__file__).resolve().parents[1] / "plugins/imagen-mock/imagen_mock/picture.py"

# imagen_core/sqlite_queue.py's claim (any backend) and complete, as of this bench.
SQLITE_CLAIM = (
    "UPDATE jobs SET status = 'running', worker = ?, lease_until = ?,"
    " attempts = attempts + 1, updated_at = ?"
    " WHERE id = COALESCE("
    "(SELECT id FROM jobs WHERE status = 'running' AND lease_until < ?"
    " AND attempts < max_attempts ORDER BY created_at, rowid LIMIT 1),"
    " (SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT 1))"
    " RETURNING *"
)
SQLITE_COMPLETE = (
    "UPDATE jobs SET status = 'done', result_path = ?, metadata = ?, error = NULL,"
    " lease_until = NULL, updated_at = ? WHERE id = ? AND worker = ? AND status = 'running'"
)

# imagen-postgres's claim (any backend) and complete, as of this bench ({jobs}: the
# schema's table).
POSTGRES_CLAIM = """
WITH exhausted AS (
    UPDATE {jobs}
    SET status = 'failed', lease_until = NULL, updated_at = now(),
        error = 'its worker stopped (killed, crashed or lost) during each of its '
            || attempts || ' attempts; if the job itself brings workers down '
            || '(out of memory?), submit it smaller, else submit it again'
    WHERE id IN (
        SELECT id FROM {jobs}
        WHERE status = 'running' AND lease_until < now() AND attempts >= max_attempts
        FOR UPDATE SKIP LOCKED
    )
),
picked AS (
    SELECT id FROM {jobs}
    WHERE (status = 'queued' OR (status = 'running' AND lease_until < now()
                                 AND attempts < max_attempts))
    ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED
)
UPDATE {jobs} AS j
SET status = 'running', attempts = j.attempts + 1, worker = %s,
    lease_until = now() + interval '60 seconds', updated_at = now()
FROM picked WHERE j.id = picked.id
RETURNING j.id, j.request, j.backend
"""
POSTGRES_COMPLETE = """
UPDATE {jobs} SET status = 'done', result_path = %s, metadata = %s::jsonb, error = NULL,
    lease_until = NULL, updated_at = now()
WHERE id = %s AND worker = %s AND status = 'running'
"""


def load_picture(folder: Path) -> ModuleType:
    """imagen_mock/picture.py copied into ``folder`` and imported as ``picture``
    (it needs only Pillow and the standard library)."""
    copy = folder / "picture.py"
    shutil.copyfile(PICTURE, copy)
    spec = importlib.util.spec_from_file_location("picture", copy)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render_png(picture: ModuleType, prompt: str, seed: int, width: int, height: int) -> bytes:
    """The mock backend's PNG: render, drop the info, save as PNG to bytes."""
    image = picture.render(prompt, seed, width, height)
    image.info.clear()
    buffer = io.BytesIO()
    buffer.name = "image.png"
    image.save(buffer)
    return buffer.getvalue()


def write_png(folder: Path, name: str, data: bytes) -> Path:
    """A temporary file in ``folder``, written and fsynced, renamed into place."""
    final = folder / f"{name}.png"
    tmp = folder / f".{name}.{os.getpid()}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(final)
    return final


def picture_of(request: dict[str, Any], picture: ModuleType) -> tuple[bytes, int]:
    seed = request.get("seed") or random.SystemRandom().randrange(1, 2**32)
    data = render_png(
        picture, request["prompt"], seed, request.get("width", 1024), request.get("height", 1024)
    )
    return data, seed


def no_imagen() -> None:
    """The baseline must not be helped (or slowed) by imagen's modules."""
    loaded = sorted(name for name in sys.modules if name.split(".")[0].startswith("imagen"))
    assert not loaded, f"the plain worker imported {loaded}"


class SQLiteWorker:
    """Connect (and import) first; ``run()`` then works until the queue is empty."""

    def __init__(self, path: str, out: Path, name: str) -> None:
        import sqlite3

        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.out, self.name = out, name
        self.out.mkdir(parents=True, exist_ok=True)
        self.picture = load_picture(out.parent)
        render_png(self.picture, "warm-up", 1, 8, 8)  # fonts and Pillow's PNG plugin
        no_imagen()

    def run(self) -> int:
        import datetime as dt

        db, done = self.db, 0
        while True:
            now = time.time()
            stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(SQLITE_CLAIM, (self.name, now + 60, stamp, now)).fetchone()
            db.execute("COMMIT")
            if row is None:
                return done
            data, seed = picture_of(json.loads(row["request"]), self.picture)
            path = write_png(self.out, row["id"], data)
            stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                SQLITE_COMPLETE,
                (str(path), json.dumps({"seed": seed}), stamp, row["id"], self.name),
            )
            db.execute("COMMIT")
            done += 1


class PostgresWorker:
    """The same with psycopg, on a schema made by imagen-postgres."""

    def __init__(self, dsn: str, schema: str, out: Path, name: str) -> None:
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute(b"SELECT 1")
        jobs = f'"{schema}"."jobs"'
        self.claim = POSTGRES_CLAIM.format(jobs=jobs).encode()
        self.complete = POSTGRES_COMPLETE.format(jobs=jobs).encode()
        self.out, self.name = out, name
        self.out.mkdir(parents=True, exist_ok=True)
        self.picture = load_picture(out.parent)
        render_png(self.picture, "warm-up", 1, 8, 8)
        no_imagen()

    def run(self) -> int:
        done = 0
        while (row := self.conn.execute(self.claim, (self.name,)).fetchone()) is not None:
            job_id, request, _backend = row
            data, seed = picture_of(request, self.picture)
            path = write_png(self.out, str(job_id), data)
            metadata = json.dumps({"seed": seed})
            self.conn.execute(self.complete, (str(path), metadata, job_id, self.name))
            done += 1
        self.conn.close()
        return done


if __name__ == "__main__":
    worker = SQLiteWorker(sys.argv[1], Path(sys.argv[2]), f"plain-{os.getpid()}")
    started = time.perf_counter()
    count = worker.run()
    print(f"{count} jobs, {count / (time.perf_counter() - started):.0f}/s")
