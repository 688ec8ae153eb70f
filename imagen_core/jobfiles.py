"""Where ``imagen worker`` puts a job's image, and how it finds it again.

``output.dir/jobs/<submit date>/<submit hour>/<job id>.<ext>``, the date and
hour of the job's submission in UTC (``jobs/2026-11-28/14/3f0c1e9a-….png``),
its sidecar beside it (``<job id>.json``).

- The path follows from the job alone (its id and ``created_at``), on every
  worker whatever its time zone: a re-run finds what an earlier attempt of the
  same job left by unlinking a few names, without listing any folder.
- The folder a new image lands in holds the jobs submitted in one hour, however
  long the history is, so the gallery's catalog (which lists a folder again when
  its mtime moves) relists a small folder after each new job image; ``jobs/``
  itself changes once a day, when a date folder is created.
- Before this layout every job image went to ``jobs/<job id>.<ext>``. Those
  images stay where they are: a re-run of such a job removes them too, and the
  gallery shows both layouts.
- What a re-run removes: ``<job id>`` with each suffix a backend's image has
  (``.png``, ``.jpg``, ``.webp``, ``.gif``), the sidecar and the image it names
  (any other type), and the ``<job id>-1`` pair two racing attempts may leave,
  through its sidecar. Not found: an image of another type, or a raced one,
  written with ``output.sidecar: false``.
- A job that runs more than a day after its submission writes into a folder
  the gallery looks at only every ``sweep_s`` (10 s), not at every request.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

JOBS_FOLDER = "jobs"

# The suffixes of the images backends return (Result.extension: image/png,
# image/jpeg, image/webp, image/gif); an image of another type is found through
# its sidecar, which names it.
IMAGE_SUFFIXES = (".png", ".jpg", ".webp", ".gif")
# write_new adds "-1" when the name is taken: only when two attempts of one job
# wrote at the same moment (one of them had lost its lease). Such a name is
# found through its sidecar only.
RACED = "-1"
# A submit-hour folder under jobs/ (compiled on first use, by re's cache).
_DATED = r"\d{4}-\d{2}-\d{2}/\d{2}"


def submit_hour(created_at: dt.datetime) -> str:
    """``YYYY-MM-DD/HH`` of ``created_at`` in UTC (a naive time is taken as UTC)."""
    moment = (
        created_at.astimezone(dt.timezone.utc)
        if created_at.tzinfo is not None
        else created_at.replace(tzinfo=dt.timezone.utc)
    )
    return f"{moment:%Y-%m-%d/%H}"


def job_folder(output_dir: Path, created_at: dt.datetime) -> Path:
    """The folder of the images of the jobs submitted in ``created_at``'s hour."""
    return output_dir / JOBS_FOLDER / submit_hour(created_at)


def job_output(output_dir: Path, job_id: str, created_at: dt.datetime) -> Path:
    """Where a job's image goes, without its suffix (the image's type adds it)."""
    return job_folder(output_dir, created_at) / job_id


def remove_leftovers(output_dir: Path, job_id: str, created_at: dt.datetime) -> None:
    """Remove what an earlier attempt of this job left (an image, its sidecar),
    in this layout and in the flat one before it, by name: no folder is listed.

    Each folder is opened once and the names are removed relative to it (a
    first attempt, the common case, costs a few failed lookups)."""
    for folder in (job_folder(output_dir, created_at), output_dir / JOBS_FOLDER):
        try:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:  # no such folder: nothing was left there
            continue
        try:
            named = _sidecar_image(f"{job_id}.json", fd)
            for name in (job_id + suffix for suffix in IMAGE_SUFFIXES):
                _unlink(name, fd)
            if named is not None:
                _remove_sidecar(job_id, named, fd)
            raced = _sidecar_image(f"{job_id}{RACED}.json", fd)
            if raced is not None:
                _remove_sidecar(f"{job_id}{RACED}", raced, fd)
        finally:
            os.close(fd)


def _remove_sidecar(stem: str, image: str, folder: int) -> None:
    """A sidecar and the image it names, when that image is one of this stem's."""
    if image.startswith(f"{stem}."):
        _unlink(image, folder)
    _unlink(f"{stem}.json", folder)  # last: it names the image


def _unlink(name: str, folder: int) -> None:
    try:
        os.unlink(name, dir_fd=folder)
    except FileNotFoundError:
        pass


def _sidecar_image(name: str, folder: int) -> str | None:
    """The image file name the sidecar ``name`` gives; None when there is no
    such sidecar, "" when there is one that names no image of its folder."""
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=folder)
    except FileNotFoundError:  # the common case: a first attempt
        return None
    except OSError:  # a symlink, unreadable: still in the way of the new sidecar
        return ""
    try:
        with os.fdopen(fd, "rb") as handle:
            data = json.loads(handle.read(1024 * 1024))
    except (OSError, ValueError):
        return ""
    image = data.get("image") if isinstance(data, dict) else None
    if not isinstance(image, str) or "/" in image or os.sep in image:
        return ""
    return image


def job_of(folder: str, image: str) -> str | None:
    """The job id of an image at ``folder/image`` (``folder`` relative to
    output.dir, POSIX), when it is in a job folder of either layout."""
    if folder == JOBS_FOLDER or (
        folder.startswith(f"{JOBS_FOLDER}/")
        and re.fullmatch(_DATED, folder[len(JOBS_FOLDER) + 1 :]) is not None
    ):
        return Path(image).stem
    return None
