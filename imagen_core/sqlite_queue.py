"""The built-in job queue: one SQLite file, safe for several workers on one machine.

Claims run in ``BEGIN IMMEDIATE`` transactions (one writer at a time, others wait
on the busy timeout), so two workers never take the same job. Leases are unix
times from this machine's clock: every worker of a SQLite queue shares it.

Input images live in the table ``inputs`` of the same file, one row per sha256;
a job's request holds their hashes. Whatever ends a job (done, failed, canceled)
deletes, in the same transaction, its images that no queued or running job
refers to any more.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core.config import data_file, optional_path, setting
from imagen_core.errors import ImagenError, InvalidRequest
from imagen_core.models import Request
from imagen_core.queue import InputRef, Job, request_record, stored_request, with_inputs
from imagen_core.values import value_eq, value_hash, value_repr

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator, Sequence

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
-- `imagen jobs` without --status: newest first, read off the index, not a sort of
-- the whole table (482 ms at 100,000 jobs). Built once, on the first connection,
-- in a file that lacks it.
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE TABLE IF NOT EXISTS inputs (
    sha256    TEXT PRIMARY KEY,             -- hex sha256 of data
    data      BLOB NOT NULL,                -- the image file's bytes (PNG, JPEG, WebP)
    stored_at TEXT NOT NULL                 -- UTC ISO 8601, last stored
);
"""

STORE_INPUT = (
    "INSERT INTO inputs (sha256, data, stored_at) VALUES (?, ?, ?)"
    " ON CONFLICT (sha256) DO UPDATE SET stored_at = excluded.stored_at"
)
# The input hashes of live jobs (a row that is not JSON, written by hand, has none).
_LIVE_HASHES = (
    "SELECT CASE WHEN e.type = 'object' THEN json_extract(e.value, '$.sha256') END"
    " FROM jobs l, json_each(CASE WHEN json_valid(l.request) THEN l.request ELSE '{}' END,"
    " '$.inputs') e WHERE l.status IN ('queued', 'running')"
)
# Delete the images of job ? that no live job refers to (the job itself may be live:
# then nothing goes).
COLLECT = (
    "DELETE FROM inputs WHERE sha256 IN ("
    "SELECT CASE WHEN e.type = 'object' THEN json_extract(e.value, '$.sha256') END"
    " FROM jobs j, json_each(CASE WHEN json_valid(j.request) THEN j.request ELSE '{}' END,"
    f" '$.inputs') e WHERE j.id = ?) AND sha256 NOT IN ({_LIVE_HASHES})"
)


# A job whose worker died on every attempt (killed, out of memory, machine gone)
# is failed rather than handed to yet another worker it may bring down too.
EXHAUSTED = (
    "UPDATE jobs SET status = 'failed', lease_until = NULL, updated_at = ?,"
    " error = 'its worker stopped (killed, crashed or lost) during each of its '"
    " || attempts || ' attempts; if the job itself brings workers down (out of memory?),"
    " submit it smaller, else submit it again'"
    " WHERE status = 'running' AND lease_until < ? AND attempts >= max_attempts"
    " RETURNING id"
)
# Read by the claim itself (its last parameter: now), so that EXHAUSTED runs only
# when there is such a job, not before every claim.
EXHAUSTED_WAITING = (
    "EXISTS (SELECT 1 FROM jobs WHERE status = 'running' AND lease_until < ?"
    " AND attempts >= max_attempts) AS exhausted_waiting"
)


