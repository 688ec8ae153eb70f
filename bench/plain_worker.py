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
    "WITH expired AS (SELECT rowid AS r, created_at AS c FROM jobs WHERE status = 'running'"
    " AND lease_until < ? AND attempts < max_attempts ORDER BY created_at, rowid LIMIT 1),"
    " queued AS (SELECT rowid AS r, created_at AS c FROM jobs WHERE status = 'queued'"
    " ORDER BY created_at, rowid LIMIT 1)"
    " UPDATE jobs SET status = 'running', worker = ?, lease_until = ?,"
    " attempts = attempts + 1, updated_at = ?"
    " WHERE rowid = (SELECT r FROM expired WHERE NOT EXISTS"
    " (SELECT 1 FROM queued WHERE (queued.c, queued.r) < (expired.c, expired.r))"
    " UNION ALL SELECT r FROM queued) RETURNING *"
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
RETURNING j.id, j.request, j.backend, j.created_at
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


def write_png(folder: Path, name: str, data: bytes, *, no_clobber: bool = False) -> Path:
    """A temporary file in ``folder``, written and fsynced, renamed into place;
    ``no_clobber``: linked at the name (never replacing a file) and unlinked, as
    imagen writes."""
    final = folder / (name if no_clobber else f"{name}.png")
    tmp = folder / f".{name}.{os.getpid()}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if no_clobber:
        os.link(tmp, final)
        tmp.unlink()
    else:
        tmp.replace(final)
    return final


def picture_of(request: dict[str, Any], picture: ModuleType) -> tuple[bytes, int]:
    seed = request.get("seed") or random.SystemRandom().randrange(1, 2**32)
    data = render_png(
        picture, request["prompt"], seed, request.get("width", 1024), request.get("height", 1024)
    )
    return data, seed


class Plain:
    """The plain worker's job: render, write the PNG, nothing else."""

    out: Path
    picture: ModuleType

    def produce(
        self, job_id: str, request: dict[str, Any], _backend: str, _created_at: Any
    ) -> tuple[Path, dict[str, Any]]:
        data, seed = picture_of(request, self.picture)
        return write_png(self.out, job_id, data), {"seed": seed}


def no_imagen() -> None:
    """The baseline must not be helped (or slowed) by imagen's modules."""
    loaded = sorted(name for name in sys.modules if name.split(".")[0].startswith("imagen"))
    assert not loaded, f"the plain worker imported {loaded}"


class SQLiteWorker(Plain):
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
            row = db.execute(SQLITE_CLAIM, (now, self.name, now + 60, stamp)).fetchone()
            db.execute("COMMIT")
            if row is None:
                return done
            path, metadata = self.produce(
                row["id"], json.loads(row["request"]), row["backend"], row["created_at"]
            )
            stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                SQLITE_COMPLETE,
                (str(path), json.dumps(metadata), stamp, row["id"], self.name),
            )
            db.execute("COMMIT")
            done += 1


class PostgresWorker(Plain):
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
            job_id, request, backend, created_at = row
            path, metadata = self.produce(str(job_id), request, backend, created_at)
            self.conn.execute(self.complete, (str(path), json.dumps(metadata), job_id, self.name))
            done += 1
        self.conn.close()
        return done


# imagen_core/ledger.py's table, as of this bench.
LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, backend TEXT NOT NULL,
    backend_type TEXT NOT NULL, model TEXT, latency_s REAL, cost_usd REAL,
    prompt_sha256 TEXT NOT NULL, caller TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
    inputs INTEGER NOT NULL DEFAULT 0, cost_basis TEXT
)
"""
LEDGER_INSERT = (
    "INSERT INTO usage (created_at, backend, backend_type, model, latency_s, cost_usd,"
    " prompt_sha256, caller, status, error, inputs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
)
LEDGER_DONE = "UPDATE usage SET status = 'ok', error = NULL, latency_s = ? WHERE id = ?"
IMAGE_SUFFIXES = (".png", ".jpg", ".webp", ".gif")


def png_chunk(kind: bytes, body: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_texts(data: bytes, parameters: str, record: str) -> bytes:
    """The PNG with a ``parameters`` tEXt and an ``imagen`` iTXt chunk after IHDR
    (IHDR is always the first chunk: 8 + 25 bytes)."""
    texts = png_chunk(b"tEXt", b"parameters\0" + parameters.encode("latin-1")) + png_chunk(
        b"iTXt", b"imagen\0\0\0\0\0" + record.encode()
    )
    return data[:33] + texts + data[33:]


def forget_leftovers(folder: Path, job_id: str) -> None:
    """What an earlier attempt left, removed by name (as imagen's worker looks)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        for name in (f"{job_id}.json", f"{job_id}-1.json"):
            try:
                os.close(os.open(name, os.O_RDONLY, dir_fd=fd))
            except FileNotFoundError:
                pass
        for suffix in IMAGE_SUFFIXES:
            try:
                os.unlink(job_id + suffix, dir_fd=fd)
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)


