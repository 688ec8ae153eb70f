"""The cost ledger: every finished generation, of every backend, as one SQLite row.

On by default (``sinks: {ledger: false}`` turns it off). Several imagen processes
and workers write to it at once safely: WAL journal, a busy timeout, and one short
transaction per row. Being a sink, a locked or unwritable ledger is one warning
and never fails the generation. It is also the default source of ``imagen usage``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from imagen_core.config import data_file, optional_path, setting
from imagen_core.errors import ImagenError
from imagen_core.usage import UsageRow

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator

    from imagen_core.models import Generation

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
    status        TEXT NOT NULL,      -- ok | failed
    error         TEXT
);
CREATE INDEX IF NOT EXISTS usage_created_at ON usage (created_at);
"""
# The table's columns are the usage row's fields, in order: one list to keep.
COLUMNS = tuple(field.name for field in attrs.fields(UsageRow))

BUSY_TIMEOUT_S = 5.0
SCHEMA_VERSION = 1
INSERT = f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


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


def default_path() -> Path:
    return data_file("usage.db")


class LedgerError(ImagenError):
    """The ledger could not be written (reported as one warning by the pipeline)."""


@attrs.frozen
class LedgerConfig:
    path: Path | None = setting(
        None,
        converter=optional_path,
        help="SQLite file of the ledger (default: $XDG_DATA_HOME/imagen/usage.db)",
    )


class Ledger:
    def __init__(self, config: LedgerConfig) -> None:
        self.path = config.path or default_path()

    def _connect(self) -> sqlite3.Connection:
        import sqlite3

        self.path.parent.mkdir(parents=True, exist_ok=True)
        # An existing ledger has its schema: no check per row (an insert that finds
        # no table creates it then, see send).
        existed = self.path.exists()
        # A writer waits for another one (BUSY_TIMEOUT_S) instead of failing at once.
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
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

    def send(self, generation: Generation) -> None:
        import sqlite3

        from imagen_core.identity import caller
        from imagen_core.sqlite_locks import when_unlocked

        values = UsageRow.of(generation, caller()).as_dict()
        row = [values[c] for c in COLUMNS]
        try:
            when_unlocked(lambda: self._insert(row), timeout_s=BUSY_TIMEOUT_S)
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise LedgerError(f"cannot write {self.path}: {reason}") from None

    def _insert(self, row: list[object]) -> None:
        import sqlite3

        db = self._connect()
        try:
            try:
                db.execute(INSERT, row)
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    raise
                _create(db)  # a file left empty (created, then interrupted)
                db.execute(INSERT, row)
        finally:
            db.close()

    def rows(self, *, since: dt.date | None, until: dt.date | None) -> Iterator[UsageRow]:
        """The rows in [since, until]. A file without the table (left empty, or
        being created by a first generation right now) is an empty ledger; a row
        that cannot be read (text that is not UTF-8, a date that is not one) is
        skipped and reported once, so one bad row never hides the others."""
        import sqlite3

        from imagen_core.usage import bounds

        if not self.path.exists():
            return
        start, end = bounds(since, until)
        where, params = [], []
        if start:
            where.append("created_at >= ?")
            params.append(start.isoformat(timespec="seconds"))
        if end:
            where.append("created_at < ?")
            params.append(end.isoformat(timespec="seconds"))
        query = f"SELECT {', '.join(COLUMNS)} FROM usage"
        if where:
            query += " WHERE " + " AND ".join(where)
        db = self._connect()
        db.text_factory = bytes  # decoded per row: one bad row must not stop the rest
        skipped = 0
        try:
            try:
                cursor = db.execute(query + " ORDER BY created_at, id", params)
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
            if skipped:
                from imagen_core.notices import warn

                warn(
                    f"ledger {self.path}: skipped {skipped} unreadable row(s)",
                    once=f"ledger-unreadable:{self.path}",
                )


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