@functools.lru_cache(maxsize=32)
def _claim_sql(backends: int, prefer: bool = False) -> str:
    """The claim for a worker serving ``backends`` backends (0: any): the older,
    in queue order (created_at, then rowid), of the oldest job whose worker died
    (lease run out, attempts left) and the oldest queued job. Each is a lookup
    on the (status, created_at) index (an OR of them would scan the table), and
    the older of the two rows is chosen without a sort, in one statement.

    ``prefer`` (model affinity): the queued job is the oldest of the preferred
    backend, if it was submitted less than the pass-over bound after the oldest
    queued job (a range of the index: the walk stops at the bound), else the
    oldest queued job; a job whose worker died older than it still goes first
    (never passed over). Parameters: now, [backends]; with ``prefer``: the
    backend (one of [backends]), the bound as a date modifier ('+60.000
    seconds'), [backends]; then [backends]; then worker, lease, stamp; then now
    (whether an exhausted job waits, EXHAUSTED_WAITING)."""
    only = f" AND backend IN ({', '.join('?' * backends)})" if backends else ""
    pick = (
        "SELECT rowid AS r, created_at AS c FROM jobs WHERE status = {status}{only}"
        " ORDER BY created_at, rowid LIMIT 1"
    )
    expired = pick.format(
        status="'running' AND lease_until < ? AND attempts < max_attempts", only=only
    )
    queued = pick.format(status="'queued'", only=only)
    if prefer:
        # The stored times are UTC ISO 8601 with a '+00:00' suffix; the bound has
        # none, so a job submitted exactly at the bound sorts after it (not taken).
        bound = (
            "SELECT strftime('%Y-%m-%dT%H:%M:%f', created_at, ?) FROM jobs"
            f" WHERE status = 'queued'{only} ORDER BY created_at, rowid LIMIT 1"
        )
        preferred = pick.format(
            status=f"'queued' AND backend = ? AND created_at < ({bound})", only=""
        )
        queued = f"SELECT * FROM ({preferred}) UNION ALL SELECT * FROM ({queued}) LIMIT 1"
    # The job whose worker died unless the queued one is older; else the queued one.
    return (
        f"WITH expired AS ({expired}), queued AS ({queued})"
        " UPDATE jobs SET status = 'running', worker = ?, lease_until = ?,"
        " attempts = attempts + 1, updated_at = ?"
        " WHERE rowid = (SELECT r FROM expired WHERE NOT EXISTS"
        " (SELECT 1 FROM queued WHERE (queued.c, queued.r) < (expired.c, expired.r))"
        f" UNION ALL SELECT r FROM queued) RETURNING *, {EXHAUSTED_WAITING}"
    )


BUSY_TIMEOUT_S = 30.0
PASS_OVER_MAX_S = 1e9  # about 31 years


class SQLiteQueueError(ImagenError):
    """The queue's SQLite file refused a statement (locked for too long, unwritable)."""


def default_path() -> Path:
    return data_file("jobs.db")


@attrs.frozen(repr=False, eq=False)
class SQLiteQueueConfig:
    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    path: Path | None = setting(
        None,
        converter=optional_path,
        help="SQLite file of the job queue (default: $XDG_DATA_HOME/imagen/jobs.db)",
    )
    poll_s: float = setting(0.5, help="how often an idle worker looks for new jobs, seconds")


def _request(text: str, backend: str) -> tuple[Request, tuple[InputRef, ...]]:
    """The Request stored in a row (without its images' bytes) and its inputs;
    InvalidRequest when it is not one."""
    try:
        data = _decode(text)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"not an imagen request: {text!r:.200}")
    unknown = data.keys() - REQUEST_FIELDS
    if unknown:
        # Version skew: a newer imagen wrote a field this one does not know.
        raise InvalidRequest(
            f"unknown field(s) {', '.join(sorted(unknown))} (written by another imagen version?)"
        )
    return stored_request(data, backend)


