"""What a CLI start imports: `--version` loads no plugin, `--help` nothing heavy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("attrs", "cattrs", "ruamel", "PIL", "requests")

PROBE = """
import json, sys
from imagen_core.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted({m.partition(".")[0] for m in sys.modules})), file=sys.stderr)
"""


def imported(*args: str) -> set[str]:
    # Every installed plugin loads (no IMAGEN_LOAD_PLUGINS): none may import
    # anything heavy when imagen starts.
    env = {k: v for k, v in os.environ.items() if k != "IMAGEN_LOAD_PLUGINS"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, check=True
    )
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


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
    env = {**os.environ, "IMAGEN_LOAD_PLUGINS": "imagen-mock"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "generate", "x", "--size", "8x8", "--no-sidecar"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "locale" not in json.loads(proc.stderr.strip().splitlines()[-1])
