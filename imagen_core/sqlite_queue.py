"""The built-in job queue: one SQLite file, safe for several workers on one machine.

Claims run in ``BEGIN IMMEDIATE`` transactions (one writer at a time, others wait
on the busy timeout), so two workers never take the same job. Leases are unix
times from this machine's clock: every worker of a SQLite queue shares it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core.config import setting
from imagen_core.models import Request
from imagen_core.queue import Job

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id           TEXT PRIMARY KEY,
    request      TEXT NOT NULL,             -- JSON of the Request
    backend      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued','running','done','failed','canceled')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    created_at   TEXT NOT NULL,             -- UTC ISO 8601
    updated_at   TEXT NOT NULL,
    worker       TEXT,
    lease_until  REAL,                      -- unix time
    result_path  TEXT,
    error        TEXT,
    metadata     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (status, created_at);
"""


def default_path() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "imagen" / "jobs.db"


@attrs.frozen
class SQLiteQueueConfig:
    path: Path | None = setting(
        None,
        converter=lambda v: None if v is None else Path(v).expanduser(),
        help="SQLite file of the job queue (default: $XDG_DATA_HOME/imagen/jobs.db)",
    )
    poll_s: float = setting(0.5, help="how often an idle worker looks for new jobs, seconds")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class SQLiteQueue:
    def __init__(self, config: SQLiteQueueConfig) -> None:
        self.path = config.path or default_path()
        self.poll_s = config.poll_s
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, shared by a worker's threads

    # ------------------------------------------------------------- plumbing
    def _connect(self) -> sqlite3.Connection:
        import sqlite3

        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            self._db = db
        return self._db

    def _tx(self) -> Any:
        queue = self

        class Tx:
            def __enter__(self) -> sqlite3.Connection:
                queue._lock.acquire()
                db = queue._connect()
                db.execute("BEGIN IMMEDIATE")
                self.db = db
                return db

            def __exit__(self, kind: Any, *rest: Any) -> None:
                try:
                    self.db.execute("COMMIT" if kind is None else "ROLLBACK")
                finally:
                    queue._lock.release()

        return Tx()

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:
        lease = row["lease_until"]
        return Job(
            id=row["id"],
            request=Request(**json.loads(row["request"])),
            backend=row["backend"],
            status=row["status"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            created_at=dt.datetime.fromisoformat(row["created_at"]),
            updated_at=dt.datetime.fromisoformat(row["updated_at"]),
            worker=row["worker"],
            lease_until=dt.datetime.fromtimestamp(lease, dt.timezone.utc) if lease else None,
            result_path=row["result_path"],
            error=row["error"],
            metadata=json.loads(row["metadata"]),
        )

    def _owned(self, db: sqlite3.Connection, job_id: str, worker: str) -> bool:
        row = db.execute(
            "SELECT 1 FROM jobs WHERE id = ? AND worker = ? AND status = 'running'",
            (job_id, worker),
        ).fetchone()
        return row is not None

    # ------------------------------------------------------------- contract
    def init(self) -> None:
        with self._lock:
            self._connect()

    def submit(self, request: Request, *, backend: str, max_attempts: int = 3) -> Job:
        job_id = str(uuid.uuid4())
        body = json.dumps(attrs.asdict(attrs.evolve(request, backend=backend)))
        now = _now()
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (id, request, backend, status, max_attempts, created_at,"
                " updated_at) VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                (job_id, body, backend, max_attempts, now, now),
            )
            return self._job(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def claim(self, worker: str, *, backends: Sequence[str] | None, lease_s: float) -> Job | None:
        now = time.time()
        where = "(status = 'queued' OR (status = 'running' AND lease_until < ?))"
        params: list[Any] = [now]
        if backends is not None:
            if not backends:
                return None
            where += f" AND backend IN ({', '.join('?' * len(backends))})"
            params += list(backends)
        with self._tx() as db:
            row = db.execute(
                f"SELECT id FROM jobs WHERE {where} ORDER BY created_at, rowid LIMIT 1", params
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', worker = ?, lease_until = ?,"
                " attempts = attempts + 1, updated_at = ? WHERE id = ?",
                (worker, now + lease_s, _now(), row["id"]),
            )
            return self._job(db.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone())

    def heartbeat(self, job_id: str, worker: str, *, lease_s: float) -> bool:
        with self._tx() as db:
            if not self._owned(db, job_id, worker):
                return False
            db.execute(
                "UPDATE jobs SET lease_until = ?, updated_at = ? WHERE id = ?",
                (time.time() + lease_s, _now(), job_id),
            )
            return True

    def complete(
        self, job_id: str, worker: str, *, result_path: str, metadata: dict[str, Any]
    ) -> bool:
        with self._tx() as db:
            if not self._owned(db, job_id, worker):
                return False
            db.execute(
                "UPDATE jobs SET status = 'done', result_path = ?, metadata = ?, error = NULL,"
                " lease_until = NULL, updated_at = ? WHERE id = ?",
                (result_path, json.dumps(metadata, default=str), _now(), job_id),
            )
            return True

    def fail(self, job_id: str, worker: str, *, error: str) -> bool:
        with self._tx() as db:
            if not self._owned(db, job_id, worker):
                return False
            db.execute(
                "UPDATE jobs SET status = CASE WHEN attempts < max_attempts THEN 'queued'"
                " ELSE 'failed' END, error = ?, worker = NULL, lease_until = NULL,"
                " updated_at = ? WHERE id = ?",
                (error, _now(), job_id),
            )
            return True

    def release(self, job_id: str, worker: str) -> bool:
        with self._tx() as db:
            if not self._owned(db, job_id, worker):
                return False
            db.execute(
                "UPDATE jobs SET status = 'queued', attempts = MAX(attempts - 1, 0),"
                " worker = NULL, lease_until = NULL, updated_at = ? WHERE id = ?",
                (_now(), job_id),
            )
            return True

    def cancel(self, job_id: str) -> Job | None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status = 'canceled', lease_until = NULL, updated_at = ?"
                " WHERE id = ? AND status IN ('queued', 'running')",
                (_now(), job_id),
            )
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return self._job(row) if row else None

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def list(self, *, status: str | None = None, limit: int = 100) -> list[Job]:
        query, params = "SELECT * FROM jobs", []
        if status:
            query += " WHERE status = ?"
            params.append(status)
        query += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        with self._lock:
            rows = self._connect().execute(query, [*params, limit]).fetchall()
        return [self._job(r) for r in rows]

    def wait(self, timeout_s: float) -> None:
        # SQLite cannot tell us of new rows: an idle worker looks again shortly.
        time.sleep(min(timeout_s, self.poll_s))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
