"""The cost ledger: every finished generation, of every backend, as one SQLite row.

On by default (``sinks: {ledger: false}`` turns it off). Several imagen processes
and workers write to it at once safely: WAL journal, a busy timeout, and one short
transaction per row. Being a sink, a locked or unwritable ledger is one warning
and never fails the generation. It is also the default source of ``imagen usage``.

A ledger keeps one connection for all its rows (opening one costs ~1 ms, closing
it ~0.5 ms: more than the rest of a small job), shared by the threads of a
worker, a server or ``compare --parallel`` under a lock. It is closed by
``close()``, or when the process exits (then SQLite folds the WAL back into the
file, as a one-shot ``imagen generate`` always did). A ledger file removed or
replaced while the process runs is opened again, as is the file after a fork.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core.config import data_file, optional_path, setting
from imagen_core.errors import ImagenError
from imagen_core.usage import UsageRow
from imagen_core.values import value_eq, value_hash, value_repr

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator

    from imagen_core.models import Generation
    from imagen_core.usage_report import DayTally, WeekGroup

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id            INTEGER PRIMARY KEY,
    created_at    TEXT NOT NULL,      -- UTC, ISO 8601
    backend       TEXT NOT NULL,      -- instance name
    backend_type  TEXT NOT NULL,
    model         TEXT,
    latency_s     REAL,
    cost_usd      REAL,               -- estimate; NULL when unknown
    prompt_sha256 TEXT NOT NULL,      -- never the prompt itself
    caller        TEXT NOT NULL,
    status        TEXT NOT NULL,      -- ok | failed | interrupted
    error         TEXT,
    inputs        INTEGER NOT NULL DEFAULT 0, -- input images given (edit, references, mask)
    cost_basis    TEXT                -- billed | computed | estimated; NULL when unknown
);
CREATE INDEX IF NOT EXISTS usage_created_at ON usage (created_at);
"""
# The table's columns are the usage row's fields, in order: one list to keep.
COLUMNS = tuple(field.name for field in attrs.fields(UsageRow))
# Columns of the ledger only (not of the usage rows other sinks send).
LEDGER_COLUMNS = (*COLUMNS, "inputs")
# Added to ledgers made before each column existed (SCHEMA_VERSION 1 and 2).
MIGRATIONS = {
    "inputs": "ALTER TABLE usage ADD COLUMN inputs INTEGER NOT NULL DEFAULT 0",
    "cost_basis": "ALTER TABLE usage ADD COLUMN cost_basis TEXT",
}

BUSY_TIMEOUT_S = 5.0
SCHEMA_VERSION = 3
INSERT = (
    f"INSERT INTO usage ({', '.join(LEDGER_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(LEDGER_COLUMNS))})"
)

UPDATE_PENDING = f"UPDATE usage SET {', '.join(f'{c} = ?' for c in LEDGER_COLUMNS)} WHERE id = ?"


