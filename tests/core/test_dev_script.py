"""`./dev demo` installs the core and the mock backend only, says so, and
generates; `./dev setup` (as `./dev test` runs it) installs everything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A stand-in venv: its python logs what it was asked to do, its imagen too.
FAKE = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
"""


def fake_venv(tmp_path: Path) -> tuple[Path, Path]:
    venv, log = tmp_path / "venv", tmp_path / "calls.log"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "imagen"):
        script = venv / "bin" / name
        script.write_text(FAKE.format(log=log))
        script.chmod(0o755)
    return venv, log


def dev(*args: str, venv: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IMAGEN_VENV": str(venv)}
    return subprocess.run(
        [str(ROOT / "dev"), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_demo_installs_only_the_core_and_the_mock_and_says_so(tmp_path):
    venv, log = fake_venv(tmp_path)
    done = dev("demo", "a fox", venv=venv)
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    installs = [c for c in calls if " -m pip install " in c]
    assert installs[-1].endswith("--no-build-isolation -e . -e plugins/imagen-mock")
    assert not any("[dev]" in c or "plugins/imagen-web" in c for c in installs)
    assert calls[-1] == "imagen generate a fox"
    assert "installing imagen-core and the imagen-mock backend" in done.stderr
    # Installed once: a second demo goes straight to the image.
    log.write_text("")
    assert dev("demo", venv=venv).returncode == 0
    assert log.read_text().splitlines() == [
        "imagen generate a lighthouse on a cliff at dusk, seen from the sea"
    ]


def test_setup_after_a_demo_installs_every_plugin_and_the_dev_tools(tmp_path):
    venv, log = fake_venv(tmp_path)
    assert dev("demo", venv=venv).returncode == 0
    log.write_text("")
    done = dev("setup", venv=venv)
    assert done.returncode == 0, done.stderr
    (install,) = log.read_text().splitlines()
    assert "-e .[dev]" in install
    plugins = sorted(p.name for p in (ROOT / "plugins").iterdir() if p.is_dir())
    assert all(f"-e plugins/{name}/" in install for name in plugins)
