"""One prompt, several backends: one PNG each, one sidecar, one contact sheet.

Backends run one after another by default: on one GPU, running them at once
would run out of memory. ``parallel=True`` runs at once only backends that do
not share a device (the ``device:`` label of their blocks, else the device the
backend reports, e.g. a ComfyUI server's host:port); a backend with neither, a
cloud API, gets a lane of its own. A comparison is a grid with one ``backend``
axis: its backends run through ``imagen_core.grid.engine``, as grid cells do;
it keeps its own files (compare.json, contact-sheet.png).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core import naming
from imagen_core._version import __version__
from imagen_core.errors import ImagenError, UsageError
from imagen_core.grid.engine import Job, new_folder, run_jobs
from imagen_core.grid.engine import device_of as device_of  # where callers found it
from imagen_core.models import Generation, Request
from imagen_core.pipeline import Session, write_new

if TYPE_CHECKING:
    import os

    from imagen_core.config import Config
    from imagen_core.models import Progress

# progress_for(index, total, backend) -> the step Progress for that backend.
ProgressFactory = Callable[[int, int, str], "Progress"]

COMPARE_FOLDER = "{date}/{time}-{slug}-compare"
SHEET_NAME = "contact-sheet.png"
SIDECAR_NAME = "compare.json"
INPUT_NAME = "input"  # input.png: the image every backend was given


@attrs.frozen
class Outcome:
    """What one backend of a comparison produced: a Generation or an error."""

    backend: str
    generation: Generation | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.generation is not None

    @property
    def path(self) -> Path | None:
        return self.generation.path if self.generation else None


@attrs.frozen
class Comparison:
    """A finished comparison. ``request`` carries the seed every backend used."""

    folder: Path
    request: Request
    outcomes: tuple[Outcome, ...]
    sheet: Path | None = None
    sidecar: Path | None = None
    input: Path | None = None  # the input image, written beside the results

    @property
    def ok(self) -> bool:
        """At least one backend succeeded (the CLI's exit code 0)."""
        return any(outcome.ok for outcome in self.outcomes)


def compare(
    request: Request,
    backends: Sequence[str],
    *,
    session: Session | None = None,
    config: Config | str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    parallel: bool = False,
    sidecar: bool | None = None,
    preview: bool | None = None,
    cloud: bool | None = None,
    progress_for: ProgressFactory | None = None,
) -> Comparison:
    """Run ``request`` on every backend in ``backends`` and build the contact sheet.

    One failing backend does not stop the others; each failure is an Outcome with
    its error. Raises UsageError before generating anything when a backend name
    is unknown or listed twice, and Unsupported when one that can be built cannot
    take the request's input images. Every backend gets the same inputs; the
    image to edit is written beside the results as ``input.<ext>`` and is the
    sheet's first tile."""
    session = session or Session(config)
    names = _check_names(session, backends)
    _check_capabilities(session, request, names)
    if request.seed == 0:  # one seed for all, so that the comparison is fair
        # Below 2**31: the smallest limit among the APIs compared (some take int32 seeds).
        request = attrs.evolve(request, seed=random.SystemRandom().randrange(1, 2**31))
    folder = _new_folder(session, request, output_dir)
    preview_mode = session.preview_mode(preview)

    # A comparison is a grid with one backend axis: the same runner.
    jobs = [
        Job(
            attrs.evolve(request, backend=name),
            output=folder / naming.path_safe(name),  # the image's own suffix is added
            label=name,
        )
        for name in names
    ]
    done = run_jobs(
        session, jobs, parallel=parallel, sidecar=False, cloud=cloud, progress_for=progress_for
    )
    outcomes = [Outcome(name, d.generation, d.error) for name, d in zip(names, done, strict=True)]

    comparison = Comparison(folder, request, tuple(outcomes), input=_write_input(folder, request))
    sheet = _write_sheet(comparison, session)
    comparison = attrs.evolve(comparison, sheet=sheet)
    if session.config.output.sidecar if sidecar is None else sidecar:
        comparison = attrs.evolve(comparison, sidecar=_write_sidecar(session, comparison, parallel))
    session.preview(sheet, request, preview_mode)
    return comparison


def _check_names(session: Session, backends: Sequence[str]) -> list[str]:
    names = [name.strip() for name in backends if name.strip()]
    if not names:
        raise UsageError("name at least one backend to compare, e.g. --models mock,mock-slow")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UsageError(f"backend {', '.join(twice)} is listed twice; list each once")
    for name in names:
        session.config.backend(name, session.registry)  # unknown -> UsageError, now
    return names


def _check_capabilities(session: Session, request: Request, names: list[str]) -> None:
    """Refuse, before anything runs, a comparison a backend could not take part in.
    A backend that cannot even start is left to fail in its own tile."""
    if not request.inputs and request.strength is None:
        return
    for name in names:
        try:
            _, backend = session.backend(name)
        except ImagenError:
            continue
        session.check_capabilities(request, name, backend)


def _new_folder(
    session: Session, request: Request, output_dir: str | os.PathLike[str] | None
) -> Path:
    return new_folder(session, COMPARE_FOLDER, request.prompt, output_dir)


def tile_details(outcome: Outcome, backend_type: str) -> tuple[str, ...]:
    """The label lines under a backend's tile: model, then latency and cost.
    A failed backend has no model to show (its tile says "failed"): its type."""
    from imagen_core.terminal import format_cost

    if outcome.generation is None or outcome.generation.result is None:
        return (f"type {backend_type}",)
    result = outcome.generation.result
    return (result.model, f"{result.latency_s:.2f} s · {format_cost(result.cost_usd)}")


def _type_of(session: Session, name: str) -> str:
    instance = session.config.backends.get(name)
    return instance.type if instance else name  # a registered type used by its name


def _write_input(folder: Path, request: Request) -> Path | None:
    """The image every backend started from, beside their results."""
    image = request.image or (request.references[0] if request.references else None)
    if image is None:
        return None
    return write_new(folder / f"{INPUT_NAME}.{image.extension}", image.data)


def input_details(request: Request) -> tuple[str, ...]:
    """The label lines under the input tile: what it is, and the other inputs."""
    first = request.image or request.references[0]
    kind = "image to edit" if request.image is not None else "reference"
    details = [f"{kind} · {first.width}x{first.height}"]
    others = []
    references = len(request.references) - (request.image is None)
    if references:
        others.append(f"+{references} reference" + ("s" if references > 1 else ""))
    if request.mask is not None:
        others.append("mask")
    if request.strength is not None:
        others.append(f"strength {request.strength:g}")
    if others:
        details.append(" · ".join(others))
    return tuple(details)


def _write_sheet(comparison: Comparison, session: Session, given: Path | None = None) -> Path:
    from imagen_core.contact_sheet import Tile, sheet_png

    tiles = (
        []
        if given is None
        else [Tile(title="input", details=input_details(comparison.request), image=given)]
    )
    tiles += [
        Tile(
            title=outcome.backend,
            details=tile_details(outcome, _type_of(session, outcome.backend)),
            image=outcome.path,
            error=outcome.error,
        )
        for outcome in comparison.outcomes
    ]
    return write_new(comparison.folder / SHEET_NAME, sheet_png(tiles))


def _write_sidecar(session: Session, comparison: Comparison, parallel: bool) -> Path:
    import json

    request = comparison.request
    body: dict[str, Any] = {
        "imagen_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "prompt": request.prompt,
        "settings": {
            "width": request.width,
            "height": request.height,
            "seed": request.seed,
            "steps": request.steps,
            "style": request.style,
            "negative": request.negative,
            "strength": request.strength,
            "parallel": parallel,
        },
        "inputs": [item.describe() for item in request.inputs],
        "contact_sheet": comparison.sheet.name if comparison.sheet else None,
        "input_image": comparison.input.name if comparison.input else None,
        "backends": [_outcome_entry(session, outcome) for outcome in comparison.outcomes],
    }
    data = json.dumps(body, indent=2, default=str).encode() + b"\n"
    return write_new(comparison.folder / SIDECAR_NAME, data)


def _outcome_entry(session: Session, outcome: Outcome) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": outcome.backend, "type": _type_of(session, outcome.backend)}
    generation = outcome.generation
    if generation is None or generation.result is None or generation.path is None:
        return {**entry, "status": "failed", "error": outcome.error}
    result = generation.result
    return {
        **entry,
        "status": "ok",
        "model": result.model,
        "workflow": result.metadata.get("workflow"),
        "seed": result.seed,
        "steps": result.metadata.get("steps", generation.request.steps),
        "latency_s": result.latency_s,
        "cost_usd": result.cost_usd,
        "path": generation.path.name,
        "prompt_sent": generation.prompt_sent,
        "metadata": result.metadata,
    }
