"""What a CLI start imports: `--version` loads no plugin, `--help` nothing heavy."""

from __future__ import annotations

import pytest

from tests.helpers import cli_imports

HEAVY = ("attrs", "cattrs", "ruamel", "PIL", "requests")


def imported(*args: str) -> set[str]:
    # Every installed plugin loads (no IMAGEN_LOAD_PLUGINS): none may import
    # anything heavy when imagen starts.
    return cli_imports(*args, plugins=None)[0]


def test_version_loads_no_plugin_and_no_plugin_machinery():
    modules = imported("--version")
    assert "pluggy" not in modules
    assert "imagen_mock" not in modules
    assert not modules & set(HEAVY)


@pytest.mark.parametrize("args", [("--help",), ("generate", "--help"), ("config", "--help")])
def test_help_loads_plugins_but_nothing_heavy(args):
    modules = imported(*args)
    assert "imagen_mock" in modules or args != ("--help",)
    assert not modules & set(HEAVY), modules & set(HEAVY)


def test_version_never_reaches_for_gettext_and_locale():
    # click translates its default --help/--version option texts with gettext,
    # which imports locale (~1.4 ms of a ~40 ms budget): imagen gives those
    # texts itself. (Rendering a help page does translate its headings.)
    assert "locale" not in imported("--version")


def test_a_generation_never_imports_locale(isolated_env):
    args = ("generate", "x", "--size", "8x8", "--no-sidecar")
    assert "locale" not in cli_imports(*args, plugins="imagen-mock")[0]


SHARED = {"imagen_core.cli.entry", "imagen_core.cli.options"}


def cli_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith("imagen_core.cli.")}


@pytest.mark.parametrize("args", [("--version",), ("--help",)])
def test_version_and_help_import_no_command_module(args):
    # `imagen --help` lists the built-in commands from the table in imagen_core.cli.
    assert cli_modules(imported(*args)) == SHARED


def test_a_command_imports_its_own_module_only(isolated_env):
    args = ("generate", "x", "--size", "8x8", "--no-sidecar")
    modules = cli_imports(*args, plugins="imagen-mock")[0]
    assert cli_modules(modules) == SHARED | {"imagen_core.cli.generate"}
    assert cli_modules(imported("config", "path")) == SHARED | {"imagen_core.cli.config"}
