"""``imagen supabase ...``: the commands this plugin adds to the command line."""

from __future__ import annotations

import click


@click.group()
def supabase() -> None:
    """Cloud sync to Supabase: the SQL it needs."""


@supabase.command("schema")
def schema_command() -> None:
    """Print the SQL that sets up a Supabase project for imagen.

    It creates the tables imagen.images and mai.imagen_usage, the storage bucket
    and the grants; it is safe to apply again. Paste it into the SQL editor, or:

    \b
      imagen supabase schema | psql "$DATABASE_URL" -v ON_ERROR_STOP=1
    """
    from importlib.resources import files

    click.echo(files("imagen_supabase").joinpath("supabase.sql").read_text("utf-8"), nl=False)
