"""imagen-supabase: cloud sync to Supabase, and its usage rows as a usage source.

One sink type, ``supabase``, on by default once SUPABASE_URL or a key is in the
environment or cloud sync is ``on``; otherwise it would have nothing to do, and
is neither imported nor built. Registering is cheap: ``requests`` and the sink's
modules are imported only when something is sent or read. ``imagen supabase
schema`` prints the SQL a project needs (shipped in the package).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from imagen_core import hookimpl

if TYPE_CHECKING:
    import click

    from imagen_core.config import Config
    from imagen_core.registry import RegisterSink
    from imagen_supabase.settings import SupabaseConfig
    from imagen_supabase.sink import SupabaseSink


# The environment variables of the credentials (read by imagen_supabase.credentials),
# here so that whether anything is set is known without importing the sink.
URL_VAR = "SUPABASE_URL"
# The first one set wins. MAI_SUPABASE_KEY is the name the mAi tools already use.
KEY_VARS = ("SUPABASE_SERVICE_KEY", "MAI_SUPABASE_KEY")


def _wanted(config: Config) -> bool:
    """Build the sink without a block in imagen.yaml only when it has something to
    do or to say: a credential variable is set (even half of them: that is
    warned about), or cloud sync is ``on`` (which fails without them)."""
    from imagen_core.pipeline import resolve_mode

    if resolve_mode(config.output.cloud_sync, "IMAGEN_CLOUD_SYNC", None) == "on":
        return True
    return credential_variable_set()


def credential_variable_set() -> bool:
    """Whether any credential variable has a value (blank counts as unset), seen
    without importing the credentials' module."""
    return any(os.environ.get(name, "").strip() for name in (URL_VAR, *KEY_VARS))


def _sink(config: SupabaseConfig) -> SupabaseSink:
    from imagen_supabase.sink import SupabaseSink

    return SupabaseSink(config)


def _config() -> type[SupabaseConfig]:
    from imagen_supabase.settings import SupabaseConfig

    return SupabaseConfig


@hookimpl
def register_sinks(register: RegisterSink) -> None:
    # Both imported when a command uses sinks: `imagen jobs` and `imagen usage` never do.
    register("supabase", _sink, config=_config, default=_wanted)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from imagen_supabase.commands import supabase

    cli.add_command(supabase)
