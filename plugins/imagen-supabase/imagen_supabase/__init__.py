"""imagen-supabase: cloud sync to Supabase, and its usage rows as a usage source.

One sink type, ``supabase``, on by default and inert until SUPABASE_URL and a
key are in the environment. Registering is cheap: ``requests`` and the sink's
modules are imported only when something is sent or read. ``imagen supabase
schema`` prints the SQL a project needs (shipped in the package).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core import hookimpl

if TYPE_CHECKING:
    import click

    from imagen_core.registry import RegisterSink
    from imagen_supabase.settings import SupabaseConfig
    from imagen_supabase.sink import SupabaseSink


def _sink(config: SupabaseConfig) -> SupabaseSink:
    from imagen_supabase.sink import SupabaseSink

    return SupabaseSink(config)


def _config() -> type[SupabaseConfig]:
    from imagen_supabase.settings import SupabaseConfig

    return SupabaseConfig


@hookimpl
def register_sinks(register: RegisterSink) -> None:
    # Both imported when a command uses sinks: `imagen jobs` and `imagen usage` never do.
    register("supabase", _sink, config=_config, default=True)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from imagen_supabase.commands import supabase

    cli.add_command(supabase)
