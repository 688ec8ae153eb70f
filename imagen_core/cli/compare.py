"""``imagen compare``: one prompt on several backends, and a contact sheet."""

from __future__ import annotations

import attrs
import click

from imagen_core.cli.options import (
    PlainHelp,
    common,
    cost_options,
    make_request,
    open_session,
    price_check,
    request_options,
)


@click.command(cls=PlainHelp)
@click.option(
    "--models",
    "-m",
    required=True,
    metavar="A,B,C",
    help="Backend instances to compare, comma-separated.",
)
@request_options(
    seed_help="One seed for all; 0 picks one (reported).",
    steps_help="0 uses each backend's default.",
)
@click.option(
    "--output-dir", metavar="DIR", help="Folder for the run (default: a new one under output.dir)."
)
@click.option(
    "--parallel", is_flag=True, help="Run backends on different devices at the same time."
)
@click.option("--no-sidecar", is_flag=True, help="Do not write compare.json.")
@click.option(
    "--preview/--no-preview", default=None, help="Force or suppress the contact sheet preview."
)
@click.option("--no-cloud", is_flag=True, help="Skip cloud sinks for this run.")
@cost_options
@common
def compare(
    prompt: tuple[str, ...],
    models: str,
    size: tuple[int, int] | None,
    seed: int,
    steps: int,
    style: str | None,
    negative: str,
    images: tuple[str, ...],
    mask: str | None,
    strength: float | None,
    output_dir: str | None,
    parallel: bool,
    no_sidecar: bool,
    preview: bool | None,
    no_cloud: bool,
    dry_run: bool,
    max_cost: float | None,
    config_path: str | None,
) -> None:
    """Run one PROMPT on several backends; write each image and a contact sheet.

    Backends run one after another (one GPU would run out of memory otherwise);
    --parallel overlaps only backends on different devices. Exit code 0 when at
    least one backend succeeded, 1 when all failed.
    """
    from imagen_core.comparison import compare as run_compare
    from imagen_core.terminal import StepProgress, comparison_table

    request = make_request(
        prompt, size, seed, steps, style, negative, images=images, mask=mask, strength=strength
    )
    session = open_session(config_path)
    names = models.split(",")
    each = [attrs.evolve(request, backend=name) for name in names]
    if price_check(session, each, dry_run, max_cost):
        return
    result = run_compare(
        request,
        names,
        session=session,
        output_dir=output_dir,
        parallel=parallel,
        sidecar=False if no_sidecar else None,
        preview=preview,
        cloud=False if no_cloud else None,
        progress_for=lambda i, n, name: StepProgress.for_terminal(f"{i}/{n} {name}"),
    )
    click.echo(comparison_table(result))
    if not result.ok:
        raise SystemExit(1)
