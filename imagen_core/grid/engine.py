"""Running cells: one after another, or at once across devices.

The one code path of ``imagen grid`` and ``imagen compare`` (a comparison is a
grid with one ``backend`` axis). With ``parallel`` cells on different devices
run at the same time and cells on one device one after another, in order: the
device is the ``device:`` of the backend's block, else the one the backend
reports (a ComfyUI server's host:port); a backend with neither, a cloud API,
gets a lane of its own.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from imagen_core import naming
from imagen_core.errors import ImagenError, describe
from imagen_core.models import Generation, Request

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Sequence

    from imagen_core.models import Progress
    from imagen_core.pipeline import Session


@attrs.frozen
class Job:
    """One generation to run: the request (backend set) and where its image goes."""

    request: Request
    output: Path  # without suffix: the image's own is added
    label: str  # shown in progress lines


@attrs.frozen
class Done:
    """What one Job produced: a Generation or an error."""

    job: Job
    generation: Generation | None = None
    error: str | None = None


def device_of(session: Session, name: str) -> str | None:
    """The device a backend runs on: its block's ``device:``, else what the
    backend reports as ``device``, else None (a device of its own)."""
    instance, backend = session.backend(name)
    if instance.device:
        return instance.device
    reported = getattr(backend, "device", None)
    return str(reported) if reported else None


def run_jobs(
    session: Session,
    jobs: Sequence[Job],
    *,
    parallel: bool = False,
    sidecar: bool = False,
    cloud: bool | None = None,
    progress_for: Callable[[int, int, str], Progress] | None = None,
) -> list[Done]:
    """Run every job; a failure is a Done with its error, never an exception
    (Ctrl-C excepted). Results are in the order of ``jobs``."""
    total = len(jobs)

    def run(index: int, job: Job) -> Done:
        progress = progress_for(index + 1, total, job.label) if progress_for else None
        try:
            generation = session.generate(
                job.request,
                output=job.output,
                sidecar=sidecar,
                preview=False,
                cloud=cloud,
                progress=progress,
            )
        except ImagenError as exc:
            return Done(job, error=str(exc))
        except Exception as exc:  # one broken backend must not end the run
            return Done(job, error=describe(exc))
        finally:
            close = getattr(progress, "close", None)
            if close is not None:
                close()
        return Done(job, generation)

    if not parallel:
        return [run(index, job) for index, job in enumerate(jobs)]

    lanes: dict[str, list[int]] = {}
    done: dict[int, Done] = {}
    session.sinks()  # built here, not raced for by the lanes
    for index, job in enumerate(jobs):
        name = job.request.backend or ""
        try:
            key = device_of(session, name) or f"own:{name}"
        except ImagenError as exc:  # the backend cannot even start
            done[index] = Done(job, error=str(exc))
            continue
        lanes.setdefault(key, []).append(index)

    def run_lane(lane: list[int]) -> list[tuple[int, Done]]:
        return [(index, run(index, jobs[index])) for index in lane]

    if lanes:
        with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="grid") as pool:
            for finished in pool.map(run_lane, lanes.values()):
                done.update(finished)
    return [done[index] for index in range(total)]


def new_folder(
    session: Session, template: str, prompt: str, output_dir: str | os.PathLike[str] | None
) -> Path:
    """The run's folder: ``output_dir`` (made if missing), else a new one from
    ``template`` (``{date}``, ``{time}``, ``{slug}``) under output.dir, never reused."""
    if output_dir is not None:
        folder = Path(output_dir).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    now = dt.datetime.now()
    fields = {
        "date": now.strftime("%Y-%m-%d"),
        "time": now.strftime("%H%M%S"),
        "slug": naming.slugify(prompt),
    }
    base = naming.resolve(session.config.output.dir, template, fields)
    for candidate in naming.candidates(base):
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover
