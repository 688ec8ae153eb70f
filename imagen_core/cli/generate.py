"""``imagen generate``: one image from a prompt."""

from __future__ import annotations

import click

from imagen_core.cli.options import (
    PlainHelp,
    common,
    cost_options,
    is_tty,
    make_request,
    open_session,
    price_check,
    request_options,
)


@click.command(cls=PlainHelp)
@click.option(
    "--backend", "-b", metavar="NAME", help="Backend instance (default: default_backend)."
)
@request_options(
    seed_help="0 picks a random seed (reported).", steps_help="0 uses the backend's default."
)
@click.option(
    "--output",
    "-o",
    metavar="PATH",
    help="Write here instead of the naming template (a folder keeps the template).",
)
@click.option("--no-sidecar", is_flag=True, help="Do not write the JSON sidecar.")
@click.option(
    "--no-metadata",
    is_flag=True,
    help="Do not write the prompt, seed and model into the image file (the sidecar keeps them).",
)
@click.option("--preview/--no-preview", default=None, help="Force or suppress the preview window.")
@click.option("--no-cloud", is_flag=True, help="Skip cloud sinks for this call.")
@cost_options
@common
def generate(
    prompt: tuple[str, ...],
    backend: str | None,
    size: tuple[int, int] | None,
    seed: int,
    steps: int,
    style: str | None,
    negative: str,
    images: tuple[str, ...],
    mask: str | None,
    strength: float | None,
    output: str | None,
    no_sidecar: bool,
    no_metadata: bool,
    preview: bool | None,
    no_cloud: bool,
    dry_run: bool,
    max_cost: float | None,
    config_path: str | None,
) -> None:
    """Generate one image from PROMPT (several words are joined; "-" reads stdin).

    Prints the written path; when stdout is not a terminal, only the path.
    """
    from imagen_core.terminal import StepProgress, summary_line

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
    session = open_session(config_path)
    instance = session.config.backend(backend, session.registry)
    if price_check(session, [request], dry_run, None):
        return
    progress = StepProgress.for_terminal(instance.name)
    from imagen_core.notices import warn

    def warn_clear(message: str) -> None:
        progress.close()  # a warning gets a line of its own, not the bar's end
        warn(message)

    session.warn = warn_clear
    try:
        record = session.generate(
            request,
            output=output,
            sidecar=False if no_sidecar else None,
            preview=preview,
            cloud=False if no_cloud else None,
            progress=progress,
            metadata=False if no_metadata else None,
            max_cost_usd=max_cost,
        )
    finally:
        progress.close()
    click.echo(str(record.path))
    if is_tty():
        click.echo(summary_line(record), err=True)
