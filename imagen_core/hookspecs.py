"""The plugin contract: every hook a plugin may implement.

Hooks are always called with keyword arguments, so a hookimpl may accept a subset
of the arguments, and new arguments can be added without breaking plugins.
docs/plugins.md documents each hook with the exact signature below (a test keeps
the two in step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    import click

    from imagen_core.config import Config
    from imagen_core.models import Request, Result
    from imagen_core.registry import RegisterBackend, RegisterQueue, RegisterSink

hookspec = pluggy.HookspecMarker("imagen")
hookimpl = pluggy.HookimplMarker("imagen")


@hookspec
def register_backends(register: RegisterBackend) -> None:
    """Register backend types: ``register("comfyui", ComfyUIBackend, config=ComfyUIConfig)``.

    ``ComfyUIBackend(config)`` is called with the structured config block of one
    configured instance and must return an object with
    ``generate(request, progress) -> Result``; it may also define
    ``capabilities() -> Capabilities`` (the input images it takes, checked before
    every call) and ``estimate(request) -> Estimate`` (the price before the spend).
    Keep the import of heavy libraries inside the backend's methods so that
    registering stays cheap."""


@hookspec
def register_sinks(register: RegisterSink) -> None:
    """Register sink types: ``register("ledger", LedgerSink, config=LedgerConfig)``.

    A sink receives every finished Generation (successful or failed) through
    ``send(generation)`` after the image and sidecar are on disk. Pass
    ``default=True`` to have an instance named after the type even when
    imagen.yaml does not list it, or ``default=function``: the function gets
    the Config and says whether to (a sink with nothing to do is then never
    imported)."""


@hookspec
def register_queues(register: RegisterQueue) -> None:
    """Register job-queue types for ``imagen submit``/``jobs``/``worker``:
    ``register("postgres", PostgresQueue, config=PostgresQueueConfig)``.

    The factory gets the structured ``queue:`` block and returns an object
    following ``imagen_core.queue.Queue``."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``imagen`` command line."""


@hookspec
def naming_fields(request: Request, result: Result) -> dict[str, Any] | None:
    """Return extra ``{placeholders}`` for ``output.naming``.

    Values are made path-safe before use. A later plugin's value replaces an
    earlier one for the same name."""


@hookspec(firstresult=True)
def preview(path: Path, request: Request, mode: str, config: Config) -> bool | None:
    """Show a finished image (or a compare contact sheet) to the person at the terminal.

    ``mode`` is ``"auto"`` or ``"on"`` (never called for ``"off"``): ``auto``
    means show it only where that makes sense (the built-in tmux preview: stdout
    is a terminal inside tmux); ``on`` means the person asked for it. Return True
    when the image was shown, None to let another plugin try. Raise an exception
    to report a failure: it is printed as one line and does not change the exit
    code. The built-in tmux preview runs last (``trylast``)."""
