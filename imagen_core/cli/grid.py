"""``imagen grid``: one prompt over up to three axes of any parameter."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from imagen_core.cli.options import (
    PlainHelp,
    common,
    cost_options,
    fail,
    make_request,
    open_session,
    parse_size,
    price_check,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from imagen_core.grid import GridRun, Plan
    from imagen_core.pipeline import Session


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    return None if value is None else parse_size(ctx, param, value)


def _one_axis(_ctx: click.Context, param: click.Parameter, given: tuple[str, ...]) -> str | None:
    """An axis option's value. Taken as repeatable only to refuse a repeat: click
    keeps the last of a repeated option, and ``--x seed=1..4 --x steps=4,8``
    would silently drop the seeds instead of making a second axis."""
    if len(given) > 1:
        option = param.opts[0]
        raise click.BadParameter(
            f"given {len(given)} times ({', '.join(given)}); one axis each: "
            "--x for the columns, --y for the rows, --z for the sheets",
            param_hint=option,
        )
    return given[0] if given else None


AXIS: dict[str, Any] = {"multiple": True, "callback": _one_axis}


@click.command(cls=PlainHelp)
@click.argument("prompt", nargs=-1)
@click.option("--x", "x_axis", **AXIS, metavar="AXIS=VALUES", help="The columns, e.g. seed=1..4.")
@click.option("--y", "y_axis", **AXIS, metavar="AXIS=VALUES", help="The rows, e.g. steps=4..20:8.")
@click.option(
    "--z", "z_axis", **AXIS, metavar="AXIS=VALUES", help="One sheet per value, e.g. style=,photo."
)
@click.option(
    "--backend", "-b", metavar="NAME", help="Backend for every cell (default: default_backend)."
)
@click.option(
    "--size",
    metavar="WxH",
    default=None,
    callback=_size,
    help="WIDTHxHEIGHT, each 1–8192.  [default: 1024x1024; with --image, its size]",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="One seed for all; 0 picks one."
)
@click.option(
    "--steps",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="0 uses each backend's default.",
)
@click.option("--style", metavar="NAME", help="A style from imagen.yaml wrapping the prompt.")
@click.option("--negative", default="", help="What to avoid (ignored by backends without it).")
@click.option(
    "--image",
    "-i",
    "images",
    metavar="PATH",
    multiple=True,
    help="An input image for every cell: the first is the image to edit (or the init "
    "image), further ones are references. Repeatable.",
)
@click.option("--mask", metavar="PATH", help="Inpaint mask (white = repaint) for every cell.")
@click.option(
    "--strength",
    type=click.FloatRange(0, 1),
    help="How far from the input image to go (0..1); a strength axis varies it.",
)
@click.option("--parallel", is_flag=True, help="Run cells on different devices at the same time.")
@click.option("--queue", "use_queue", is_flag=True, help="Run the cells as jobs on the queue.")
@click.option(
    "--detach", is_flag=True, help="With --queue: submit and exit; assemble later with --wait."
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="With --queue: tries per cell before it fails.",
)
@click.option(
    "--wait", "wait_run", metavar="RUN", help="Wait for a queued grid's jobs and assemble it."
)
@click.option(
    "--max-cells",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Refuse bigger grids (a typo in a range).",
)
@click.option(
    "--output-dir", metavar="DIR", help="Folder for the run (default: a new one under output.dir)."
)
@click.option("--no-info", is_flag=True, help="No time and cost line under each cell.")
@click.option("--no-sidecar", is_flag=True, help="No sidecar per cell (grid.json is written).")
@click.option("--preview/--no-preview", default=None, help="Force or suppress the sheet preview.")
@click.option("--no-cloud", is_flag=True, help="Skip cloud sinks for this run.")
@cost_options
@common
def grid(
    prompt: tuple[str, ...],
    x_axis: str | None,
    y_axis: str | None,
    z_axis: str | None,
    backend: str | None,
    size: tuple[int, int] | None,
    seed: int,
    steps: int,
    style: str | None,
    negative: str,
    images: tuple[str, ...],
    mask: str | None,
    strength: float | None,
    parallel: bool,
    use_queue: bool,
    detach: bool,
    max_attempts: int,
    wait_run: str | None,
    max_cells: int,
    output_dir: str | None,
    no_info: bool,
    no_sidecar: bool,
    preview: bool | None,
    no_cloud: bool,
    dry_run: bool,
    max_cost: float | None,
    config_path: str | None,
) -> None:
    """Run one PROMPT across up to three axes; write every cell, sheets and a page.

    \b
    Axes: backend, seed, steps, size, style, negative, strength, prompt
    (whole prompts separated by |), sr (search/replace: the first value is
    replaced by each in turn), or any value a backend takes (cfg, sampler).
    Values: a,b,c; ranges 1..8, 4..20:4, 1..7:1.5; "a, b" quotes a comma.

    \b
      imagen grid "a fox" --x seed=1..4 --y steps=4..20:8
      imagen grid "a red fox" --x backend=flux,sdxl --y sr=red,blue --dry-run
      imagen grid "a fox" --x cfg=1..7:1.5 --queue     # a fleet renders it

    Every cell is checked before anything runs (exit 2, naming the cell). A
    failed cell is a failed tile. Exit 0 when at least one cell made an
    image, 1 when none did.
    """
    from imagen_core.errors import UsageError
    from imagen_core.grid import parse_axis, plan_grid, run_grid, wait_grid

    session = open_session(config_path)
    if wait_run is not None:
        if prompt or x_axis or use_queue or dry_run:
            raise UsageError("--wait RUN takes no prompt, axes, --queue or --dry-run")
        _report(_waiting(lambda: wait_grid(wait_run, session=session, preview=preview), [wait_run]))
        return
    if not prompt:
        raise UsageError('give a PROMPT, e.g. imagen grid "a fox" --x seed=1..4')
    if x_axis is None:
        raise UsageError("give at least --x AXIS=VALUES, e.g. --x seed=1..4")
    if detach and not use_queue:
        raise UsageError("--detach goes with --queue")
    if parallel and use_queue:
        raise UsageError("--parallel and --queue do not go together: the workers set the pace")
    if z_axis is not None and y_axis is None:
        raise UsageError("--z needs --y: give the rows before the sheets")
    axes = [
        parse_axis(spec, option=option)
        for option, spec in (("--x", x_axis), ("--y", y_axis), ("--z", z_axis))
        if spec is not None
    ]
    if mask is not None and not images:
        raise UsageError("--mask needs the image it applies to: give --image")
    # The inputs are read and checked here, as generate and compare do ('-' is stdin).
    request = make_request(
        prompt,
        size,
        seed,
        steps,
        style,
        negative,
        backend,
        images=images,
        mask=mask,
        strength=strength,
    )
    checked = plan_grid(request, axes, session=session, max_cells=max_cells)
    if dry_run:
        click.echo(_dry_run_table(session, checked))
        return
    if max_cost is not None:
        cells = [cell.request for cell in checked.cells]
        if len(cells) == 1:
            session.check_max_cost(cells[0], max_cost)
        else:
            price_check(session, cells, False, max_cost)
    from imagen_core.terminal import StepProgress

    where: list[str] = []

    def queued(pending: GridRun) -> None:
        where.append(str(pending.folder))
        sys.stderr.write(
            f"imagen: {len(pending.record.cells)} jobs queued for {pending.folder}; "
            "waiting for workers (Ctrl-C stops waiting, not the jobs)\n"
        )

    def run() -> GridRun:
        return run_grid(
            request,
            axes,
            session=session,
            output_dir=output_dir,
            parallel=parallel,
            queue=use_queue,
            wait=not detach,
            max_cells=max_cells,
            max_attempts=max_attempts,
            info_line=not no_info,
            sidecar=False if no_sidecar else None,
            cloud=False if no_cloud else None,
            preview=preview,
            progress_for=lambda i, n, label: StepProgress.for_terminal(f"{i}/{n} {label}"),
            submitted=queued if not detach else None,
        )

    if use_queue and not detach:
        _report(_waiting(run, where))
    else:
        _report(run())


def _waiting(work: Callable[[], GridRun], folder: list[str]) -> GridRun:
    """``work`` (which waits for queued jobs); Ctrl-C says how to come back.
    ``folder`` holds the run's folder once it is known."""
    try:
        return work()
    except KeyboardInterrupt:
        if not folder:  # interrupted before anything was queued
            raise
        where = folder[0]
        sys.stderr.write(
            f"imagen: stopped waiting; the jobs keep running. Assemble later: "
            f"imagen grid --wait {where}\n"
        )
        raise


