"""Running a grid: here (cells across devices), or as jobs on the queue.

``run_grid`` plans and checks every cell, makes the run's folder, runs the
cells (``engine.run_jobs``, as compare does) or submits them as jobs, and
writes what a run is: each cell's image and sidecar, one sheet per z value,
``grid.html`` and ``grid.json``. A failed cell is a failed tile.

With ``queue=True`` the cells are jobs for ``imagen worker`` (anywhere that
shares the queue); ``grid-jobs.json`` records them, and ``wait_grid`` (also
``imagen grid --wait RUN``) waits for them, copies each job's image and
sidecar into the folder and writes the rest. A worker on another machine
must write its images where this one can read them (a shared output.dir);
a job whose image cannot be read is a failed tile saying so.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core import naming
from imagen_core._version import __version__
from imagen_core.errors import UsageError, describe
from imagen_core.grid import record as rec
from imagen_core.grid.engine import Job, new_folder, run_jobs
from imagen_core.grid.plan import MAX_CELLS, ROLES, Plan, estimates, make_plan
from imagen_core.pipeline import Session, write_new
from imagen_core.queue import FINAL

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Sequence

    from imagen_core.config import Config
    from imagen_core.grid.axes import Axis
    from imagen_core.models import Progress, Request

GRID_FOLDER = "{date}/{time}-{slug}-grid"


@attrs.frozen
class GridRun:
    """A grid run's folder and record; ``sheets`` and ``html`` once assembled."""

    folder: Path
    record: rec.GridRecord
    record_path: Path
    sheets: tuple[Path, ...] = ()
    html: Path | None = None

    @property
    def ok(self) -> bool:
        """Assembled, and at least one cell made an image (exit code 0)."""
        return self.record.status == "done" and self.record.ok

    @property
    def waiting(self) -> bool:
        return self.record.status == "queued"


def plan_grid(
    request: Request,
    axes: Sequence[Axis],
    *,
    session: Session | None = None,
    config: Config | str | os.PathLike[str] | None = None,
    max_cells: int | None = None,
) -> Plan:
    """The checked cells of a grid (``--dry-run``). Raises UsageError naming a
    cell that could not run. One seed for all cells when ``request.seed`` is 0
    and no axis sets it, as compare does: the comparison stays fair."""
    session = session or Session(config)
    name = session.config.backend(request.backend, session.registry).name
    request = attrs.evolve(request, backend=name)
    if request.seed == 0 and not any(a.name == "seed" and not a.extra for a in axes):
        request = attrs.evolve(request, seed=random.SystemRandom().randrange(1, 2**31))
    return make_plan(session, request, axes, max_cells=max_cells or MAX_CELLS)


