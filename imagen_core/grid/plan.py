"""A grid's cells, built and checked before anything runs.

Every cell is the base Request with one value of each axis applied. All of them
are built and checked up front, so a typo costs nothing: a Request a value
makes invalid, an unknown backend or style, a strength or input image a
backend cannot take (its ``capabilities()``), ``sr`` text missing from the
prompt. The error names the cell.

Not checked up front: whether a backend honours an extra key (``cfg``,
``sampler``): no backend declares the keys it takes, so an unknown key reaches
the backend, which ignores it or fails that cell. ``cfg`` alone must be a
number (every backend that reads it says so).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import attrs

from imagen_core import naming
from imagen_core.errors import ImagenError, UsageError
from imagen_core.grid.axes import Axis
from imagen_core.models import Estimate, Request

if TYPE_CHECKING:
    from collections.abc import Sequence

    from imagen_core.pipeline import Session

ROLES = ("x", "y", "z")
MAX_CELLS = 256


@attrs.frozen
class Cell:
    """One cell: where it sits (x, y, z indices), its request and file stem."""

    index: int  # position in run order (z, then y, then x)
    x: int
    y: int
    z: int
    request: Request  # backend set
    stem: str  # file name without suffix, inside the run folder
    labels: tuple[tuple[str, str], ...] = ()  # (axis, value) of each axis, x first

    def describe(self) -> str:
        """How an error names this cell: ``cell (seed=3, backend=flux)``."""
        if not self.labels:
            return f"cell {self.index + 1}"
        return "cell (" + ", ".join(f"{name}={value}" for name, value in self.labels) + ")"


@attrs.frozen
class Plan:
    """What will run: the axes (x, then y, then z) and every cell."""

    axes: tuple[Axis, ...]
    base: Request
    cells: tuple[Cell, ...]

    def axis(self, role: str) -> Axis | None:
        index = ROLES.index(role)
        return self.axes[index] if index < len(self.axes) else None

    def shape(self) -> tuple[int, int, int]:
        sizes = [len(axis.values) for axis in self.axes] + [1, 1, 1]
        return sizes[0], sizes[1], sizes[2]


def make_plan(
    session: Session,
    base: Request,
    axes: Sequence[Axis],
    *,
    max_cells: int = MAX_CELLS,
    check: bool = True,
) -> Plan:
    """Every cell of ``base`` across ``axes`` (at most three), checked.

    Raises UsageError naming the first cell that cannot run."""
    axes = tuple(axes)
    if not 1 <= len(axes) <= 3:
        raise UsageError("give one to three axes: --x AXIS=VALUES [--y ...] [--z ...]")
    names = [axis.name for axis in axes]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UsageError(f"axis {', '.join(twice)} is used twice; each axis may appear once")
    if "prompt" in names and "sr" in names:
        raise UsageError("prompt and sr both change the prompt; use one of them")
    count = 1
    for axis in axes:
        count *= len(axis.values)
    if count > max_cells:
        shape = " x ".join(str(len(axis.values)) for axis in axes)
        raise UsageError(
            f"the grid has {count} cells ({shape}), over --max-cells {max_cells}; "
            "use fewer values or raise --max-cells"
        )
    cells = []
    ranges = [range(len(axis.values)) for axis in axes]
    for index, positions in enumerate(itertools.product(*reversed(ranges))):
        coords = tuple(reversed(positions))  # x, y, z order
        cells.append(_cell(index, base, axes, coords))
    plan = Plan(axes, base, tuple(cells))
    if check:
        check_plan(session, plan)
    return plan


def _cell(index: int, base: Request, axes: tuple[Axis, ...], coords: tuple[int, ...]) -> Cell:
    labels = tuple((axis.name, axis.labels[i]) for axis, i in zip(axes, coords, strict=True))
    request = base
    described = "cell (" + ", ".join(f"{n}={v}" for n, v in labels) + ")"
    for axis, position in zip(axes, coords, strict=True):
        try:
            request = axis.apply(request, position)
        except UsageError as exc:  # a value the Request refuses (InvalidRequest)
            raise UsageError(f"{described}: {exc}") from None
    parts = [f"{name}-{value}" for name, value in labels]
    stem = f"{index + 1:03d}-" + naming.slugify(" ".join(parts), max_len=60)
    padded = [*coords, 0, 0]
    return Cell(index, padded[0], padded[1], padded[2], request, stem, labels)


def check_plan(session: Session, plan: Plan) -> None:
    """Refuse a plan any cell of which cannot run; the error names the cell."""
    from imagen_core.pipeline import apply_style

    sr = next((axis for axis in plan.axes if axis.name == "sr"), None)
    if sr is not None and sr.values[0] not in plan.base.prompt:
        raise UsageError(
            f"sr: {sr.values[0]!r} is not in the prompt {plan.base.prompt!r}; "
            "the first sr value is the text to replace"
        )
    checked: dict[tuple[str, bool, int, bool], None] = {}
    for cell in plan.cells:
        request = cell.request
        try:
            instance = session.config.backend(request.backend, session.registry)
            apply_style(request, session.config.styles)
            cfg = request.extra.get("cfg")
            if cfg is not None and (isinstance(cfg, bool) or not isinstance(cfg, (int, float))):
                raise UsageError(f"cfg must be a number, got {cfg!r}")
        except UsageError as exc:
            raise UsageError(f"{cell.describe()}: {exc}") from None
        # Capabilities depend on the backend and what the request carries only.
        key = (
            instance.name,
            request.strength is not None,
            len(request.images),
            request.mask is not None,
        )
        if key in checked:
            continue
        checked[key] = None
        try:
            _, backend = session.backend(instance.name)
        except ImagenError:
            continue  # cannot even start: its cells fail in their tiles, as compare does
        try:
            session.check_capabilities(request, instance.name, backend)
        except UsageError as exc:
            raise UsageError(f"{cell.describe()}: {exc}") from None


def estimates(session: Session, plan: Plan) -> list[Estimate]:
    """Each cell's estimated price (unknown for a backend that cannot start)."""
    found = []
    for cell in plan.cells:
        try:
            found.append(session.estimate(cell.request))
        except Exception:  # an estimate is advice: never a reason to stop
            found.append(Estimate())
    return found


def total(found: Sequence[Estimate]) -> tuple[float, bool]:
    """The sum of the known prices, and whether every price was known."""
    known = [e.usd for e in found if e.usd is not None]
    return round(sum(known), 6), len(known) == len(found)
