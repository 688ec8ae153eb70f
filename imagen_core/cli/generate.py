"""``imagen generate``: one image from a prompt."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from imagen_core.cli.options import (
    PlainHelp,
    common,
    cost_options,
    generate_and_print,
    make_request,
    open_session,
    price_check,
    request_options,
    writing_options,
)

if TYPE_CHECKING:
    from imagen_core.cli.options import Writing


@click.command(cls=PlainHelp)
@click.option(
    "--backend", "-b", metavar="NAME", help="Backend instance (default: default_backend)."
)
@request_options(
    seed_help="0 picks a random seed (reported).", steps_help="0 uses the backend's default."
)
@writing_options
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
    writing: Writing,
    dry_run: bool,
    max_cost: float | None,
    config_path: str | None,
) -> None:
    """Generate one image from PROMPT (several words are joined; "-" reads stdin).

    Prints the written path; when stdout is not a terminal, only the path.
    """
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
    session.config.backend(backend, session.registry)  # an unknown name: before the price
    if price_check(session, [request], dry_run, None):
        return
    generate_and_print(session, request, writing, max_cost_usd=max_cost)
