"""``imagen grid``: one prompt across up to three axes of any parameter.

>>> from imagen_core.grid import parse_axis, run_grid
>>> axes = [parse_axis("seed=1..4"), parse_axis("steps=4..20:8", option="--y")]
>>> run = run_grid(Request("a fox"), axes)
>>> run.folder, run.sheets, run.html

Modules: ``axes`` (NAME=VALUES), ``plan`` (the checked cells), ``engine``
(running them, shared with compare), ``record`` (grid.json), ``sheet`` and
``html`` (what a run is looked at through), ``run`` (the whole of it).
Names are imported on first use: compare, which needs only ``engine``, does
not load the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core.exports import lazy

if TYPE_CHECKING:
    from imagen_core.grid.axes import BUILTIN, Axis, parse_axis
    from imagen_core.grid.plan import Cell, Plan
    from imagen_core.grid.run import GridRun, plan_grid, run_grid, wait_grid

_EXPORTS = {
    "BUILTIN": "imagen_core.grid.axes",
    "Axis": "imagen_core.grid.axes",
    "parse_axis": "imagen_core.grid.axes",
    "Cell": "imagen_core.grid.plan",
    "Plan": "imagen_core.grid.plan",
    "GridRun": "imagen_core.grid.run",
    "plan_grid": "imagen_core.grid.run",
    "run_grid": "imagen_core.grid.run",
    "wait_grid": "imagen_core.grid.run",
}

__all__ = [
    "BUILTIN",
    "Axis",
    "Cell",
    "GridRun",
    "Plan",
    "parse_axis",
    "plan_grid",
    "run_grid",
    "wait_grid",
]


__getattr__ = lazy(__name__, _EXPORTS)