def _create(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")  # persists in the file
    db.executescript(SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};")


def ensure_schema(db: sqlite3.Connection) -> None:
    """Create the usage table in a file that lacks it (new, or left empty)."""
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='usage'")
    if found.fetchone() is None:
        _create(db)


def typical_seconds(path: Path | None, backend: str, runs: int = 20) -> float | None:
    """The median time of the last ``runs`` good generations of ``backend``
    (its execution time where one was recorded as latency), None when none."""
    import sqlite3
    import statistics

    file = path or default_path()
    if not file.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{file}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            found = db.execute(
                "SELECT latency_s FROM usage WHERE backend = ? AND status = 'ok' "
                "AND latency_s IS NOT NULL ORDER BY id DESC LIMIT ?",
                (backend, runs),
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error:  # no table yet, a locked file: no history to go on
        return None
    return statistics.median(row[0] for row in found) if found else None


def _migrate(db: sqlite3.Connection) -> None:
    """Add the columns an older ledger lacks; its rows stay as they are. Only
    ADD COLUMN, which rewrites nothing, so writers of either version go on."""
    import sqlite3

    have = {row[1] for row in db.execute("PRAGMA table_info(usage)")}
    for column, statement in MIGRATIONS.items():
        if column not in have:
            try:
                db.execute(statement)
            except sqlite3.OperationalError as exc:
                if "duplicate column name" not in str(exc):  # another process was first
                    raise
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _read(db: sqlite3.Connection, query: str, params: list[Any]) -> sqlite3.Cursor:
    """Run a read; a ledger of an older imagen gains the columns it lacks first
    (ADD COLUMN rewrites nothing), so `imagen usage` works before any new write."""
    import sqlite3

    try:
        return db.execute(query, params)
    except sqlite3.OperationalError as exc:
        if "no such column" not in str(exc):
            raise
        _migrate(db)
        return db.execute(query, params)


def default_path() -> Path:
    return data_file("usage.db")


class LedgerError(ImagenError):
    """The ledger could not be written (reported as one warning by the pipeline)."""


@attrs.frozen(repr=False, eq=False)
class LedgerConfig:
    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    path: Path | None = setting(
        None,
        converter=optional_path,
        help="SQLite file of the ledger (default: $XDG_DATA_HOME/imagen/usage.db)",
    )


INTERRUPTED = "interrupted before the image was written"


def _key(generation: Generation) -> tuple[object, ...]:
    return (generation.started_at, generation.request.prompt_sha256, generation.backend)


# Every ledger with an open connection, closed at exit (SQLite then checkpoints
# the WAL into the file and removes it).
_OPEN: weakref.WeakSet[Ledger] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for ledger in list(_OPEN):
        ledger.close()


def _close_quietly(db: sqlite3.Connection, pid: int) -> None:
    """Close the connection of a ledger that was dropped with it open (a session
    that ended): the connection is in a reference cycle of its own (its statement
    cache), so without this only the garbage collector would close it, at the
    latest when the interpreter shuts down, and a CLI that ends with os._exit
    (imagen_core.cli.entry) would leave the WAL to recover."""
    import sqlite3

    if pid == os.getpid():  # a forked child leaves it alone
        with contextlib.suppress(sqlite3.Error):
            db.close()


class Ledger:
    def __init__(self, config: LedgerConfig) -> None:
        self.path = config.path or default_path()
        # Rows written by ``begin`` that ``send`` completes, by generation.
        self._pending: dict[tuple[object, ...], int] = {}
        # The kept connection, the file it has open (device, inode) and the
        # process that opened it; the lock serialises its users.
        self._db: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._closer: weakref.finalize[Any, Any] | None = None

    def close(self) -> None:
        """Close the kept connection (the next row opens one again)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        db, self._db, self._file = self._db, None, None
        _OPEN.discard(self)
        if self._closer is not None:
            self._closer.detach()
            self._closer = None
        if db is not None and self._pid == os.getpid():  # a forked child leaves it alone
            import sqlite3

            try:
                db.close()
            except sqlite3.Error:
                pass

    def _kept(self) -> sqlite3.Connection:
        """The kept connection, opened on first use and again when the file was
        removed or replaced meanwhile, or in a forked process. Under ``_lock``."""
        try:
            stat = self.path.stat()
            found: tuple[int, int] | None = (stat.st_dev, stat.st_ino)
        except OSError:
            found = None
        if self._db is not None and found == self._file and self._pid == os.getpid():
            return self._db
        self._drop()
        db = self._connect(check_same_thread=False)
        stat = self.path.stat()
        self._db, self._file, self._pid = db, (stat.st_dev, stat.st_ino), os.getpid()
        _OPEN.add(self)
        self._closer = weakref.finalize(self, _close_quietly, db, self._pid)
        return db

    def _connect(self, *, check_same_thread: bool = True) -> sqlite3.Connection:
        import sqlite3

        self.path.parent.mkdir(parents=True, exist_ok=True)
        # An existing ledger has its schema: no check per row (an insert that finds
        # no table creates it then, see send).
        existed = self.path.exists()
        # A writer waits for another one (BUSY_TIMEOUT_S) instead of failing at once.
        db = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=check_same_thread,
        )
        try:
            # WAL lets readers and several writers share the file; NORMAL syncs at
            # checkpoints, not every row: a crashed process loses nothing, a power
            # cut at most the last rows of a cost estimate.
            db.execute("PRAGMA synchronous=NORMAL")
            if not existed:
                _create(db)
        except BaseException:
            db.close()
            raise
        return db

    def begin(self, generation: Generation) -> None:
        """The row of an image about to be written, saying "interrupted" until
        ``send`` completes it: a process killed in between leaves a true record."""
        row_id = self._write(attrs.evolve(generation, error=INTERRUPTED), status="interrupted")
        if row_id is not None:
            self._pending[_key(generation)] = row_id

    def send(self, generation: Generation) -> None:
        self._write(generation, pending=self._pending.pop(_key(generation), None))

    def _write(
        self, generation: Generation, *, status: str | None = None, pending: int | None = None
    ) -> int | None:
        import sqlite3

        from imagen_core.identity import caller
        from imagen_core.sqlite_locks import when_unlocked

        values = UsageRow.of(generation, caller()).as_dict()
        if status is not None:
            values["status"] = status
        row = [values[c] for c in COLUMNS] + [len(generation.request.inputs)]
        try:
            return when_unlocked(lambda: self._insert(row, pending), timeout_s=BUSY_TIMEOUT_S)
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise LedgerError(f"cannot write {self.path}: {reason}") from None

    def _insert(self, row: list[object], pending: int | None = None) -> int | None:
        with self._lock:
            try:
                return self._insert_on(self._kept(), row, pending)
            except BaseException:
                self._drop()  # whatever went wrong, the next row starts afresh
                raise

    @staticmethod
    def _insert_on(db: sqlite3.Connection, row: list[object], pending: int | None) -> int | None:
        import sqlite3

        if pending is not None:
            updated = db.execute(UPDATE_PENDING, [*row, pending])
            if updated.rowcount == 1:
                return pending
        try:
            return db.execute(INSERT, row).lastrowid
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                _create(db)  # a file left empty (created, then interrupted)
            elif "has no column named" in str(exc):
                _migrate(db)  # a ledger of an older imagen
            else:
                raise
            return db.execute(INSERT, row).lastrowid

    def _where(self, since: dt.date | None, until: dt.date | None) -> tuple[str, list[str]]:
        from imagen_core.usage import bounds

        start, end = bounds(since, until)
        where, params = [], []
        if start:
            where.append("created_at >= ?")
            params.append(start.isoformat(timespec="seconds"))
        if end:
            where.append("created_at < ?")
            params.append(end.isoformat(timespec="seconds"))
        return (" WHERE " + " AND ".join(where) if where else ""), params

    def rows(self, *, since: dt.date | None, until: dt.date | None) -> Iterator[UsageRow]:
        """The rows in [since, until], oldest first, read as they are consumed
        (memory stays flat). A file without the table (left empty, or being
        created by a first generation right now) is an empty ledger; a row that
        cannot be read (text that is not UTF-8, a date that is not one) is skipped
        and reported once, so one bad row never hides the others."""
        import sqlite3

        if not self.path.exists():
            return
        where, params = self._where(since, until)
        query = f"SELECT {', '.join(COLUMNS)} FROM usage{where} ORDER BY created_at, id"
        db = self._connect()
        db.text_factory = bytes  # decoded per row: one bad row must not stop the rest
        skipped = 0
        try:
            try:
                cursor = _read(db, query, params)
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return
                raise
            for record in cursor:
                try:
                    row = _row(record)
                except (ValueError, TypeError):
                    skipped += 1
                    continue
                yield row
        finally:
            db.close()
            self._report_skipped(skipped)

    def _report_skipped(self, skipped: int) -> None:
        if skipped:
            from imagen_core.notices import warn

            warn(
                f"ledger {self.path}: skipped {skipped} unreadable row(s)",
                once=f"ledger-unreadable:{self.path}",
            )

    def week_groups(self, *, since: dt.date | None, until: dt.date | None) -> list[WeekGroup]:
        """The weekly report, summed by SQLite per UTC day; Python only folds the days
        into ISO weeks (SQLite before 3.46 has no ISO week), so memory follows the
        groups, not the rows. Unreadable rows are skipped and reported, as by rows()."""
        import sqlite3

        from imagen_core.usage_report import by_week_from_days

        if not self.path.exists():
            return []
        where, params = self._where(since, until)
        query = (
            "SELECT substr(created_at, 1, 10), backend, model, caller, count(*),"
            " total(status != 'ok'), total(cost_usd), count(cost_usd),"
            " total(latency_s), count(latency_s), group_concat(DISTINCT cost_basis)"
            f" FROM usage{where} GROUP BY 1, 2, 3, 4"
        )
        db = self._connect()
        db.text_factory = bytes
        skipped = 0

        def days(cursor: sqlite3.Cursor) -> Iterator[DayTally]:
            nonlocal skipped
            for record in cursor:
                try:
                    day, backend, model, caller, basis = (
                        value.decode() if isinstance(value, bytes) else value
                        for value in (*record[:4], record[10])
                    )
                    dt.date.fromisoformat(day)
                    if not (isinstance(backend, str) and isinstance(caller, str)):
                        raise ValueError("not text")
                except (ValueError, TypeError, AttributeError):
                    skipped += record[4]
                    continue
                count, failed, cost, costs, latency, latencies = record[4:10]
                yield (
                    day,
                    backend,
                    model,
                    caller,
                    count,
                    int(failed),
                    cost,
                    costs,
                    latency,
                    latencies,
                    basis,
                )

        try:
            try:
                cursor = _read(db, query, params)
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise
            return by_week_from_days(days(cursor))
        finally:
            db.close()
            self._report_skipped(skipped)


def _row(record: tuple[object, ...]) -> UsageRow:
    """A UsageRow from a raw row (text as bytes); ValueError when it is not one."""
    data = {
        column: value.decode() if isinstance(value, bytes) else value
        for column, value in zip(COLUMNS, record, strict=True)
    }
    created = data["created_at"]
    if not isinstance(created, str):
        raise ValueError(f"created_at is not a date: {created!r}")
    data["created_at"] = dt.datetime.fromisoformat(created)
    return UsageRow(**data)  # type: ignore[arg-type]
