"""``imagen config init|validate|path``: create, check and locate imagen.yaml."""

from __future__ import annotations

import click

from imagen_core.cli.options import PlainHelpGroup, common


@click.group(cls=PlainHelpGroup)
def config() -> None:
    """Create, check and locate imagen.yaml."""


@config.command("init")
def config_init() -> None:
    """Print a commented sample imagen.yaml (every key explained) on stdout.

    \b
    imagen config init > ~/.config/imagen.yaml
    """
    from imagen_core.config_sample import sample
    from imagen_core.plugins import get_plugin_manager
    from imagen_core.registry import collect

    click.echo(sample(collect(get_plugin_manager())), nl=False)


@config.command("validate")
@common
def config_validate(config_path: str | None) -> None:
    """Check the config; exit 0 when it is valid, 1 with the list of problems."""
    from imagen_core.config import load, locate
    from imagen_core.errors import ConfigError
    from imagen_core.plugins import get_plugin_manager
    from imagen_core.registry import collect

    located = locate(config_path)
    pm = get_plugin_manager()
    try:
        loaded = load(collect(pm), config_path, strict=True)
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(f"imagen: {line}", err=True)
        click.echo(f"{located.path}: {len(exc.problems)} problem(s)", err=True)
        raise SystemExit(1) from None
    from imagen_core.config import did_you_mean
    from imagen_core.naming import known_placeholders, unknown_placeholders

    known = known_placeholders(pm)
    for name in unknown_placeholders(loaded.output.naming, known):
        hint = did_you_mean(name, known)
        click.echo(
            f"imagen: warning: output.naming: unknown placeholder {{{name}}}{hint} stays as it "
            f"is in file names; known: {', '.join(known)}",
            err=True,
        )
    if located.exists:
        click.echo(f"{located.path}: ok")
    else:
        click.echo(f"{located.path}: not found; the built-in defaults are valid")


@config.command("path")
@common
def config_path_cmd(config_path: str | None) -> None:
    """Print the config path in use and whether the file exists.

    A file named by --config or $IMAGEN_CONFIG that does not exist is an error
    (exit 2), as for every other command."""
    from imagen_core.config import locate

    located = locate(config_path)
    located.check()
    click.echo(str(located.path))
    if located.exists:
        click.echo(f"exists (chosen by {located.source})")
    else:
        click.echo(
            f"does not exist (chosen by {located.source}); built-in defaults are in use; "
            f"create it with: imagen config init > {located.path}"
        )
