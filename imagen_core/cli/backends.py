"""What is installed and configured: ``imagen backends``, ``imagen plugins``
and ``imagen version``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from imagen_core._version import __version__
from imagen_core.cli.options import PlainHelp, common, echo_json, open_session

if TYPE_CHECKING:
    from imagen_core.pipeline import Session


@click.command(cls=PlainHelp)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@common
def backends(as_json: bool, config_path: str | None) -> None:
    """List configured backend instances and the backend types plugins provide.

    Each instance shows what it accepts (text, how many input images, an
    img2img strength, an inpainting mask) and, where known, the price of one
    1024x1024 image.
    """
    from imagen_core.terminal import backends_report

    session = open_session(config_path)
    report = backends_report(session.config, session.registry)
    for inst in report["instances"]:
        if not inst["problem"]:
            inst.update(_abilities(session, inst["name"]))
    if as_json:
        echo_json(report)
        return
    click.echo(f"default: {report['default']}")
    click.echo("instances:")
    for inst in report["instances"]:
        mark = "*" if inst["default"] else " "
        problem = inst["problem"] or inst.get("unavailable")
        note = f"  ! {problem}" if problem else ""
        where = f"  ({inst['where']})" if inst["where"] else ""
        accepts = f"accepts {inst['accepts']}" if inst.get("accepts") else ""
        price = f" · {inst['price']}" if inst.get("price") else ""
        line = f" {mark} {inst['name']:<24} {inst['type']:<12} {accepts}{price}"
        click.echo(line.rstrip() + where + note)
    click.echo("types:")
    for kind in report["types"]:
        click.echo(f"   {kind['name']:<24} {kind['plugin']}")


def _abilities(session: Session, name: str) -> dict[str, Any]:
    """What ``name`` accepts and costs, from the backend itself; a backend that
    cannot start here (a missing token) says why instead."""
    from imagen_core.errors import ImagenError
    from imagen_core.models import Request, capabilities_of, estimate_of
    from imagen_core.terminal import format_cost

    try:
        _, built = session.backend(name)
        capabilities = capabilities_of(built)
        estimate = estimate_of(built, Request("price of one image", backend=name))
    except ImagenError as exc:
        return {"capabilities": None, "estimate": None, "unavailable": str(exc)}
    price = None
    if estimate.usd is not None:
        price = format_cost(estimate.usd) + ("" if estimate.usd == 0 else "/image")
    return {
        "capabilities": capabilities.as_dict(),
        "accepts": capabilities.summary(),
        "estimate": {"usd": estimate.usd, "basis": estimate.basis, "source": estimate.source},
        "price": price,
    }


@click.command(cls=PlainHelp)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List installed plugins, their versions and the hooks they implement.

    Each plugin's line also names the backend, sink and queue types it
    registers; plugins that failed to load come last, with the reason."""
    from imagen_core.cli import ImagenGroup
    from imagen_core.plugins import get_plugin_manager
    from imagen_core.terminal import plugins_report

    root = click.get_current_context().find_root().command
    if isinstance(root, ImagenGroup):
        root.add_plugin_commands()  # a failing register_commands shows as failed too
    report = plugins_report(get_plugin_manager())
    if as_json:
        echo_json(report)
        return
    for plugin in report["plugins"]:
        tag = " (built-in)" if plugin["builtin"] else ""
        click.echo(f"{plugin['distribution']} {plugin['version']}{tag}")
        click.echo(f"    name: {plugin['name']}  hooks: {', '.join(plugin['hooks']) or '-'}")
        types = [
            f"{kind} {', '.join(names)}" for kind, names in sorted(plugin["registers"].items())
        ]
        if types:
            click.echo(f"    registers: {'; '.join(types)}")
    for failed in report["failed"]:
        click.echo(f"{failed['distribution']} {failed['version']} (FAILED)")
        click.echo(f"    {failed['error']}")


@click.command(cls=PlainHelp)
def version() -> None:
    """Print imagen's version."""
    click.echo(f"imagen {__version__} (Python {sys.version.split()[0]})")
