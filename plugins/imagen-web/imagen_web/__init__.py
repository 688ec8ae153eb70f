"""imagen-web: ``imagen serve``, an HTTP API (``/v1``) and a web gallery (``/``).

Registering is cheap: this module and the command module import only click;
Starlette, uvicorn and the app are imported when ``imagen serve`` runs, so
``imagen --help`` does not pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def register_commands(cli: click.Group) -> None:
    from imagen_web.command import serve

    cli.add_command(serve)
