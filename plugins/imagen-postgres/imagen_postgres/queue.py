"""The ``postgres`` queue: ``imagen_core.queue.Queue`` on one PostgreSQL table.

Every method is one SQL statement in autocommit mode, so each is its own
transaction and costs one round trip. Claims take the oldest claimable row with
``FOR UPDATE SKIP LOCKED``: concurrent workers never wait for each other and
never get the same row. Leases are computed with the database's clock
(``now()``), so workers on machines whose clocks disagree still agree on when a
lease ran out. Ownership is "running and ``worker`` is me": a worker whose lease
ran out but whose job nobody took yet may still finish it.

Input images are rows of ``imagen.inputs`` (one per sha256), stored in the
submit's transaction before the job. Whatever ends a job (done, failed,
canceled) then deletes its images that no queued or running job needs: the
rows are locked first and the check runs in a statement of its own, so it sees
a job committed meanwhile by a submit of the same image (which waits on that
lock, or re-inserts the row once it is gone). Only the rows it could lock are
deleted: a row a submit has not committed yet is left to the sweep.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import attrs
import psycopg
from psycopg import errors, pq, sql

from imagen_core.errors import ImagenError, InvalidRequest, UsageError
from imagen_core.notices import warn
from imagen_core.queue import FINAL, STATUSES, Job, with_inputs
from imagen_postgres import schema
from imagen_postgres.connection import Connection, Database, QueueDatabaseError
from imagen_postgres.listener import Listener
from imagen_postgres.rows import columns, metadata_json, request_json, to_job

if TYPE_CHECKING:
    import builtins
    from collections.abc import Iterator, Sequence

    from imagen_core.models import Request
    from imagen_postgres.settings import PostgresQueueConfig


class Statements:
    """The queue's SQL for one schema, composed once (the schema name is a
    validated identifier, quoted anyway by ``sql.Identifier``). Placeholders are
    positional: psycopg's named ones cost a little on every call, and claims
    and completions are the queue's hot path."""

    def __init__(self, schema_name: str) -> None:
        jobs = sql.Identifier(schema_name, "jobs")
        inputs = sql.Identifier(schema_name, "inputs")

        def compose(text: str, **parts: sql.Composable) -> bytes:
            return (
                sql.SQL(text)
                .format(
                    jobs=jobs,
                    inputs=inputs,
                    columns=sql.SQL(columns()),
                    returning=sql.SQL(columns("j")),
                    **parts,
                )
                .as_bytes()
            )

        self.submit = compose(
            "INSERT INTO {jobs} (request, backend, max_attempts) "
            "VALUES (%s::jsonb, %s, %s) RETURNING {columns}"
        )
        # One statement: fail the jobs whose worker died on every attempt (they
        # may be what brings workers down), pick the oldest claimable row
        # (skipping rows that other claims hold at this instant), take it,
        # return it. Two spellings, so that a worker serving every backend does
        # not carry a filter it does not need. Parameters: [backends,] worker, lease.
        # With a preferred backend (model affinity), ``picked`` is ``preferred``.
        claim = """
            WITH exhausted AS (
                UPDATE {jobs}
                SET status = 'failed', lease_until = NULL, updated_at = now(),
                    error = 'its worker stopped (killed, crashed or lost) during each of its '
                        || attempts || ' attempts; if the job itself brings workers down '
                        || '(out of memory?), submit it smaller, else submit it again'
                WHERE id IN (
                    SELECT id FROM {jobs}
                    WHERE status = 'running' AND lease_until < now()
                      AND attempts >= max_attempts
                    FOR UPDATE SKIP LOCKED
                )
            ),
            picked AS ({picked})
            UPDATE {jobs} AS j
            SET status = 'running', attempts = j.attempts + 1, worker = %s,
                lease_until = now() + %s::interval, updated_at = now()
            FROM picked
            WHERE j.id = picked.id
            RETURNING {returning}
            """
        oldest = """
                SELECT id FROM {jobs}
                WHERE (status = 'queued' OR (status = 'running' AND lease_until < now()
                                             AND attempts < max_attempts))
                  {only}
                ORDER BY seq
                LIMIT 1
                FOR UPDATE SKIP LOCKED
            """
        # The older, by seq, of the oldest job whose worker died and the queued
        # job to take: the oldest queued job of the preferred backend (on
        # jobs_queued_backend), if it was submitted less than the bound after
        # the oldest queued job, else the oldest queued job. So affinity passes
        # over older queued jobs, never a job whose worker died (nor does the
        # latter jump an older queued job). Each branch is a lookup on an index;
        # the order by seq sorts two rows at most. (The branches may lock a job
        # they then leave: only for this statement.)
        # Parameters: [backends,] backend, [backends,] bound, [backends,] worker, lease.
        preferred = """
                SELECT id FROM (
                    SELECT id, seq FROM (
                        SELECT id, seq FROM {jobs}
                        WHERE status = 'running' AND lease_until < now()
                          AND attempts < max_attempts {only}
                        ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED
                    ) AS died
                    UNION ALL
                    (
                        SELECT id, seq FROM (
                            SELECT id, seq, created_at FROM {jobs}
                            WHERE status = 'queued' AND backend = %s
                            ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED
                        ) AS preferred
                        WHERE created_at < (SELECT created_at FROM {jobs}
                                            WHERE status = 'queued' {only}
                                            ORDER BY seq LIMIT 1) + %s::interval
                        UNION ALL
                        SELECT id, seq FROM (
                            SELECT id, seq FROM {jobs} WHERE status = 'queued' {only}
                            ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED
                        ) AS oldest
                        LIMIT 1
                    )
                ) AS candidates
                ORDER BY seq
                LIMIT 1
            """
        every, some = sql.SQL(""), sql.SQL("AND backend = ANY(%s::text[])")
        self.claim_any = compose(claim.replace("{picked}", oldest), only=every)
        self.claim_some = compose(claim.replace("{picked}", oldest), only=some)
        self.claim_any_preferred = compose(claim.replace("{picked}", preferred), only=every)
        self.claim_some_preferred = compose(claim.replace("{picked}", preferred), only=some)
        # Parameters of the owned-job statements end with: id, worker.
        owned = " WHERE id = %s AND worker = %s AND status = 'running'"
        self.heartbeat = compose("UPDATE {jobs} SET lease_until = now() + %s::interval" + owned)
        # Statements that may end a job return its status and input list (NULL
        # for a job without images, which is all they then cost).
        ended = " RETURNING status, request -> 'inputs'"
        self.complete = compose(
            "UPDATE {jobs} SET status = 'done', result_path = %s, metadata = %s::jsonb, "
            "error = NULL, lease_until = NULL, updated_at = now()" + owned + ended
        )
        self.fail = compose(
            "UPDATE {jobs} SET "
            "status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END, "
            "worker = CASE WHEN attempts < max_attempts THEN NULL ELSE worker END, "
            "error = %s, lease_until = NULL, updated_at = now()" + owned + ended
        )
        self.give_up = compose(
            "UPDATE {jobs} SET status = 'failed', error = %s, lease_until = NULL, "
            "updated_at = now()" + owned + ended
        )
        # Input images. Storing one that is there takes its row lock (DO UPDATE),
        # which a collection of the same image waits for (see the module's doc).
        self.store_input = compose(
            "INSERT INTO {inputs} (sha256, data) VALUES (%s, %s) "
            "ON CONFLICT (sha256) DO UPDATE SET stored_at = now()"
        )
        self.read_inputs = compose(
            "SELECT sha256, data FROM {inputs} WHERE sha256 = ANY(%s::text[])"
        )
        self.read_input = compose("SELECT data FROM {inputs} WHERE sha256 = %s")
        self.lock_inputs = compose(
            "SELECT sha256 FROM {inputs} WHERE sha256 = ANY(%s::text[]) ORDER BY sha256 FOR UPDATE"
        )
        unneeded = (
            " AND NOT EXISTS (SELECT 1 FROM {jobs} AS l WHERE l.status IN ('queued', 'running')"
            " AND l.request -> 'inputs'"
            " @> jsonb_build_array(jsonb_build_object('sha256', i.sha256)))"
        )
        self.collect = compose(
            "DELETE FROM {inputs} AS i WHERE i.sha256 = ANY(%s::text[])" + unneeded
        )
        # Images left by what a collection cannot see: jobs failed inside a
        # claim (their workers died), a web app's image whose job never came.
        self.sweep = compose(
            "DELETE FROM {inputs} AS i WHERE i.stored_at < now() - %s::interval" + unneeded
        )
        self.release = compose(
            "UPDATE {jobs} SET status = 'queued', attempts = greatest(attempts - 1, 0), "
            "worker = NULL, lease_until = NULL, updated_at = now()" + owned
        )
        self.cancel = compose(
            "UPDATE {jobs} SET status = 'canceled', lease_until = NULL, updated_at = now() "
            "WHERE id = %s AND status IN ('queued', 'running') RETURNING {columns}"
        )
        self.get = compose("SELECT {columns} FROM {jobs} WHERE id = %s")
        # Short ids: few jobs are ever looked up this way, a scan is fine.
        self.match = compose(
            "SELECT id FROM {jobs} WHERE id::text LIKE %s ORDER BY seq DESC LIMIT %s"
        )
        self.list_all = compose("SELECT {columns} FROM {jobs} ORDER BY seq DESC LIMIT %s")
        self.list_status = compose(
            "SELECT {columns} FROM {jobs} WHERE status = %s ORDER BY seq DESC LIMIT %s"
        )