def run_grid(
    request: Request,
    axes: Sequence[Axis],
    *,
    session: Session | None = None,
    config: Config | str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    parallel: bool = False,
    queue: bool = False,
    wait: bool = True,
    max_cells: int | None = None,
    max_attempts: int = 3,
    info_line: bool = True,
    sidecar: bool | None = None,
    cloud: bool | None = None,
    preview: bool | None = None,
    progress_for: Callable[[int, int, str], Progress] | None = None,
    poll_s: float = 0.5,
    submitted: Callable[[GridRun], None] | None = None,
) -> GridRun:
    """Plan, check and run a grid; see the module's doc. With ``queue``,
    ``submitted`` is called with the waiting run once every job is queued."""
    session = session or Session(config)
    checked = plan_grid(request, axes, session=session, max_cells=max_cells)
    folder = _new_folder(session, checked.base, output_dir)
    given = checked.base.image or next(iter(checked.base.references), None)
    input_image = write_new(folder / f"input.{given.extension}", given.data) if given else None
    priced = estimates(session, checked)
    cells = [
        rec.CellRecord(
            index=cell.index,
            x=cell.x,
            y=cell.y,
            z=cell.z,
            values=dict(cell.labels),
            backend=cell.request.backend or "",
            stem=cell.stem,
            seed=cell.request.seed,
            estimate_usd=estimate.usd,
            estimate_basis=estimate.basis,
            request=_request_dict(cell.request),
        )
        for cell, estimate in zip(checked.cells, priced, strict=True)
    ]
    record = rec.GridRecord(
        prompt=checked.base.prompt,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        imagen_version=__version__,
        mode="queue" if queue else "local",
        parallel=parallel,
        base=_request_dict(checked.base),
        axes=[
            rec.AxisRecord(
                role=role,
                name=axis.name,
                labels=list(axis.labels),
                values=axis.as_dict()["values"],
                extra=axis.extra,
            )
            for role, axis in zip(ROLES, checked.axes, strict=False)
        ],
        cells=cells,
        status="queued" if queue else "done",
        input_image=input_image.name if input_image else None,
        info_line=info_line,
    )
    if queue:
        jobs = session.queue()
        queued: list[rec.CellRecord] = []
        problem: str | None = None
        try:
            for cell, record_cell in zip(checked.cells, cells, strict=True):
                if problem is None:
                    try:
                        job = jobs.submit(
                            cell.request, backend=record_cell.backend, max_attempts=max_attempts
                        )
                    except Exception as exc:  # the queue went away: the rest are failed tiles
                        problem = f"not queued: {describe(exc)}"
                    else:
                        queued.append(attrs.evolve(record_cell, status="queued", job=job.id))
                        continue
                queued.append(attrs.evolve(record_cell, status="failed", error=problem))
        finally:
            jobs.close()
        record = attrs.evolve(record, cells=queued)
        path = rec.replace(folder / rec.PENDING_NAME, rec.to_json(record))
        pending = GridRun(folder, record, path)
        if submitted is not None:
            submitted(pending)
        if not wait:
            return pending
        return wait_grid(folder, session=session, poll_s=poll_s, preview=preview)

    want_sidecar = session.config.output.sidecar if sidecar is None else sidecar
    done = run_jobs(
        session,
        [
            Job(cell.request, folder / cell.stem, label=_label(cell.labels))
            for cell in checked.cells
        ],
        parallel=parallel,
        sidecar=want_sidecar,
        cloud=cloud,
        progress_for=progress_for,
    )
    finished: list[rec.CellRecord] = []
    for cell_record, outcome in zip(cells, done, strict=True):
        generation = outcome.generation
        if generation is None or generation.result is None or generation.path is None:
            finished.append(attrs.evolve(cell_record, status="failed", error=outcome.error))
            continue
        result = generation.result
        finished.append(
            attrs.evolve(
                cell_record,
                status="ok",
                image=generation.path.name,
                sidecar=generation.sidecar.name if generation.sidecar else None,
                seed=result.seed,
                model=result.model,
                latency_s=result.latency_s,
                cost_usd=result.cost_usd,
            )
        )
    return _assemble(session, folder, attrs.evolve(record, cells=finished), preview)


def wait_grid(
    folder: str | os.PathLike[str],
    *,
    session: Session | None = None,
    config: Config | str | os.PathLike[str] | None = None,
    poll_s: float = 0.5,
    timeout_s: float | None = None,
    preview: bool | None = None,
) -> GridRun:
    """Wait for a queued grid's jobs and assemble it. A run already assembled
    is returned as it is. ``timeout_s`` passed: the run, still waiting."""
    session = session or Session(config)
    where = Path(folder).expanduser()
    record, path = rec.read(where)
    if record.status == "done":
        return _finished(where, record, path)
    queue = session.queue()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        cells = list(record.cells)
        pause = 0.05
        while True:
            for i, cell in enumerate(cells):
                if cell.status == "queued" and cell.job:
                    job = queue.get(cell.job)
                    if job is None:
                        cells[i] = attrs.evolve(
                            cell, status="failed", error=f"job {cell.job} is gone from the queue"
                        )
                    elif job.status in FINAL:
                        cells[i] = _collect(where, cell, job)
            if all(cell.status != "queued" for cell in cells):
                break
            if deadline is not None and time.monotonic() > deadline:
                return GridRun(where, attrs.evolve(record, cells=cells), path)
            time.sleep(pause)
            pause = min(poll_s, pause * 1.5)
    finally:
        queue.close()
    result = _assemble(session, where, attrs.evolve(record, cells=cells, status="done"), preview)
    (where / rec.PENDING_NAME).unlink(missing_ok=True)
    return result


# ----------------------------------------------------------------- helpers


