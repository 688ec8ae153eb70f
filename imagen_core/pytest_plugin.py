"""Fixtures for testing imagen plugins (and code that uses imagen) with pytest.

Installed with imagen-core as a pytest plugin (entry point ``pytest11``): the
fixtures are there in any test suite once imagen-core is installed; nothing
runs unless a test asks for one. ``-p no:imagen`` turns them off.

- ``imagen_env``: imagen's config, data folder (ledger, job queue) and output
  folder inside the test's ``tmp_path``; no ``IMAGEN_*``, ``XDG_*``, ``MAI_*``
  or ``TMUX`` variables from the developer's shell, so nothing is previewed and
  nothing reaches ``~/.config``, ``~/.local/share/imagen`` or ``~/Pictures``.
  It is the isolated home folder.
- ``imagen_config``: writes ``imagen.yaml`` where imagen looks for it, and
  returns its path: ``imagen_config("backends:\\n  solid: {}\\n")``.
- ``imagen_plugins``: the plugins ``imagen_pm`` registers besides the
  built-ins; override it (``{"solid": imagen_solid}``, or a list) or mark a
  test ``@pytest.mark.imagen_plugins(imagen_solid)``.
- ``imagen_pm``: a fresh plugin manager with the built-ins and exactly those
  plugins (never the ones installed on the machine), made the process-wide
  one for the test, so ``Session()``, ``generate()`` and the CLI use it.
- ``imagen_cli``: runs the ``imagen`` command in-process, returns
  ``(exit code, stdout, stderr)``.

This module is imported by pytest at start: it imports nothing of imagen
until a fixture is used.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from imagen_core.plugins import ImagenPluginManager

#: What imagen reads from the environment: its own variables, the XDG folders,
#: tmux's (preview, caller) and MAI_FROM_ID (caller).
ENV_PREFIXES = ("IMAGEN_", "XDG_", "TMUX", "MAI_")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "imagen_plugins(*plugins): the plugins the imagen_pm fixture registers "
        "besides imagen's built-ins (modules or objects with hook implementations)",
    )


@pytest.fixture
def imagen_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated home folder: config, data and output of imagen all inside
    ``tmp_path``, no imagen or tmux variables from the shell. Returns the home."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    return home


@pytest.fixture
def imagen_config(imagen_env: Path) -> Callable[[str], Path]:
    """``write(text)``: write imagen.yaml where imagen finds it; returns its path."""

    def write(text: str) -> Path:
        path = imagen_env / ".config" / "imagen.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def imagen_plugins(request: pytest.FixtureRequest) -> dict[str, Any] | list[Any]:
    """The plugins for ``imagen_pm``: those of the ``imagen_plugins`` marker, or
    none. Override this fixture to give a suite's plugins once."""
    marker = request.node.get_closest_marker("imagen_plugins")
    return list(marker.args) if marker else []


@pytest.fixture
def imagen_pm(
    imagen_env: Path, imagen_plugins: dict[str, Any] | list[Any]
) -> Iterator[ImagenPluginManager]:
    """A plugin manager with imagen's built-ins and ``imagen_plugins`` only,
    process-wide for the duration of the test."""
    from imagen_core import plugins

    manager = plugins.create_plugin_manager(entry_points=False)
    named = (
        imagen_plugins.items()
        if isinstance(imagen_plugins, dict)
        else ((_name_of(plugin), plugin) for plugin in imagen_plugins)
    )
    for name, plugin in named:
        manager.register(plugin, name=name)
    plugins.reset_plugin_manager(manager)
    try:
        yield manager
    finally:
        plugins.reset_plugin_manager(None)


def _name_of(plugin: Any) -> str:
    """A module's last name (``imagen_solid``), else the object's class name."""
    name = getattr(plugin, "__name__", None)
    return str(name).rpartition(".")[2] if name else type(plugin).__name__


@pytest.fixture
def imagen_cli(
    imagen_pm: ImagenPluginManager, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """``run("generate", "a fox")``: the imagen command in-process, with the
    test's plugin manager; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        from imagen_core.cli import main

        capsys.readouterr()  # what came before is not this command's
        try:
            main([str(arg) for arg in args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        else:
            code = 0
        out, err = capsys.readouterr()
        return code, out, err

    return run
