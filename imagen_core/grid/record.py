"""grid.json: what a grid run is, cell by cell, and how it is read back.

The same record serves a finished run (``grid.json``) and a queued one waiting
for its jobs (``grid-jobs.json``, replaced by ``grid.json`` once assembled):
``imagen grid --wait RUN`` needs nothing else to finish the run, and the
gallery reads ``grid.json`` only.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import attrs
import cattrs

from imagen_core.errors import OutputError, UsageError

if TYPE_CHECKING:
    from pathlib import Path

RECORD_NAME = "grid.json"
PENDING_NAME = "grid-jobs.json"
HTML_NAME = "grid.html"
FORMAT = 1


@attrs.frozen
class AxisRecord:
    role: str  # x, y or z
    name: str
    labels: list[str]
    values: list[Any]
    extra: bool = False


@attrs.frozen
class CellRecord:
    index: int
    x: int
    y: int
    z: int
    values: dict[str, str]  # axis name -> the value's label
    backend: str
    stem: str
    status: str = "pending"  # pending | queued | ok | failed
    image: str | None = None  # file name inside the run folder
    sidecar: str | None = None
    seed: int | None = None  # the seed asked for (0: the backend picks) or used
    model: str | None = None
    latency_s: float | None = None
    cost_usd: float | None = None
    estimate_usd: float | None = None
    estimate_basis: str = "unknown"
    error: str | None = None
    job: str | None = None  # the queue's job id with --queue
    request: dict[str, Any] = attrs.field(factory=dict)  # what the cell asked for

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def info(self) -> str:
        """The cost and time line under the cell on the sheet."""
        from imagen_core.terminal import format_cost

        if not self.ok:
            return self.backend
        parts = [self.backend]
        if self.latency_s is not None:
            parts.append(f"{self.latency_s:.2f} s")
        parts.append(format_cost(self.cost_usd))
        return " · ".join(parts)


@attrs.frozen
class GridRecord:
    prompt: str
    created: str
    imagen_version: str
    mode: str  # local | queue
    parallel: bool
    base: dict[str, Any]
    axes: list[AxisRecord]
    cells: list[CellRecord]
    status: str = "done"  # queued | done
    sheets: list[str] = attrs.field(factory=list)
    html: str | None = None
    input_image: str | None = None  # the image every cell started from, copied here
    info_line: bool = True
    format: int = FORMAT
    kind: str = "grid"

    def axis(self, role: str) -> AxisRecord | None:
        return next((axis for axis in self.axes if axis.role == role), None)

    @property
    def ok(self) -> bool:
        return any(cell.ok for cell in self.cells)

    def totals(self) -> dict[str, Any]:
        costs = [c.cost_usd for c in self.cells if c.cost_usd is not None]
        estimates = [c.estimate_usd for c in self.cells if c.estimate_usd is not None]
        latencies = [c.latency_s for c in self.cells if c.latency_s is not None]
        return {
            "cells": len(self.cells),
            "ok": sum(c.ok for c in self.cells),
            "failed": sum(c.status == "failed" for c in self.cells),
            "cost_usd": round(sum(costs), 6),
            "cost_known": len(costs) == sum(c.ok for c in self.cells),
            "estimated_usd": round(sum(estimates), 6),
            "estimate_known": len(estimates) == len(self.cells),
            "latency_s": round(sum(latencies), 4),
        }


_converter = cattrs.Converter()


def as_dict(record: GridRecord) -> dict[str, Any]:
    """The record as grid.json holds it, with its totals."""
    body: dict[str, Any] = _converter.unstructure(record)
    body["totals"] = record.totals()
    return body


def to_json(record: GridRecord) -> bytes:
    return json.dumps(as_dict(record), indent=2, default=str).encode() + b"\n"


def read(folder: Path) -> tuple[GridRecord, Path]:
    """The run's record: ``grid-jobs.json`` while it waits, else ``grid.json``.
    UsageError when ``folder`` holds neither, or a broken one."""
    for name in (PENDING_NAME, RECORD_NAME):
        path = folder / name
        if path.is_file():
            break
    else:
        raise UsageError(
            f"{folder} is not a grid run (no {RECORD_NAME} or {PENDING_NAME} in it); "
            "give the folder `imagen grid` printed"
        )
    try:
        data = json.loads(path.read_text())
        data.pop("totals", None)
        return _converter.structure(data, GridRecord), path
    except (OSError, ValueError, cattrs.BaseValidationError, TypeError, KeyError) as exc:
        raise UsageError(f"{path} cannot be read as a grid record: {exc}") from None


def replace(path: Path, data: bytes) -> Path:
    """Write ``data`` at ``path`` whole or not at all, replacing what is there."""
    tmp = path.parent / f".imagen-{os.getpid()}-{os.urandom(6).hex()}.part"
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
