"""imagen-core's pytest plugin (imagen_core/pytest_plugin.py), run as a plugin
author's suite runs it: in a pytest of its own, from a folder outside this repo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SUITE = '''
import pytest

from imagen_core import Request, Session, hookimpl
from imagen_core.plugins import get_plugin_manager


class Stamp:
    """A plugin under test: a naming field."""

    @hookimpl
    def naming_fields(self, request):
        return {"stamp": "s1"}


@pytest.fixture
def imagen_plugins():
    return [Stamp()]


def test_generation_stays_in_the_temporary_home(imagen_pm, imagen_config, imagen_env):
    import imagen_mock

    imagen_pm.register(imagen_mock, name="mock")
    imagen_config("output:\\n  naming: '{stamp}-{slug}.{ext}'\\n")
    record = Session().generate(Request("a fox", width=8, height=8))
    assert record.path == imagen_env / "Pictures" / "imagen" / "s1-a-fox.png"
    assert (imagen_env / ".local" / "share" / "imagen" / "usage.db").is_file()
    assert get_plugin_manager() is imagen_pm
    assert imagen_pm.has_plugin("Stamp") and not imagen_pm.has_plugin("comfyui")


def test_the_shell_does_not_reach_the_test(imagen_env):
    import os

    assert "IMAGEN_CONFIG" not in os.environ and "TMUX" not in os.environ
    assert os.environ["HOME"] == str(imagen_env)


def test_the_command_line(imagen_cli, imagen_env):
    code, out, err = imagen_cli("config", "path")
    assert code == 0 and out.splitlines()[0] == str(imagen_env / ".config" / "imagen.yaml")
'''

MARKED = """
import pytest

import imagen_mock


@pytest.mark.imagen_plugins(imagen_mock)
def test_the_marker_gives_the_plugins(imagen_pm):
    assert sorted(name for name, _ in imagen_pm.list_name_plugin()) == [
        "imagen_mock", "ledger", "naming", "sqlite_queue", "tmux_preview"
    ]


def test_no_marker_no_plugins(imagen_pm):
    assert not imagen_pm.has_plugin("imagen_mock")
"""


def test_the_fixtures_isolate_a_plugin_authors_suite(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_plugin.py").write_text(SUITE)
    (suite / "test_marked.py").write_text(MARKED)
    real_home = tmp_path / "real-home"
    real_home.mkdir()
    env = {
        **os.environ,
        "HOME": str(real_home),
        "XDG_DATA_HOME": str(real_home / "data"),
        "IMAGEN_CONFIG": str(real_home / "imagen.yaml"),  # would break any command
        "TMUX": "/tmp/tmux-0/default,1,0",
    }
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed" in proc.stdout
    assert not any(Path(real_home).rglob("*"))  # nothing reached the real home