# The Featured workers' ledger, in the folder of a run.
LEDGER = "usage.db"


def make_ledger(path: Path) -> Path:
    """The ledger file of the ``Featured`` workers, in WAL mode, with its table."""
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(LEDGER_SCHEMA)
    db.close()
    return path


class Featured:
    """What imagen's worker does by default and the plain one does not, done by
    hand for each job: the leftover check of an earlier attempt (by name, in the
    job's submit-hour folder and in ``jobs/``), the provenance written into the
    PNG (an A1111 ``parameters`` chunk and the record as JSON), a cost ledger row
    saying "interrupted" before the files are written and completed after, the
    JSON sidecar (fsynced, linked before the image) and a log line. Mixed into
    either plain worker, it leaves between it and imagen only imagen's own cost:
    its objects, hooks, configuration and checks."""

    out: Path
    name: str
    picture: ModuleType

    def keep_ledger(self, path: Path) -> None:
        """Connect to the ledger ``make_ledger`` made (in the parent: processes
        that switch a new file to WAL together get "database is locked" at once)."""
        import sqlite3

        self.ledger = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.ledger.execute("PRAGMA synchronous=NORMAL")

    def produce(
        self, job_id: str, request: dict[str, Any], backend: str, created_at: Any
    ) -> tuple[Path, dict[str, Any]]:
        import datetime as dt
        import hashlib

        started = time.perf_counter()
        stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        if isinstance(created_at, str):
            created_at = dt.datetime.fromisoformat(created_at)
        folder = self.out / f"{created_at.astimezone(dt.timezone.utc):%Y-%m-%d/%H}"
        forget_leftovers(folder, job_id)
        forget_leftovers(self.out, job_id)
        folder.mkdir(parents=True, exist_ok=True)
        data, seed = picture_of(request, self.picture)
        width, height = request.get("width", 1024), request.get("height", 1024)
        record = {
            "imagen_version": "0.1.0",
            "created": stamp,
            "image": f"{job_id}.png",
            "prompt": request["prompt"],
            "prompt_sent": request["prompt"],
            "request": request,
            "backend": {"name": backend, "type": "mock"},
            "model": "mock",
            "seed": seed,
            "width": width,
            "height": height,
            "mime_type": "image/png",
            "latency_s": round(time.perf_counter() - started, 4),
            "cost_usd": 0.0,
            "cost_basis": "computed",
            "metadata": {"fingerprint": {"imagen": "0.1.0", "plugin": "imagen-mock"}},
        }
        parameters = (
            f"{request['prompt']}\nSteps: {request.get('steps')}, Sampler: mock, Seed: {seed},"
            f" Size: {width}x{height}, Model: mock, Backend: {backend}, Version: imagen 0.1.0"
        )
        data = with_texts(data, parameters, json.dumps(record, ensure_ascii=False))
        prompt_sha = hashlib.sha256(request["prompt"].encode()).hexdigest()
        row = (stamp, backend, "mock", "mock", None, 0.0, prompt_sha, self.name, "interrupted")
        pending = self.ledger.execute(LEDGER_INSERT, (*row, "interrupted")).lastrowid
        sidecar = json.dumps(record, indent=2).encode() + b"\n"
        sidecar_path = write_png(folder, f"{job_id}.json", sidecar, no_clobber=True)
        path = write_png(folder, f"{job_id}.png", data, no_clobber=True)
        took = round(time.perf_counter() - started, 4)
        self.ledger.execute(LEDGER_DONE, (took, pending))
        print(f"job {job_id[:8]} {backend} done {took:.2f}s {path}", file=sys.stderr)
        metadata = {"seed": seed, "model": "mock", "latency_s": took, "cost_usd": 0.0}
        return path, {**metadata, "sidecar": str(sidecar_path)}


class FeaturedSQLiteWorker(Featured, SQLiteWorker):
    def __init__(self, path: str, out: Path, name: str, ledger: Path) -> None:
        super().__init__(path, out, name)
        self.keep_ledger(ledger)


class FeaturedPostgresWorker(Featured, PostgresWorker):
    def __init__(self, dsn: str, schema: str, out: Path, name: str, ledger: Path) -> None:
        super().__init__(dsn, schema, out, name)
        self.keep_ledger(ledger)


if __name__ == "__main__":
    worker = SQLiteWorker(sys.argv[1], Path(sys.argv[2]), f"plain-{os.getpid()}")
    started = time.perf_counter()
    count = worker.run()
    print(f"{count} jobs, {count / (time.perf_counter() - started):.0f}/s")
