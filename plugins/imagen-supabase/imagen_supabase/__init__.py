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


@hookimpl
def register_sinks(register: RegisterSink) -> None:
    from imagen_supabase.settings import SupabaseConfig
    from imagen_supabase.sink import SupabaseSink

    register("supabase", SupabaseSink, config=SupabaseConfig, default=True)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from imagen_supabase.commands import supabase

    cli.add_command(supabase)
