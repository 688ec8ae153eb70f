"""``imagen again``: run a recorded generation again."""

from __future__ import annotations

from typing import Any

import attrs
import click

from imagen_core.cli.options import (
    PlainHelp,
    Writing,
    common,
    generate_and_print,
    open_session,
    parse_size,
    writing_options,
)


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    return None if value is None else parse_size(ctx, param, value)


@click.command(cls=PlainHelp)
@click.argument("file", metavar="FILE|SIDECAR")
@click.option("--backend", "-b", metavar="NAME", help="Run it on another backend instance.")
@click.option("--size", metavar="WxH", callback=_size, help="Another WIDTHxHEIGHT.")
@click.option("--seed", type=int, help="Another seed (0 picks one: a variation).")
@click.option("--steps", type=click.IntRange(min=0), help="Another step count.")
@click.option("--style", metavar="NAME", help="Another style from imagen.yaml.")
@click.option("--negative", help="Another negative prompt.")
@click.option("--prompt", "new_prompt", metavar="TEXT", help="Another prompt.")
@writing_options
@common
def again(
    file: str,
    backend: str | None,
    size: tuple[int, int] | None,
    seed: int | None,
    steps: int | None,
    style: str | None,
    negative: str | None,
    new_prompt: str | None,
    writing: Writing,
    config_path: str | None,
) -> None:
    """Run the generation recorded in an image (or its sidecar) again.

    The recorded backend, prompt, style, negative prompt, size, seed, steps,
    strength and input images, with any option given here overriding (--seed 0
    for a variation, --backend other to try the same request elsewhere). Says
    whether the new image has the same pixels as the recorded one, and if not,
    what changed.
    """
    from imagen_core.provenance.again import differences, recorded, same_pixels

    session = open_session(config_path)
    original = recorded(file, session)
    overrides: dict[str, Any] = {
        "backend": backend,
        "seed": seed,
        "steps": steps,
        "style": style,
        "negative": negative,
        "prompt": new_prompt,
    }
    if size is not None:
        overrides["width"], overrides["height"] = size
    request = attrs.evolve(
        original.request, **{key: value for key, value in overrides.items() if value is not None}
    )
    record = generate_and_print(session, request, writing)
    assert record.path is not None
    if original.image is None:
        click.echo(
            "imagen: the recorded image is not beside its record: nothing to compare", err=True
        )
    elif same_pixels(original.image, record.path):
        click.echo(f"identical pixels to {original.image}", err=True)
    else:
        changes = differences(original.record, record)
        what = (
            "; ".join(changes)
            if changes
            else "nothing recorded changed (a nondeterministic backend)"
        )
        click.echo(f"differs from {original.image}: {what}", err=True)
