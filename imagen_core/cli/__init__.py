"""The ``imagen`` command line: parse, call the library, print.

One module per command or family of commands; ``COMMANDS`` below names each
built-in command's module, which is imported only when that command runs
(``imagen --help`` lists them from the table). Only click is imported at start;
each command imports what it needs when it runs, and plugins (which may add
commands) load only when a command or the full ``--help`` needs them.
``imagen --version`` loads no plugin at all.

A new built-in command: a module of its own here and one row in ``COMMANDS``
(tests/core/test_cli.py checks the row against the command).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NamedTuple

import click

from imagen_core.cli.entry import main
from imagen_core.cli.options import PlainHelpGroup, common, show_version

__all__ = ["COMMANDS", "Builtin", "ImagenGroup", "cli", "common", "main"]


class Builtin(NamedTuple):
    """Where a built-in command lives, and the line `imagen --help` shows for it."""

    module: str  # under imagen_core.cli
    attribute: str
    short_help: str  # the first paragraph of the command's help


COMMANDS: dict[str, Builtin] = {
    "generate": Builtin(
        "generate",
        "generate",
        'Generate one image from PROMPT (several words are joined; "-" reads stdin).',
    ),
    "compare": Builtin(
        "compare",
        "compare",
        "Run one PROMPT on several backends; write each image and a contact sheet.",
    ),
    "info": Builtin(
        "info", "info", "Show how each image was made: prompt, seed, model, size, and more."
    ),
    "again": Builtin(
        "again", "again", "Run the generation recorded in an image (or its sidecar) again."
    ),
    "usage": Builtin(
        "usage",
        "usage",
        "Show what was generated and what it cost, by ISO week, backend, model and caller.",
    ),
    "submit": Builtin(
        "jobs", "submit", "Queue a generation for `imagen worker`; print the job id."
    ),
    "jobs": Builtin(
        "jobs",
        "jobs",
        "List queued and recent jobs, newest first (see also: jobs show, jobs cancel).",
    ),
    "worker": Builtin(
        "jobs", "worker", "Run queued jobs through the same pipeline as `imagen generate`."
    ),
    "queue": Builtin("jobs", "queue_group", "Set up the job queue."),
    "backends": Builtin(
        "backends",
        "backends",
        "List configured backend instances and the backend types plugins provide.",
    ),
    "plugins": Builtin(
        "backends",
        "plugins",
        "List installed plugins, their versions and the hooks they implement.",
    ),
    "version": Builtin("backends", "version", "Print imagen's version."),
    "config": Builtin("config", "config", "Create, check and locate imagen.yaml."),
}

# Commands of first-party plugins, and the distribution each comes with.
PLUGIN_COMMANDS = {
    "serve": "imagen-web",
    "comfyui": "imagen-comfyui",
    "supabase": "imagen-supabase",
}


class ImagenGroup(PlainHelpGroup):
    """The ``imagen`` group: built-in commands imported from ``COMMANDS`` when
    asked for, plugin commands (``register_commands``) added on first need."""

    _plugins_from: object = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, click.Command] = {}

    def _builtin(self, name: str) -> click.Command | None:
        where = COMMANDS.get(name)
        if where is None:
            return None
        command = self._loaded.get(name)
        if command is None:
            module = importlib.import_module(f"imagen_core.cli.{where.module}")
            command = getattr(module, where.attribute)
            assert isinstance(command, click.Command)
            self._loaded[name] = command
        return command

    def add_plugin_commands(self) -> None:
        """Ask the plugins for their commands (once per plugin manager)."""
        from imagen_core.plugins import get_plugin_manager

        pm = get_plugin_manager()
        key = (id(pm), frozenset(map(id, pm.get_plugins())))
        if self._plugins_from == key:
            return
        self.commands = {}  # drop those of a previous manager
        self._plugins_from = key
        for impl in pm.hook.register_commands.get_hookimpls():
            before = set(self.commands)

            def purge(before: set[str] = before) -> None:
                for name in set(self.commands) - before:
                    del self.commands[name]

            # A plugin whose hook raises is skipped, reported once; the rest work.
            pm.call_contained("register_commands", impl.plugin, purge, cli=self)
        for name in COMMANDS:
            if name in self.commands:
                del self.commands[name]
                sys.stderr.write(f"imagen: a plugin tried to replace `imagen {name}`; ignored\n")

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        builtin = self._builtin(cmd_name)
        if builtin is not None:
            return builtin
        if cmd_name not in self.commands:
            self.add_plugin_commands()
        command = super().get_command(ctx, cmd_name)
        dist = PLUGIN_COMMANDS.get(cmd_name)
        if command is None and dist is not None and not ctx.resilient_parsing:
            # click's "No such command" would leave the person guessing what to install.
            raise click.UsageError(
                f"`imagen {cmd_name}` comes with the {dist} plugin: pip install {dist}", ctx
            )
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.add_plugin_commands()
        return sorted(COMMANDS.keys() | self.commands.keys())

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, with each built-in command's line taken from
        ``COMMANDS`` instead of importing its module."""
        commands: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            if name in COMMANDS:
                # click shortens a command's help the same way for the listing.
                command: click.Command | None = click.Command(name, help=COMMANDS[name].short_help)
            else:
                command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                commands.append((name, command))
        if commands:
            from gettext import gettext as _

            limit = formatter.width - 6 - max(len(name) for name, _command in commands)
            rows = [(name, command.get_short_help_str(limit)) for name, command in commands]
            with formatter.section(_("Commands")):
                formatter.write_dl(rows)


@click.group(cls=ImagenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    "-V",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    help="Show the version and exit.",
    callback=show_version,
)
def cli() -> None:
    """Generate images from a prompt through pluggable backends.

    \b
    Quick start:
      imagen generate "a lighthouse at dusk"      # mock backend, no setup
      imagen config init > ~/.config/imagen.yaml  # then add real backends
      imagen backends                             # what is configured

    Exit codes: 0 done, 1 generation failed, 2 usage or config error, 130 interrupted.
    Docs: docs/usage.md, docs/config.md, docs/plugins.md.
    """
