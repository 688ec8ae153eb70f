"""``imagen comfyui ...``: the commands this plugin adds to the command line.

Only click is imported here; the workflow module loads when a command runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from imagen_comfyui.workflows import Workflow


@click.group()
def comfyui() -> None:
    """The ComfyUI backend: its bundled workflows."""


@comfyui.command("workflows")
@click.argument("paths", nargs=-1, metavar="[WORKFLOW.json]...")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def workflows_command(paths: tuple[str, ...], as_json: bool) -> None:
    """List the bundled workflows with their inputs, placeholders, defaults and model files.

    Give the paths of your own API-format workflows to check them the same way:
    each is parsed and its placeholders are listed (or the problem is named).
    Every file is checked; the exit code is 2 when any of them has a problem.
    """
    from imagen_comfyui import workflows
    from imagen_comfyui.bundled import bundled_names
    from imagen_core.errors import ImagenError

    loaded = []
    failed = 0
    for spec in paths or bundled_names():
        try:
            loaded.append(workflows.load(spec))
        except ImagenError as exc:
            failed += 1
            click.echo(f"imagen: {exc}", err=True)
    if as_json:
        import json

        click.echo(json.dumps([_report(w) for w in loaded], indent=2))
    else:
        for index, workflow in enumerate(loaded):
            if index:
                click.echo()
            for line in _lines(workflow):
                click.echo(line)
    if failed:
        raise SystemExit(2)


def _report(workflow: Workflow) -> dict[str, Any]:
    from imagen_comfyui.placeholders import type_of

    capabilities = workflow.capabilities()
    return {
        "name": workflow.name,
        "source": workflow.source,
        "model": workflow.model,
        "description": workflow.meta.description,
        "capabilities": capabilities.as_dict(),
        "inputs": _inputs(workflow),
        "placeholders": [
            {
                "name": p.name,
                "type": kind.__name__ if (kind := type_of(p.name)) else None,
                "node": p.node,
                "class_type": p.class_type,
                "input": p.input,
            }
            for p in workflow.placeholders
        ],
        "defaults": workflow.meta.defaults,
        "size_multiple": workflow.meta.size_multiple,
        "output_nodes": list(workflow.output_nodes),
        "files": [
            {"repository": f.repository, "path": f.path, "folder": f.folder, "url": f.url}
            for f in workflow.meta.files
        ],
    }


def _inputs(workflow: Workflow) -> list[str]:
    """What the workflow takes besides the prompt, one phrase each."""
    ordinals = ("first", "second", "third")
    found = [
        f"${{{name}}}: the {ordinals[index] if index < 3 else f'{index + 1}th'} --image"
        for index, name in enumerate(workflow.image_names)
    ]
    if workflow.has_mask:
        found.append("${mask}: the mask, white = repaint (--mask)")
    if workflow.capabilities().strength:
        found.append("${denoise}: --strength")
    return found


def _lines(workflow: Workflow) -> list[str]:
    import textwrap

    from imagen_comfyui.placeholders import is_builtin

    meta = workflow.meta
    where = "" if workflow.source == "bundled" else f"  ({workflow.source})"
    lines = [f"{workflow.name}  {workflow.model}{where}"]
    if meta.description:
        lines += textwrap.wrap(
            meta.description, 88, initial_indent="    ", subsequent_indent="    "
        )

    def row(label: str, text: str) -> None:
        lines.append(f"    {label:<13} {text}")

    inputs = _inputs(workflow)
    row("inputs", "; ".join(inputs) if inputs else "none: text to image")
    row(
        "placeholders",
        " ".join(
            f"${{{name}}}" + ("" if is_builtin(name) else " (vars)") for name in workflow.names
        )
        or "none",
    )
    row("defaults", " ".join(f"{k}={v!r}" for k, v in meta.defaults.items()) or "none")
    if meta.size_multiple > 1:
        row("sizes", f"width and height in multiples of {meta.size_multiple}")
    row("output", ", ".join(f"node {n}" for n in workflow.output_nodes))
    from imagen_comfyui.workflows import missing_placeholders

    for index, problem in enumerate(missing_placeholders(workflow.names)):
        row("warning" if index == 0 else "", problem)
    for index, model_file in enumerate(meta.files):
        row(
            "files" if index == 0 else "",
            f"models/{model_file.folder}/{model_file.name}  "
            f"from huggingface.co/{model_file.repository}",
        )
    return lines
