"""What is installed and configured: ``imagen backends``, ``imagen plugins``
and ``imagen version``."""

from __future__ import annotations

import sys

import click

from imagen_core._version import __version__
from imagen_core.cli.options import PlainHelp, common, echo_json, open_session


@click.command(cls=PlainHelp)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@common
def backends(as_json: bool, config_path: str | None) -> None:
    """List configured backend instances and the backend types plugins provide."""
    from imagen_core.terminal import backends_report

    session = open_session(config_path)
    report = backends_report(session.config, session.registry)
    if as_json:
        echo_json(report)
        return
    click.echo(f"default: {report['default']}")
    click.echo("instances:")
    for inst in report["instances"]:
        mark = "*" if inst["default"] else " "
        note = f"  ! {inst['problem']}" if inst["problem"] else ""
        where = f"  ({inst['where']})" if inst["where"] else ""
        click.echo(f" {mark} {inst['name']:<24} {inst['type']:<12}{where}{note}")
    click.echo("types:")
    for kind in report["types"]:
        click.echo(f"   {kind['name']:<24} {kind['plugin']}")


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
