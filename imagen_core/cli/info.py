"""``imagen info``: how an image was made, read from the file itself."""

from __future__ import annotations

import sys

import click

from imagen_core.cli.options import PlainHelp, echo_json


@click.command(cls=PlainHelp)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(files: tuple[str, ...], as_json: bool) -> None:
    """Show how each image was made: prompt, seed, model, size, and more.

    Reads imagen's own metadata, A1111's `parameters` (Civitai, Forge,
    most UIs), ComfyUI's graph, InvokeAI's and SwarmUI's metadata, and notes a
    C2PA manifest; an imagen sidecar (.json) works too. A file with none says
    so. Exit 1 when a file cannot be read.
    """
    from imagen_core.provenance.read import Unreadable, read_info

    found, failed = [], False
    for name in files:
        try:
            found.append(read_info(name))
        except Unreadable as exc:
            click.echo(f"imagen: {exc}", err=True)
            failed = True
    if as_json:
        echo_json([item.as_dict() for item in found])
    else:
        from imagen_core.terminal import info_report

        for item in found:
            click.echo(info_report(item))
    if failed:
        sys.exit(1)