# Stored images older than this that no live job needs are swept (SWEEP_EVERY_S
# at most, by a claim that found nothing to do).
SWEEP_AGE_S = 3600.0
SWEEP_EVERY_S = 600.0
# A pass-over bound beyond this means the same: always (an interval holds it).
PASS_OVER_MAX_S = 1e9


def _uuid(job_id: str) -> uuid.UUID | None:
    """The id as a UUID; None for text that cannot be a job id (so no such job)."""
    try:
        return uuid.UUID(str(job_id))
    except ValueError:
        return None


class PostgresQueue:
    """Thread-safe: one connection for the statements (used by one thread at a
    time; each statement is a few milliseconds) and one that listens."""

    def __init__(self, config: PostgresQueueConfig) -> None:
        self.config = config
        self._database = Database(config)
        self._sql = Statements(config.schema)
        self._lock = threading.RLock()
        self._conn: Connection | None = None
        self._pid = os.getpid()
        self._listener = Listener(self._database.connect, schema.channel(config.schema))
        self._swept = time.monotonic()

    def __repr__(self) -> str:
        return f"PostgresQueue(schema={self.config.schema!r}, dsn_env={self.config.dsn_env!r})"

    def __enter__(self) -> PostgresQueue:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ the contract

    def init(self) -> None:
        # No parameters: the simple query protocol, which runs a whole script.
        self._rowcount(schema.sql(self.config.schema).encode(), None)

    def submit(self, request: Request, *, backend: str, max_attempts: int = 3) -> Job:
        if not backend:
            raise UsageError("a job needs a backend instance name")
        if max_attempts < 1:
            raise UsageError(f"max_attempts must be at least 1, got {max_attempts}")
        params = (request_json(request), backend, max_attempts)
        if not request.inputs:
            row = self._one(self._sql.submit, params)
        else:
            images = {item.sha256: item.data for item in request.inputs}
            with self._transaction() as conn:
                for sha256, data in sorted(images.items()):
                    conn.execute(self._sql.store_input, (sha256, data))
                row = conn.execute(self._sql.submit, params).fetchone()
        assert row is not None  # INSERT … RETURNING returns the row
        return to_job(row)

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
            return None  # serving no backend: nothing is ours (ANY('{}') agrees)
        # Before the claim's snapshot: see listener.py for why nothing is missed.
        self._listener.prime()
        lease = dt.timedelta(seconds=lease_s)
        params: tuple[Any, ...]
        if prefer is None or pass_over_s <= 0 or (backends is not None and prefer not in backends):
            if backends is None:
                query, params = self._sql.claim_any, (worker, lease)
            else:
                query, params = self._sql.claim_some, (list(backends), worker, lease)
        else:
            bound = dt.timedelta(seconds=min(pass_over_s, PASS_OVER_MAX_S))
            if backends is None:
                query, params = self._sql.claim_any_preferred, (prefer, bound, worker, lease)
            else:
                wanted = list(backends)
                query = self._sql.claim_some_preferred
                params = (wanted, prefer, wanted, bound, wanted, worker, lease)
        while True:
            row = self._one(query, params)
            if row is None:
                self._sweep_now_and_then()
                return None
            try:
                job = to_job(row)
                return attrs.evolve(
                    job, request=with_inputs(job.request, job.inputs, self._read_inputs)
                )
            except InvalidRequest as exc:
                # A prompt of exotic whitespace passes the table's CHECK and not
                # Request; an image may be missing (a web app inserted the job
                # without it). No attempt could ever run it, so fail it for good
                # and look for the next job.
                ended = self._one(self._sql.give_up, (f"invalid request: {exc}", row[0], worker))
                self._collect(ended)

    def heartbeat(self, job_id: str, worker: str, *, lease_s: float) -> bool:
        key = _uuid(job_id)
        lease = dt.timedelta(seconds=lease_s)
        return key is not None and self._rowcount(self._sql.heartbeat, (lease, key, worker)) == 1

    def complete(
        self, job_id: str, worker: str, *, result_path: str, metadata: dict[str, Any]
    ) -> bool:
        key = _uuid(job_id)
        if key is None:
            return False
        ended = self._one(self._sql.complete, (result_path, metadata_json(metadata), key, worker))
        self._collect(ended)
        return ended is not None

    def fail(self, job_id: str, worker: str, *, error: str, retry: bool = True) -> bool:
        key = _uuid(job_id)
        if key is None:
            return False
        statement = self._sql.fail if retry else self._sql.give_up
        ended = self._one(statement, (error, key, worker))
        self._collect(ended)
        return ended is not None

    def match(self, prefix: str, *, limit: int) -> builtins.list[str]:
        if not prefix or not all(c in "0123456789abcdef-" for c in prefix.lower()):
            return []
        rows = self._all(self._sql.match, (prefix.lower() + "%", limit))
        return [str(row[0]) for row in rows]

    def release(self, job_id: str, worker: str) -> bool:
        key = _uuid(job_id)
        return key is not None and self._rowcount(self._sql.release, (key, worker)) == 1

    def cancel(self, job_id: str) -> Job | None:
        key = _uuid(job_id)
        if key is None:
            return None
        row = self._one(self._sql.cancel, (key,))
        if row is None:  # already final (returned as it is), or no such job
            return self.get(job_id)
        job = to_job(row, strict=False)
        self._collect_hashes([ref.sha256 for ref in job.inputs])
        return job

    def input_bytes(self, sha256: str) -> bytes | None:
        row = self._one(self._sql.read_input, (sha256,))
        return None if row is None else bytes(row[0])

    def sweep_inputs(self, older_than_s: float = SWEEP_AGE_S) -> int:
        """Delete the stored images that no queued or running job needs and that
        were stored more than ``older_than_s`` ago; how many went. Claims that
        find nothing to do run it now and then (``SWEEP_EVERY_S``)."""
        self._swept = time.monotonic()
        return self._rowcount(self._sql.sweep, (dt.timedelta(seconds=older_than_s),))

    def get(self, job_id: str) -> Job | None:
        key = _uuid(job_id)
        row = None if key is None else self._one(self._sql.get, (key,))
        return None if row is None else to_job(row, strict=False)

    def list(self, *, status: str | None = None, limit: int = 100) -> builtins.list[Job]:
        limit = max(0, limit)
        if status is None:
            rows = self._all(self._sql.list_all, (limit,))
        elif status in STATUSES:
            rows = self._all(self._sql.list_status, (status, limit))
        else:
            raise UsageError(f"unknown job status {status!r}; one of {', '.join(STATUSES)}")
        return [to_job(row, strict=False) for row in rows]

    def wait(self, timeout_s: float) -> None:
        self._listener.wait(timeout_s)
        if self._database.transaction_pooler:
            warn(
                f"queue: {self.config.dsn_env} points at a transaction pooler (port 6543), "
                "which does not deliver NOTIFY: idle workers only look for jobs every "
                "few seconds; use the session pooler (port 5432) or a direct connection",
                once="postgres-transaction-pooler",
            )

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                conn.close()

    # ------------------------------------------------------------ input images

    def _read_inputs(self, hashes: Sequence[str]) -> dict[str, bytes]:
        return {
            sha256: bytes(data)
            for sha256, data in self._all(self._sql.read_inputs, (list(hashes),))
        }

    def _collect(self, ended: tuple[Any, ...] | None) -> None:
        """After a statement that may have ended a job (its row: status, inputs)."""
        if ended is None or ended[0] not in FINAL or not ended[1]:
            return
        hashes = [item["sha256"] for item in ended[1] if isinstance(item, dict)]
        self._collect_hashes([h for h in hashes if isinstance(h, str)])

    def _collect_hashes(self, hashes: builtins.list[str]) -> None:
        """Delete those of ``hashes`` no live job needs. Best effort: the job has
        ended whatever happens here, and a sweep takes what is left."""
        if not hashes:
            return
        try:
            with self._transaction() as conn:
                rows = conn.execute(self._sql.lock_inputs, (hashes,)).fetchall()
                # Only the rows locked here: one a submit had stored but not yet
                # committed was invisible to the lock, and a DELETE that then found
                # it (committed, and stored again by a newer submit holding its
                # lock) would recheck its job with the statement's older snapshot
                # and delete the image of a job it cannot see. A sweep takes it.
                locked = [row[0] for row in rows]
                if locked:
                    conn.execute(self._sql.collect, (locked,))  # a new snapshot: sees new jobs
        except ImagenError as exc:
            warn(f"queue: could not delete the input images of an ended job: {exc}")

    def _sweep_now_and_then(self) -> None:
        if time.monotonic() - self._swept < SWEEP_EVERY_S:
            return
        try:
            self.sweep_inputs()
        except UsageError:  # a queue made before imagen.inputs: nothing to sweep
            self._swept = time.monotonic()

    # ------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One transaction on the statement connection (for this thread)."""
        with self._lock:
            try:
                conn = self._connection()
                with conn.transaction():
                    yield conn
            except psycopg.Error as exc:
                raise self._translate(exc) from None

    def _one(self, query: bytes, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            try:
                return self._connection().execute(query, params).fetchone()
            except psycopg.Error as exc:
                raise self._translate(exc) from None

    def _all(self, query: bytes, params: tuple[Any, ...]) -> builtins.list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._connection().execute(query, params).fetchall()
            except psycopg.Error as exc:
                raise self._translate(exc) from None

    def _rowcount(self, query: bytes, params: tuple[Any, ...] | None) -> int:
        with self._lock:
            try:
                return self._connection().execute(query, params).rowcount
            except psycopg.Error as exc:
                raise self._translate(exc) from None

    def _connection(self) -> Connection:
        """The statement connection (callers hold the lock: one thread at a time)."""
        if self._pid != os.getpid():
            # Forked: the parent's connection is not ours to use or to close.
            self._conn, self._pid = None, os.getpid()
        if self._conn is None or self._conn.closed:
            self._conn = self._database.connect()
        return self._conn

    def _translate(self, exc: psycopg.Error) -> ImagenError:
        """psycopg's error as imagen's: one line, no secret. A lost connection is
        replaced on the next call; nothing is retried here, since a statement
        whose answer was lost may have been applied."""
        conn = self._conn
        if isinstance(exc, psycopg.OperationalError):
            if conn is not None and conn.closed:
                self._conn = None
            return self._database.unavailable(exc)
        if conn is not None and conn.info.transaction_status == pq.TransactionStatus.INERROR:
            # A script with its own BEGIN (init's) stops at the error inside its
            # transaction: end it, or every later statement would be refused too.
            with contextlib.suppress(psycopg.Error):
                conn.execute(b"ROLLBACK")
        if isinstance(exc, errors.UndefinedTable) and "inputs" in str(exc):
            return UsageError(
                f"the input table {self.config.schema}.inputs does not exist: run "
                "`imagen queue init` to add it (safe while workers run)"
            )
        if isinstance(exc, errors.UndefinedTable):
            return UsageError(
                f"the job table {self.config.schema}.jobs does not exist: "
                "run `imagen queue init` (or apply imagen_postgres/schema.sql)"
            )
        return self._refused(exc)

    def _refused(self, exc: psycopg.Error) -> ImagenError:
        text = self._database.describe(exc)
        constraint = exc.diag.constraint_name if isinstance(exc, errors.CheckViolation) else None
        if constraint:
            text += (
                f" (the table's rule {constraint}; if this imagen is newer than the "
                "table, run `imagen queue init` to update it)"
            )
        elif isinstance(exc, errors.InsufficientPrivilege):
            text += (
                f" (`imagen queue init` needs a role that may create the schema "
                f"{self.config.schema}; the queue's users need to own its table or be "
                "granted it: see docs/worker.md)"
            )
        return QueueDatabaseError(f"the PostgreSQL queue refused a statement: {text}")
