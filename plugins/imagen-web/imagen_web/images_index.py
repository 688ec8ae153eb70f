"""The gallery's index: every image sidecar, compare and grid run under ``output.dir``,
newest first, paged by an opaque cursor.

Where it lives: an SQLite catalog beside the ledger
(``$XDG_DATA_HOME/imagen/gallery-<hash of output.dir>.db``), so that a restart
reads only what changed while the server was down, not every sidecar again,
and the server holds no copy of 100,000 entries in memory.

- The sidecars are the truth, and other processes (``imagen worker``,
  ``imagen generate``) add them at any time without telling the server. The
  catalog remembers, per directory, its mtime and the sidecars read from it;
  a directory's mtime changes when a file is added, removed or renamed in it,
  and imagen only ever adds sidecars by linking a finished temp file into place
  (``write_new``) and removes them by unlinking. A refresh lists only the
  directories whose mtime moved, parsing only the sidecars it has not seen.
- Which directories a refresh stats: the root, ``jobs/`` and every directory
  that changed in the last ``hot_s`` (today's date folder, the worker's folders
  of the last 24 submit hours, recent compare runs: a few dozen), on every
  request, and any new folder found in them; all of them (one per day ever, one
  per submit hour of the worker's jobs, one per compare run) at start, and
  again in a sweep that starts every ``sweep_s``. A sweep stats at most
  ``SWEEP_SLICE`` of the other folders per request and goes on at the next
  ones, so no request pays for the whole history: a year of hourly job folders
  (≈ 9,000) is swept over ten requests. A new image in a recent folder shows at
  the next request; a change in a folder untouched for a day (a job run more
  than a day after it was submitted goes to its submit hour's folder) within
  ``sweep_s`` plus the requests its sweep takes.
- A catalog that cannot be opened (corrupt, from another version, unwritable)
  is rebuilt from the sidecars; it is a cache, never the truth.
- A rewrite in place of an existing sidecar (no rename) is not noticed until
  the server restarts; imagen never does that.
- Timestamps are coarse (a kernel tick, or seconds on some filesystems): a file
  added in the same tick as the listing that missed it leaves the mtime as it
  was. A directory modified less than ``racy_s`` before it was listed is
  therefore listed again at the next refresh, until its mtime is old enough to
  be trusted (the "racy timestamp" rule git uses for its index).
- Symlinked directories and sidecars are not followed: nothing outside
  ``output.dir`` is read, and a link loop cannot trap the walk.

Order: (``created`` of the sidecar, the sidecar's mtime, its path), newest
first. ``created`` has whole seconds, the mtime breaks ties within a second,
the path makes the order total. A cursor is that key of the last entry of a
page, so the next page starts right after it however many images arrived in
the meantime (they sort before it): pages never repeat or skip an entry.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs

from imagen_core.comparison import SIDECAR_NAME
from imagen_core.config import data_file
from imagen_core.grid.record import RECORD_NAME as GRID_SIDECAR
from imagen_core.jobfiles import JOBS_FOLDER, job_of

# What imagen_core writes: a compare run's sidecar.
COMPARE_SIDECAR = SIDECAR_NAME
MAX_SIDECAR_BYTES = 1024 * 1024
RACY_S = 2.0
HOT_S = 24 * 3600.0
SWEEP_S = 10.0
# The cold folders a request stats at most when a sweep is under way (≈ 4 ms).
SWEEP_SLICE = 1000
CATALOG_VERSION = 1

SCHEMA = f"""
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS dirs (
    rel      TEXT PRIMARY KEY,   -- relative to output.dir, "" for the root
    mtime_ns INTEGER NOT NULL,
    trusted  INTEGER NOT NULL,
    subdirs  TEXT NOT NULL       -- JSON list of names
);
CREATE TABLE IF NOT EXISTS entries (
    id       TEXT PRIMARY KEY,   -- the image (or compare run) path, relative
    dir      TEXT NOT NULL,
    sidecar  TEXT NOT NULL,      -- its sidecar's file name in dir
    created  REAL NOT NULL,
    mtime_ns INTEGER NOT NULL,
    data     TEXT NOT NULL       -- the API's JSON of the entry
);
CREATE INDEX IF NOT EXISTS entries_order ON entries (created, mtime_ns, id);
CREATE INDEX IF NOT EXISTS entries_dir ON entries (dir);
PRAGMA user_version={CATALOG_VERSION};
"""

# (created, sidecar mtime in ns, path of the entry relative to output.dir)
Key = tuple[float, int, str]


@attrs.frozen
class Entry:
    key: Key
    data: dict[str, Any]


@attrs.define
class _Dir:
    mtime_ns: int
    trusted: bool  # listed long enough after its mtime that the mtime can be trusted
    subdirs: list[str]


class CursorError(ValueError):
    pass


def image_url(relative: str) -> str:
    return "/images/" + quote(relative)


def encode_cursor(key: Key) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> Key:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created, mtime_ns, path = json.loads(raw)
    except Exception:
        raise CursorError("not a cursor this server gave out (use next_cursor as it is)") from None
    if (
        not isinstance(created, (int, float))
        or isinstance(created, bool)
        or not isinstance(mtime_ns, int)
        or isinstance(mtime_ns, bool)
        or not isinstance(path, str)
    ):
        raise CursorError("not a cursor this server gave out (use next_cursor as it is)")
    return float(created), mtime_ns, path


def default_catalog(root: Path) -> Path:
    digest = hashlib.sha256(str(root.absolute()).encode()).hexdigest()[:16]
    return data_file(f"gallery-{digest}.db")


class ImagesIndex:
    """Sidecars under ``root``; ``refresh()`` before reading, ``page()`` to read.

    Safe to use from several threads (the server's thread pool)."""

    def __init__(
        self,
        root: Path,
        *,
        catalog: Path | None = None,
        racy_s: float = RACY_S,
        hot_s: float = HOT_S,
        sweep_s: float = SWEEP_S,
    ) -> None:
        self.root = root
        self.catalog = catalog or default_catalog(root)
        self.racy_ns = int(racy_s * 1e9)
        self.hot_ns = int(hot_s * 1e9)
        self.sweep_ns = int(sweep_s * 1e9)
        self._lock = threading.Lock()
        self._db = self._open()
        self._dirs: dict[str, _Dir] = {
            rel: _Dir(mtime_ns, bool(trusted), json.loads(subdirs))
            for rel, mtime_ns, trusted, subdirs in self._db.execute(
                "SELECT rel, mtime_ns, trusted, subdirs FROM dirs"
            )
        }
        # The directories a refresh between sweeps stats: the root, jobs/, and
        # those that changed within hot_s or whose mtime is not trusted yet.
        self._hot = {rel for rel, known in self._dirs.items() if self._is_hot(rel, known)}
        self._walked = False  # the first refresh stats every folder at once
        self._swept_ns = 0  # when the last sweep started
        # The folders the sweep under way has yet to stat (a stack), and the ones
        # it found new (not yet known when popped).
        self._cold: list[str] = []
        self._cold_new: set[str] = set()
        self.scans = 0  # directories listed so far: lets tests see the index at work
        self.swept = 0  # cold directories stat'ed by sweeps so far (idem)

    def _open(self) -> sqlite3.Connection:
        try:
            return self._open_file()
        except (OSError, sqlite3.Error) as exc:
            from imagen_core.notices import warn

            # Unwritable data folder, a disk full: the gallery still works, from
            # memory, as before the catalog existed (a restart reads everything).
            warn(f"gallery catalog {self.catalog}: {exc}; keeping the index in memory")
            db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            db.executescript(SCHEMA)
            return db

    def _open_file(self) -> sqlite3.Connection:
        self.catalog.parent.mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            db = sqlite3.connect(
                self.catalog, isolation_level=None, check_same_thread=False, timeout=30
            )
            try:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, CATALOG_VERSION):
                    raise sqlite3.DatabaseError(f"catalog version {version}")
                db.executescript(SCHEMA)
                db.execute("PRAGMA synchronous=NORMAL")
                return db
            except sqlite3.DatabaseError:
                db.close()
                if attempt == 2:
                    raise
                # A cache, never the truth: one that cannot be read is rebuilt.
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{self.catalog}{suffix}").unlink(missing_ok=True)
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    # ------------------------------------------------------------- reading
    def page(self, cursor: Key | None, limit: int) -> tuple[list[dict[str, Any]], Key | None]:
        """Up to ``limit`` entries older than ``cursor`` (None: the newest), and the
        cursor of the page after, or None when this is the last one."""
        query = "SELECT created, mtime_ns, id, data FROM entries"
        params: list[Any] = []
        if cursor is not None:
            query += " WHERE (created, mtime_ns, id) < (?, ?, ?)"
            params += list(cursor)
        query += " ORDER BY created DESC, mtime_ns DESC, id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, [*params, limit + 1]).fetchall()
        found = [json.loads(row[3]) for row in rows[:limit]]
        last = rows[limit - 1] if len(rows) > limit else None
        return found, ((float(last[0]), last[1], last[2]) if last else None)

    def get(self, entry_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM entries WHERE id = ?", (entry_id,)).fetchone()
        return json.loads(row[0]) if row else None

    # ------------------------------------------------------------- refreshing
    def refresh(self) -> None:
        """Catch up with the directories that changed since the last refresh."""
        with self._lock:
            now_ns = time.time_ns()
            self._db.execute("BEGIN")
            try:
                if not self._walked:
                    self._walk_all(now_ns)
                    self._walked, self._swept_ns = True, now_ns
                else:
                    self._walk_hot(now_ns)
                    if not self._cold and now_ns - self._swept_ns >= self.sweep_ns:
                        self._swept_ns = now_ns
                        # Any order will do (a folder found gone takes what is
                        # under it along); not sorting saves ≈ 2 ms at 9,000.
                        hot = self._hot
                        self._cold = [rel for rel in self._dirs if rel not in hot]
                        self._cold_new = set()
                    self._sweep_slice(now_ns)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _is_hot(self, rel: str, known: _Dir, now_ns: int | None = None) -> bool:
        if rel in ("", JOBS_FOLDER) or not known.trusted:
            return True
        return (now_ns if now_ns is not None else time.time_ns()) - known.mtime_ns <= self.hot_ns

    def _walk_all(self, now_ns: int) -> None:
        """At start: stat every folder, list those that changed while the server
        was down, drop those that are gone."""
        reached: set[str] = set()
        root = os.fspath(self.root)
        stack = [""]
        while stack:
            rel = stack.pop()
            known = self._dirs.get(rel)
            try:  # a string, not a Path: the sweep stats every folder known
                mtime_ns = os.lstat(f"{root}/{rel}" if rel else root).st_mtime_ns
            except OSError:  # gone (or the root does not exist yet)
                continue
            reached.add(rel)
            if known is None or known.mtime_ns != mtime_ns or not known.trusted:
                known = self._list(rel, self.root / rel if rel else self.root, mtime_ns, now_ns)
            stack.extend(f"{rel}/{name}" if rel else name for name in known.subdirs)
        for gone in set(self._dirs) - reached:
            self._drop(gone)
        self._hot = {rel for rel, known in self._dirs.items() if self._is_hot(rel, known, now_ns)}

    def _walk_hot(self, now_ns: int) -> None:
        """Between sweeps: stat only the hot directories (a handful, however many
        folders there are), list those that changed and any new folder in them."""
        stack = sorted(self._hot | {""}, reverse=True)  # parents before their children
        new: set[str] = set()
        while stack:
            self._visit(stack.pop(), now_ns, stack, new)

    def _sweep_slice(self, now_ns: int) -> None:
        """The next ``SWEEP_SLICE`` folders of the sweep under way (the hot ones
        were just stat'ed; a folder found new is swept in turn)."""
        budget = SWEEP_SLICE
        while self._cold and budget > 0:
            rel = self._cold.pop()
            if rel in self._hot and rel not in self._cold_new:
                continue
            budget -= 1
            self.swept += 1
            self._visit(rel, now_ns, self._cold, self._cold_new)

    def _visit(self, rel: str, now_ns: int, stack: list[str], new: set[str]) -> None:
        """Stat one folder; list it when it changed, forgetting the subfolders gone
        and pushing the new ones (recorded in ``new``) onto ``stack``."""
        known = self._dirs.get(rel)
        if known is None and rel and rel not in new:
            return  # dropped meanwhile, with the folder that held it
        root = os.fspath(self.root)
        try:  # a string, not a Path: a sweep stats thousands of folders
            mtime_ns = os.lstat(f"{root}/{rel}" if rel else root).st_mtime_ns
        except OSError:  # gone (or the root does not exist yet)
            self._forget(rel)
            return
        if known is None or known.mtime_ns != mtime_ns or not known.trusted:
            before = set(known.subdirs) if known is not None else set()
            known = self._list(rel, self.root / rel if rel else self.root, mtime_ns, now_ns)
            after = set(known.subdirs)
            for name in sorted(before - after):
                self._forget(f"{rel}/{name}" if rel else name)
            for name in sorted(after - before, reverse=True):
                child = f"{rel}/{name}" if rel else name
                new.add(child)
                stack.append(child)
        if self._is_hot(rel, known, now_ns):
            self._hot.add(rel)
        else:
            self._hot.discard(rel)

    def _forget(self, rel: str) -> None:
        """Drop a folder that is gone, and every folder known under it."""
        under = f"{rel}/"
        for gone in [d for d in self._dirs if d == rel or not rel or d.startswith(under)]:
            self._drop(gone)

    def _drop(self, rel: str) -> None:
        self._dirs.pop(rel, None)
        self._hot.discard(rel)
        self._db.execute("DELETE FROM dirs WHERE rel = ?", (rel,))
        self._db.execute("DELETE FROM entries WHERE dir = ?", (rel,))

    def _list(self, rel: str, folder: Path, mtime_ns: int, now_ns: int) -> _Dir:
        self.scans += 1
        subdirs: list[str] = []
        names: set[str] = set()
        try:
            with os.scandir(folder) as listing:
                for item in listing:
                    if item.name.startswith("."):  # write_new's temp files, and dot folders
                        continue
                    if item.is_dir(follow_symlinks=False):
                        subdirs.append(item.name)
                    elif item.name.endswith(".json") and item.is_file(follow_symlinks=False):
                        names.add(item.name)
        except OSError:
            pass
        if GRID_SIDECAR in names:  # a grid run is one entry: its cells are not listed
            names = {GRID_SIDECAR}
        db = self._db
        before = dict(db.execute("SELECT sidecar, id FROM entries WHERE dir = ?", (rel,)))
        for name, entry_id in before.items():
            if name not in names:
                db.execute("DELETE FROM entries WHERE id = ? AND dir = ?", (entry_id, rel))
        for name in sorted(names - before.keys()):
            entry = self._read(rel, folder, name)
            if entry is not None:
                created, entry_mtime_ns, entry_id = entry.key
                # INSERT OR REPLACE: a compare run whose compare.json was replaced,
                # or a second sidecar naming the same image.
                db.execute(
                    "INSERT OR REPLACE INTO entries (id, dir, sidecar, created, mtime_ns, data)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (entry_id, rel, name, created, entry_mtime_ns, json.dumps(entry.data)),
                )
        state = _Dir(mtime_ns=mtime_ns, trusted=now_ns - mtime_ns > self.racy_ns, subdirs=subdirs)
        self._dirs[rel] = state
        db.execute(
            "INSERT OR REPLACE INTO dirs (rel, mtime_ns, trusted, subdirs) VALUES (?, ?, ?, ?)",
            (rel, mtime_ns, int(state.trusted), json.dumps(subdirs)),
        )
        return state

    def _read(self, rel: str, folder: Path, name: str) -> Entry | None:
        try:
            fd = os.open(folder / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as handle:
                mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
                data = json.loads(handle.read(MAX_SIDECAR_BYTES + 1)[:MAX_SIDECAR_BYTES])
        except (OSError, ValueError):  # vanished, unreadable, not JSON: not ours
            return None
        if not isinstance(data, dict):
            return None
        if not _utf8(data):
            # A sidecar holding a lone surrogate (an older imagen wrote one for a
            # prompt like "\\ud800x") cannot be answered as JSON: skip it, say so once.
            from imagen_core.notices import warn

            where = f"{rel}/{name}" if rel else name
            warn(f"images: skipped {where}: its text is not valid UTF-8", once=f"sidecar:{where}")
            return None
        if name == COMPARE_SIDECAR:
            return _compare_entry(rel, folder, data, mtime_ns)
        if name == GRID_SIDECAR:
            from imagen_web.grids import grid_entry

            return grid_entry(rel, folder, data, mtime_ns)
        return _image_entry(rel, folder, data, mtime_ns, root=self.root)


# ----------------------------------------------------------------- entries


def _utf8(data: dict[str, Any]) -> bool:
    """Whether every text in ``data`` can be sent as UTF-8."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError):
        return False
    return True


def _created(data: dict[str, Any], mtime_ns: int) -> tuple[float, str]:
    text = data.get("created")
    if isinstance(text, str):
        try:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.timezone.utc)
            return moment.timestamp(), moment.isoformat(timespec="seconds")
        except ValueError:
            pass
    moment = dt.datetime.fromtimestamp(mtime_ns / 1e9, dt.timezone.utc)
    return moment.timestamp(), moment.isoformat(timespec="seconds")


def _file_in(folder: Path, name: object) -> str | None:
    """``name`` when it is a plain file name present in ``folder``."""
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        return None
    return name if (folder / name).is_file() else None


def finite_number(value: object) -> float | None:
    """A finite number, else None: Python's json writes NaN and Infinity, which
    are not JSON and which no answer can carry."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def inputs_view(root: Path, recorded: object) -> list[dict[str, Any]]:
    """The inputs a sidecar (or a job) records, each with its gallery ``id`` and
    ``url`` when the file it came from is inside ``root`` (an image of the
    gallery, or an upload kept in inputs/), else None: never a server path."""
    found: list[dict[str, Any]] = []
    for item in recorded if isinstance(recorded, list) else []:
        if not isinstance(item, dict):
            continue
        relative = _inside(root, item.get("source"))
        found.append(
            {
                "sha256": _str(item.get("sha256")),
                "role": _str(item.get("role")),
                "width": _int(item.get("width")),
                "height": _int(item.get("height")),
                "id": relative,
                "url": image_url(relative) if relative else None,
            }
        )
    return found


def _inside(root: Path, source: object) -> str | None:
    if not isinstance(source, str) or not source:
        return None
    target = Path(source)
    for base in (root, root.resolve()):
        try:
            return target.relative_to(base).as_posix()
        except ValueError:
            continue
    return None


def _image_entry(
    rel: str, folder: Path, data: dict[str, Any], mtime_ns: int, *, root: Path
) -> Entry | None:
    image = _file_in(folder, data.get("image"))
    if image is None or not isinstance(data.get("prompt"), str):
        return None  # a JSON file that is not an imagen sidecar
    path = f"{rel}/{image}" if rel else image
    created, created_text = _created(data, mtime_ns)
    backend = _dict(data.get("backend"))
    request = _dict(data.get("request"))
    job = job_of(rel, image)
    body = {
        "id": path,
        "kind": "image",
        "url": image_url(path),
        "created": created_text,
        "prompt": data["prompt"],
        "style": _str(request.get("style")),
        "negative": _str(request.get("negative")),
        "backend": _str(backend.get("name")),
        "backend_type": _str(backend.get("type")),
        "model": _str(data.get("model")),
        "seed": _int(data.get("seed")),
        "width": _int(data.get("width")),
        "height": _int(data.get("height")),
        "steps": _int(request.get("steps")),
        "latency_s": finite_number(data.get("latency_s")),
        "cost_usd": finite_number(data.get("cost_usd")),
        "job": job,
        "inputs": inputs_view(root, request.get("inputs")),
        "strength": finite_number(request.get("strength")),
    }
    return Entry((created, mtime_ns, path), body)


def _compare_entry(rel: str, folder: Path, data: dict[str, Any], mtime_ns: int) -> Entry | None:
    if not rel or not isinstance(data.get("prompt"), str):
        return None  # a compare run always has a folder of its own
    sheet = _file_in(folder, data.get("contact_sheet"))
    created, created_text = _created(data, mtime_ns)
    settings = _dict(data.get("settings"))
    tiles: list[dict[str, Any]] = []
    for item in data.get("backends") or []:
        if not isinstance(item, dict):
            continue
        tile = _file_in(folder, item.get("path"))
        tiles.append(
            {
                "backend": _str(item.get("name")),
                "backend_type": _str(item.get("type")),
                "status": _str(item.get("status")),
                "model": _str(item.get("model")),
                "seed": _int(item.get("seed")),
                "latency_s": finite_number(item.get("latency_s")),
                "cost_usd": finite_number(item.get("cost_usd")),
                "url": image_url(f"{rel}/{tile}") if tile else None,
                "error": _str(item.get("error")),
            }
        )
    costs = [t["cost_usd"] for t in tiles if t["cost_usd"] is not None]
    latencies = [t["latency_s"] for t in tiles if t["latency_s"] is not None]
    body = {
        "id": rel,
        "kind": "compare",
        "url": image_url(f"{rel}/{sheet}") if sheet else None,
        "created": created_text,
        "prompt": data["prompt"],
        "style": _str(settings.get("style")),
        "negative": _str(settings.get("negative")),
        "backend": ", ".join(t["backend"] for t in tiles if t["backend"]) or None,
        "backend_type": None,
        "model": None,
        "seed": _int(settings.get("seed")),
        "width": _int(settings.get("width")),
        "height": _int(settings.get("height")),
        "steps": _int(settings.get("steps")),
        "latency_s": round(sum(latencies), 4) if latencies else None,  # all backends' time
        "cost_usd": round(sum(costs), 6) if costs else None,
        "job": None,
        "tiles": tiles,
    }
    return Entry((created, mtime_ns, rel), body)
