"""The gallery's index: every image sidecar and compare run under ``output.dir``,
newest first, paged by an opaque cursor.

Why an in-memory index kept fresh by directory mtimes (and not a SQLite file):

- The sidecars are the truth, and other processes (``imagen worker``,
  ``imagen generate``) add them at any time without telling the server. An
  index file would be a second copy to keep in step and to repair when it is
  stale or from an older version; memory is rebuilt from the truth at start.
- A directory's mtime changes when a file is added, removed or renamed in it,
  and imagen only ever adds sidecars by linking a finished temp file into
  place (``write_new``) and removes them by unlinking (a worker dropping a lost
  job's image). So a refresh stats the known directories (a few hundred at most:
  one per day, one per compare run, ``jobs/``) and lists only those that
  changed, parsing only the sidecars it has not seen. A request with nothing
  new costs those stats plus a slice of a sorted list, whatever the number of
  images; the first refresh reads every sidecar once.
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
import bisect
import datetime as dt
import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs

from imagen_core.comparison import SIDECAR_NAME
from imagen_core.worker import JOBS_FOLDER

# What imagen_core writes: a compare run's sidecar, and the worker's folder.
COMPARE_SIDECAR = SIDECAR_NAME
MAX_SIDECAR_BYTES = 1024 * 1024
RACY_S = 2.0

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
    sidecars: dict[str, str]  # sidecar file name -> entry id (path relative to the root)


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


class ImagesIndex:
    """Sidecars under ``root``; ``refresh()`` before reading, ``page()`` to read.

    Safe to use from several threads (the server's thread pool)."""

    def __init__(self, root: Path, *, racy_s: float = RACY_S) -> None:
        self.root = root
        self.racy_ns = int(racy_s * 1e9)
        self._dirs: dict[str, _Dir] = {}  # "" is the root
        self._entries: dict[str, Entry] = {}
        self._keys: list[Key] = []  # ascending; the newest is last
        self._lock = threading.Lock()
        self.scans = 0  # directories listed so far: lets tests see the index at work

    def __len__(self) -> int:
        return len(self._keys)

    # ------------------------------------------------------------- reading
    def page(self, cursor: Key | None, limit: int) -> tuple[list[dict[str, Any]], Key | None]:
        """Up to ``limit`` entries older than ``cursor`` (None: the newest), and the
        cursor of the page after, or None when this is the last one."""
        with self._lock:
            end = len(self._keys) if cursor is None else bisect.bisect_left(self._keys, cursor)
            start = max(0, end - limit)
            keys = self._keys[start:end]
            found = [self._entries[key[2]].data for key in reversed(keys)]
            return found, (keys[0] if start > 0 and keys else None)

    def get(self, entry_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(entry_id)
            return entry.data if entry else None

    # ------------------------------------------------------------- refreshing
    def refresh(self) -> None:
        """Catch up with the directories that changed since the last refresh."""
        with self._lock:
            now_ns = time.time_ns()
            reached: set[str] = set()
            stack = [""]
            while stack:
                rel = stack.pop()
                folder = self.root / rel if rel else self.root
                try:
                    mtime_ns = folder.lstat().st_mtime_ns
                except OSError:  # gone (or the root does not exist yet)
                    continue
                reached.add(rel)
                known = self._dirs.get(rel)
                if known is None or known.mtime_ns != mtime_ns or not known.trusted:
                    known = self._list(rel, folder, mtime_ns, now_ns, known)
                stack.extend(f"{rel}/{name}" if rel else name for name in known.subdirs)
            for gone in set(self._dirs) - reached:
                for entry_id in self._dirs.pop(gone).sidecars.values():
                    self._remove(entry_id)

    def _list(self, rel: str, folder: Path, mtime_ns: int, now_ns: int, known: _Dir | None) -> _Dir:
        self.scans += 1
        subdirs: list[str] = []
        names: list[str] = []
        try:
            with os.scandir(folder) as listing:
                for item in listing:
                    if item.name.startswith("."):  # write_new's temp files, and dot folders
                        continue
                    if item.is_dir(follow_symlinks=False):
                        subdirs.append(item.name)
                    elif item.name.endswith(".json") and item.is_file(follow_symlinks=False):
                        names.append(item.name)
        except OSError:
            pass
        before = known.sidecars if known else {}
        sidecars: dict[str, str] = {}
        for name in names:
            if name in before:
                sidecars[name] = before[name]
                continue
            entry = self._read(rel, folder, name)
            if entry is not None:
                entry_id = entry.key[2]
                self._remove(entry_id)  # a compare run whose compare.json was replaced
                self._entries[entry_id] = entry
                bisect.insort(self._keys, entry.key)
                sidecars[name] = entry_id
        for name, entry_id in before.items():
            if name not in sidecars:
                self._remove(entry_id)
        state = _Dir(
            mtime_ns=mtime_ns,
            trusted=now_ns - mtime_ns > self.racy_ns,
            subdirs=subdirs,
            sidecars=sidecars,
        )
        self._dirs[rel] = state
        return state

    def _remove(self, entry_id: str) -> None:
        entry = self._entries.pop(entry_id, None)
        if entry is not None:
            index = bisect.bisect_left(self._keys, entry.key)
            if index < len(self._keys) and self._keys[index] == entry.key:
                del self._keys[index]

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
    job = Path(image).stem if rel == JOBS_FOLDER else None
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