def _report(run: GridRun) -> None:
    record = run.record
    if run.waiting:
        queued = sum(cell.status == "queued" for cell in record.cells)
        click.echo(f"{queued} jobs queued for {run.folder}")
        click.echo(f"assemble when done: imagen grid --wait {run.folder}")
        return
    from imagen_core.terminal import format_cost

    totals = record.totals()
    for cell in record.cells:
        if cell.status == "failed":
            where = ", ".join(f"{k}={v}" for k, v in cell.values.items())
            sys.stderr.write(f"imagen: cell ({where}) failed: {cell.error}\n")
    cost = format_cost(totals["cost_usd"]) if totals["cost_known"] else "cost partly unknown"
    click.echo(f"{totals['ok']} of {totals['cells']} cells made an image · {cost}")
    click.echo(f"folder: {run.folder}")
    for sheet in run.sheets:
        click.echo(f"sheet: {sheet}")
    if run.html is not None:
        click.echo(f"page: {run.html}")
    if not run.ok:
        raise SystemExit(fail("no cell made an image", 1))


def _dry_run_table(session: Session, checked: Plan) -> str:
    from imagen_core.columns import table
    from imagen_core.grid.plan import estimates, total
    from imagen_core.terminal import format_cost

    priced = estimates(session, checked)
    names = [axis.name for axis in checked.axes]
    shown = [name for name in ("backend", "seed") if name not in names]
    rows = [("cell", *names, *shown, "estimate")]
    for cell, estimate in zip(checked.cells, priced, strict=True):
        values = dict(cell.labels)
        fixed = {"backend": cell.request.backend or "", "seed": str(cell.request.seed)}
        rows.append(
            (
                str(cell.index + 1),
                *(values[name] for name in names),
                *(fixed[name] for name in shown),
                format_cost(estimate.usd) if estimate.usd is not None else "unknown",
            )
        )
    usd, known = total(priced)
    x, y, z = checked.shape()
    shape = " x ".join(str(n) for n in (x, y, z)[: len(checked.axes)])
    cost = format_cost(usd) if known else f"at least {format_cost(usd)} (some prices unknown)"
    return f"{table(rows)}\n{len(checked.cells)} cells ({shape}) · estimated {cost} · nothing run"