def _collect(folder: Path, cell: rec.CellRecord, job: Any) -> rec.CellRecord:
    """A finished job as its cell: its image and sidecar copied into the run."""
    if job.status != "done":
        return attrs.evolve(cell, status="failed", error=job.error or f"job {job.status}")
    source = Path(job.result_path or "")
    if not source.is_file():
        return attrs.evolve(
            cell,
            status="failed",
            error=f"job {job.id} made {job.result_path}, which cannot be read here "
            "(a worker on another machine needs a shared output.dir)",
        )
    image = write_new(
        folder / f"{cell.stem}{source.suffix}", source.read_bytes(), companions=(".json",)
    )
    sidecar = None
    meta = job.metadata or {}
    given = meta.get("sidecar")
    if isinstance(given, str) and Path(given).is_file():
        sidecar = image.with_suffix(".json")
        try:  # the worker's sidecar, naming the image by its name here
            body = json.loads(Path(given).read_text())
            body["image"] = image.name
            write_new(sidecar, json.dumps(body, indent=2, default=str).encode() + b"\n")
        except (OSError, ValueError, TypeError):
            shutil.copyfile(given, sidecar)
    return attrs.evolve(
        cell,
        status="ok",
        image=image.name,
        sidecar=sidecar.name if sidecar else None,
        seed=meta.get("seed", cell.seed),
        model=meta.get("model"),
        latency_s=meta.get("latency_s"),
        cost_usd=meta.get("cost_usd"),
    )


def _assemble(
    session: Session, folder: Path, record: rec.GridRecord, preview: bool | None
) -> GridRun:
    from imagen_core.grid.html import page
    from imagen_core.grid.sheet import encode_png

    sheets = [
        write_new(folder / name, encode_png(image)) for name, image in _sheets(folder, record)
    ]
    html = write_new(folder / rec.HTML_NAME, page(record, [p.name for p in sheets]).encode())
    record = attrs.evolve(record, sheets=[p.name for p in sheets], html=html.name, status="done")
    path = rec.replace(folder / rec.RECORD_NAME, rec.to_json(record))
    from imagen_core.models import Request

    session.preview(sheets[0], Request(record.prompt), session.preview_mode(preview))
    return GridRun(folder, record, path, tuple(sheets), html)


def _sheets(folder: Path, record: rec.GridRecord) -> list[tuple[str, Any]]:
    """(file name, image) of each z value's sheet."""
    from imagen_core.grid.sheet import SheetCell, render_grid_sheet

    x, y, z = record.axis("x"), record.axis("y"), record.axis("z")
    assert x is not None
    rows = y.labels if y else [""]
    out = []
    for k, z_label in enumerate(z.labels if z else [""]):
        grid = [[SheetCell() for _ in x.labels] for _ in rows]
        for cell in record.cells:
            if cell.z == k:
                grid[cell.y][cell.x] = SheetCell(
                    image=folder / cell.image if cell.image else None,
                    error=cell.error,
                    info=cell.info(),
                )
        title = record.prompt
        name = "grid.png"
        if z is not None:
            title = f"{z.name} = {z_label} · {title}"
            name = f"grid-{k + 1:02d}-{naming.slugify(z_label, max_len=30)}.png"
        image = render_grid_sheet(
            grid,
            column_title=x.name,
            column_labels=x.labels,
            row_title=y.name if y else "",
            row_labels=rows,
            title=title,
            info=record.info_line,
        )
        out.append((name, image))
    return out


def _finished(folder: Path, record: rec.GridRecord, path: Path) -> GridRun:
    sheets = tuple(folder / name for name in record.sheets)
    return GridRun(folder, record, path, sheets, folder / record.html if record.html else None)


def _label(labels: tuple[tuple[str, str], ...]) -> str:
    return " ".join(f"{name}={value}" for name, value in labels)


def _request_dict(request: Request) -> dict[str, Any]:
    data = attrs.asdict(request, filter=lambda field, _value: field.name != "inputs")
    data["inputs"] = [item.describe() for item in request.inputs]
    return data


def _new_folder(
    session: Session, request: Request, output_dir: str | os.PathLike[str] | None
) -> Path:
    if output_dir is not None:
        for name in (rec.RECORD_NAME, rec.PENDING_NAME):
            if (Path(output_dir).expanduser() / name).exists():
                raise UsageError(
                    f"--output-dir {output_dir} holds a grid run already ({name}); "
                    "give a new folder, or leave --output-dir out for a fresh one"
                )
    return new_folder(session, GRID_FOLDER, request.prompt, output_dir)