def _text(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def _shown(text: str | None) -> str | None:
    """A text column as valid Unicode (undecodable bytes become '?')."""
    if text is None or text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def _metadata(text: str) -> dict[str, Any]:
    if text == "{}":  # every job until it is done
        return {}
    try:
        data = _decode(text)
    except (TypeError, ValueError):
        return {"unreadable": text}
    return data if isinstance(data, dict) else {"unreadable": data}


# json.loads without its keyword handling: a row is decoded on every listing and claim.
_decode = json.JSONDecoder().decode
REQUEST_FIELDS = frozenset(field.name for field in attrs.fields(Request))


def _read(db: sqlite3.Connection, hashes: Sequence[str]) -> dict[str, bytes]:
    """The stored images of ``hashes`` (those that are there)."""
    marks = ", ".join("?" * len(hashes))
    rows = db.execute(f"SELECT sha256, data FROM inputs WHERE sha256 IN ({marks})", list(hashes))
    return {sha256: bytes(data) for sha256, data in rows}


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

        from imagen_core.sqlite_locks import when_unlocked

        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            db.row_factory = sqlite3.Row
            # Text that is not UTF-8 (written by hand) reads as lone surrogates,
            # which Request refuses: that job fails alone instead of every read.
            db.text_factory = _text

            def prepare() -> None:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)

            try:
                when_unlocked(prepare, timeout_s=BUSY_TIMEOUT_S)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    @contextlib.contextmanager
    def _failing_clearly(self) -> Iterator[None]:
        """A SQLite error as one line naming the file (the worker retries these)."""
        import sqlite3

        try:
            yield
        except OSError as exc:
            raise SQLiteQueueError(
                f"job queue {self.path}: cannot create or open it ({exc.strerror or exc}); "
                "set queue.path in imagen.yaml to a writable place"
            ) from None
        except sqlite3.Error as exc:
            raise SQLiteQueueError(f"job queue {self.path}: {exc}") from None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: claims never race between processes."""
        with self._lock, self._failing_clearly():
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _job(row: sqlite3.Row, *, strict: bool = True) -> Job:
        """The Job of a row. A row whose request is not a Request (written by
        another version, or by hand) raises InvalidRequest, unless ``strict`` is
        off (listing must not break on one bad row): then the job shows a
        placeholder prompt and the reason as its error."""
        lease = row["lease_until"]
        error = row["error"]
        refs: tuple[InputRef, ...] = ()
        try:
            request, refs = _request(row["request"], row["backend"])
        except InvalidRequest as exc:
            if strict:
                raise
            request = Request("(invalid request)", backend=row["backend"])
            error = error or f"invalid request: {exc}"
        return Job(
            id=row["id"],
            request=request,
            inputs=refs,
            backend=row["backend"],
            status=row["status"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            created_at=dt.datetime.fromisoformat(row["created_at"]),
            updated_at=dt.datetime.fromisoformat(row["updated_at"]),
            worker=row["worker"],
            lease_until=dt.datetime.fromtimestamp(lease, dt.timezone.utc) if lease else None,
            result_path=_shown(row["result_path"]),
            error=_shown(error),
            metadata=_metadata(row["metadata"]),
        )

    # ------------------------------------------------------------- contract
    def init(self) -> None:
        with self._lock, self._failing_clearly():
            self._connect()

    def submit(self, request: Request, *, backend: str, max_attempts: int = 3) -> Job:
        job_id = str(uuid.uuid4())
        body = json.dumps(request_record(attrs.evolve(request, backend=backend)))
        now = _now()
        images = {item.sha256: item.data for item in request.inputs}
        with self._tx() as db:
            # The images first, in the same transaction: a job never refers to
            # an image that is not there, and no collection runs in between.
            for sha256, data in images.items():
                db.execute(STORE_INPUT, (sha256, data, now))
            db.execute(
                "INSERT INTO jobs (id, request, backend, status, max_attempts, created_at,"
                " updated_at) VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                (job_id, body, backend, max_attempts, now, now),
            )
            return self._job(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def claim(
        self,
        worker: str,
        *,
        backends: Sequence[str] | None,
        lease_s: float,
        prefer: str | None = None,
        pass_over_s: float = 0.0,
    ) -> Job | None:
        if backends is not None and not backends:
            return None
        extra = list(backends or ())
        preference: list[str] = []  # none: oldest first
        if prefer is not None and pass_over_s > 0 and (backends is None or prefer in backends):
            # The bound as a date modifier; any beyond PASS_OVER_MAX_S means "always".
            bound = f"+{min(pass_over_s, PASS_OVER_MAX_S):.3f} seconds"
            preference = [prefer, bound, *extra]
        query = _claim_sql(len(extra), bool(preference))
        while True:
            now, stamp = time.time(), _now()
            with self._tx() as db:
                taken = db.execute(
                    query, [now, *extra, *preference, *extra, worker, now + lease_s, stamp, now]
                ).fetchone()
                if taken is None or taken["exhausted_waiting"]:
                    # Jobs whose worker died on every attempt: failed in the same
                    # transaction (the claim never takes them).
                    for (exhausted,) in db.execute(EXHAUSTED, (stamp, now)).fetchall():
                        db.execute(COLLECT, (exhausted,))
            if taken is None:
                return None
            # Made into a Job outside the transaction: the write lock, which other
            # workers wait for, is held only for the SQL.
            try:
                job = self._job(taken)
                request = with_inputs(job.request, job.inputs, self._read_locked)
            except InvalidRequest as exc:
                # No attempt could ever run it (a request another version wrote,
                # its images gone or never stored): fail it for good, alone, and
                # look for the next job (the PostgreSQL queue does the same).
                self._update_owned(
                    taken["id"],
                    worker,
                    "status = 'failed', error = ?, lease_until = NULL",
                    [f"invalid request: {exc}"],
                    collect=True,
                )
                continue
            return attrs.evolve(job, request=request)

    def _read_locked(self, hashes: Sequence[str]) -> dict[str, bytes]:
        with self._lock, self._failing_clearly():
            return _read(self._connect(), hashes)

    def _update_owned(
        self,
        job_id: str,
        worker: str,
        assignments: str,
        values: list[Any],
        *,
        collect: bool = False,
    ) -> bool:
        """UPDATE a running job only if ``worker`` owns it; True when it did.
        ``collect``: the job may have ended, so delete its unneeded images."""
        with self._tx() as db:
            # Returns whether the job has images (most have none: no collection).
            row = db.execute(
                f"UPDATE jobs SET {assignments}, updated_at = ?"
                " WHERE id = ? AND worker = ? AND status = 'running'"
                " RETURNING instr(request, '\"inputs\"') > 0",
                [*values, _now(), job_id, worker],
            ).fetchone()
            if row is not None and row[0] and collect:
                db.execute(COLLECT, (job_id,))
            return row is not None

    def heartbeat(self, job_id: str, worker: str, *, lease_s: float) -> bool:
        return self._update_owned(job_id, worker, "lease_until = ?", [time.time() + lease_s])

    def complete(
        self, job_id: str, worker: str, *, result_path: str, metadata: dict[str, Any]
    ) -> bool:
        return self._update_owned(
            job_id,
            worker,
            "status = 'done', result_path = ?, metadata = ?, error = NULL, lease_until = NULL",
            [result_path, json.dumps(metadata, default=str)],
            collect=True,
        )

    def fail(self, job_id: str, worker: str, *, error: str, retry: bool = True) -> bool:
        return self._update_owned(
            job_id,
            worker,
            "status = CASE WHEN ? AND attempts < max_attempts THEN 'queued' ELSE 'failed' END,"
            " error = ?, worker = NULL, lease_until = NULL",
            [retry, error],
            collect=True,
        )

    def release(self, job_id: str, worker: str) -> bool:
        return self._update_owned(
            job_id,
            worker,
            "status = 'queued', attempts = MAX(attempts - 1, 0), worker = NULL, lease_until = NULL",
            [],
        )

    def cancel(self, job_id: str) -> Job | None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status = 'canceled', lease_until = NULL, updated_at = ?"
                " WHERE id = ? AND status IN ('queued', 'running')",
                (_now(), job_id),
            )
            db.execute(COLLECT, (job_id,))
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return self._job(row, strict=False) if row else None

    def get(self, job_id: str) -> Job | None:
        with self._lock, self._failing_clearly():
            row = self._connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row, strict=False) if row else None

    def input_bytes(self, sha256: str) -> bytes | None:
        with self._lock, self._failing_clearly():
            found = _read(self._connect(), [sha256])
        return found.get(sha256)

    def match(self, prefix: str, *, limit: int) -> list[str]:
        # Ids are lowercase UUIDs: a range on the primary key, not a scan.
        query = "SELECT id FROM jobs WHERE id >= ? AND id < ? ORDER BY created_at DESC LIMIT ?"
        with self._lock, self._failing_clearly():
            rows = self._connect().execute(query, (prefix, prefix + "\uffff", limit)).fetchall()
        return [row["id"] for row in rows]

    def list(self, *, status: str | None = None, limit: int = 100) -> list[Job]:
        query, params = "SELECT * FROM jobs", []
        if status:
            query += " WHERE status = ?"
            params.append(status)
        query += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        with self._lock, self._failing_clearly():
            rows = self._connect().execute(query, [*params, limit]).fetchall()
        return [self._job(r, strict=False) for r in rows]

    def wait(self, timeout_s: float) -> None:
        # SQLite cannot tell us of new rows: an idle worker looks again shortly.
        time.sleep(min(timeout_s, self.poll_s))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
