"""The imagen-comfyui wheel carries the workflow templates and their data, and
declares what the plugin imports."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from imagen_comfyui.bundled import bundled_names
from tests.helpers import build_wheels

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_the_wheel_has_the_workflows_and_the_entry_point(tmp_path):
    project = ROOT / "plugins" / "imagen-comfyui"
    build_wheels(tmp_path, project)
    (wheel,) = tmp_path.glob("imagen_comfyui-0.1.0-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = archive.read("imagen_comfyui-0.1.0.dist-info/METADATA").decode()
        entry_points = archive.read("imagen_comfyui-0.1.0.dist-info/entry_points.txt").decode()
    for name in bundled_names():
        assert f"imagen_comfyui/workflows/{name}.json" in names
        assert f"imagen_comfyui/workflows/{name}.meta.json" in names
    assert "imagen_comfyui/py.typed" in names
    assert not [n for n in names if n.startswith("tests/")]
    assert "[imagen]\ncomfyui = imagen_comfyui" in entry_points
    for requirement in ("imagen-core==0.1.0", "requests>=2.31", "websocket-client>=1.6"):
        assert f"Requires-Dist: {requirement}\n" in meta
    assert "Requires-Python: >=3.10" in meta
