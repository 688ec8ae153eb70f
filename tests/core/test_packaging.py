"""`pip install imagen-core imagen-mock` works: wheels built from this tree,
installed into a fresh virtual environment (no editable install, no source tree
on the path), then `imagen generate` run there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from imagen_core import __version__
from tests.helpers import build_wheels

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = [
    ROOT,
    *sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists()),
]
EXAMPLE = ROOT / "docs" / "examples" / "imagen-solid"

pytestmark = pytest.mark.slow
tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def sh(*args: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    projects = list(DISTRIBUTIONS)  # imagen-core and every plugin of this repo
    if EXAMPLE.exists():
        projects.append(EXAMPLE)
    build_wheels(out, *projects)
    return {w.name.split("-")[0]: w for w in out.glob("*.whl")}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, wheels) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "env"
    sh(sys.executable, "-m", "venv", venv)
    sh(venv / "bin" / "python", "-m", "pip", "install", "-q", *wheels.values())
    return venv


def clean_env(home: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "SYSTEMROOT")}
    return {**keep, "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}


def metadata(wheel: Path) -> tuple[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        info = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        eps = next((n for n in archive.namelist() if n.endswith("entry_points.txt")), None)
        return archive.read(info).decode(), archive.read(eps).decode() if eps else ""


def test_wheel_metadata(wheels):
    core_meta, core_eps = metadata(wheels["imagen_core"])
    assert "Name: imagen-core" in core_meta and f"Version: {__version__}" in core_meta
    assert "Requires-Python: >=3.10" in core_meta
    requires = {
        re.split(r"[<>=!;\s\[]", line.removeprefix("Requires-Dist: "))[0].lower().replace(".", "-")
        for line in core_meta.splitlines()
        if line.startswith("Requires-Dist: ") and "extra ==" not in line
    }
    assert requires == {"pluggy", "attrs", "cattrs", "ruamel-yaml", "click", "pillow", "requests"}
    assert "[console_scripts]\nimagen = imagen_core.console:main" in core_eps
    mock_meta, mock_eps = metadata(wheels["imagen_mock"])
    assert f"Requires-Dist: imagen-core=={__version__}" in mock_meta
    assert "[imagen]\nmock = imagen_mock" in mock_eps
    with zipfile.ZipFile(wheels["imagen_core"]) as archive:
        names = archive.namelist()
    assert "imagen_core/hookspecs.py" in names and "imagen_core/builtins/naming.py" in names
    assert not [n for n in names if n.startswith("tests/")]


def test_versions_move_in_lockstep():
    for project in DISTRIBUTIONS:
        data = tomllib.loads((project / "pyproject.toml").read_text())["project"]
        assert data.get("version", __version__) == __version__, project
        for dep in data.get("dependencies", []):
            if dep.startswith("imagen-core"):
                assert dep == f"imagen-core=={__version__}", project


def test_generate_in_a_fresh_environment(fresh, tmp_path):
    env = clean_env(tmp_path)
    where = sh(
        fresh / "bin" / "python",
        "-c",
        "import imagen_core, imagen_mock; print(imagen_core.__file__, imagen_mock.__file__)",
        env=env,
        cwd=tmp_path,
    )
    assert str(ROOT) not in where.stdout and str(fresh) in where.stdout
    proc = sh(
        fresh / "bin" / "imagen",
        "generate",
        "a lighthouse at dusk",
        "--seed",
        "7",
        env=env,
        cwd=tmp_path,
    )
    path = Path(proc.stdout.strip())
    assert path.is_file() and path.is_relative_to(tmp_path / "Pictures" / "imagen")
    assert path.read_bytes().startswith(b"\x89PNG")
    assert path.with_suffix(".json").is_file()
    assert proc.stderr == ""


@pytest.mark.skipif(not EXAMPLE.exists(), reason="tutorial example not written yet")
def test_tutorial_plugin_installs_and_generates(fresh, tmp_path):
    env = clean_env(tmp_path)
    plugins = sh(fresh / "bin" / "imagen", "plugins", env=env, cwd=tmp_path).stdout
    assert "imagen-solid 0.1.0" in plugins and "register_backends" in plugins
    config = tmp_path / "imagen.yaml"
    config.write_text("backends:\n  teal:\n    type: solid\n    color: '#008080'\n")
    out = sh(
        fresh / "bin" / "imagen",
        "generate",
        "anything",
        "--backend",
        "teal",
        "--size",
        "64x48",
        "--config",
        config,
        env=env,
        cwd=tmp_path,
    ).stdout
    from PIL import Image

    with Image.open(out.strip()) as image:
        assert image.size == (64, 48)
        assert image.convert("RGB").getpixel((10, 10)) == (0, 128, 128)
    # The tutorial's own tests, run the way its README says, against the installed plugin.
    sh(fresh / "bin" / "python", "-m", "pip", "install", "-q", "pytest", env=env)
    sh(
        fresh / "bin" / "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        EXAMPLE / "tests",
        env=env,
        cwd=tmp_path,
    )


def test_every_plugin_installs_with_its_data(fresh, tmp_path):
    env = clean_env(tmp_path)
    plugins = sh(fresh / "bin" / "imagen", "plugins", env=env, cwd=tmp_path).stdout
    for dist in (
        "imagen-comfyui",
        "imagen-replicate",
        "imagen-fal",
        "imagen-openai",
        "imagen-supabase",
        "imagen-mock",
        "imagen-web",
        "imagen-mcp",
    ):
        assert f"{dist} {__version__}" in plugins, plugins
    assert "FAILED" not in plugins
    mcp_help = sh(fresh / "bin" / "imagen", "mcp", "--help", env=env, cwd=tmp_path).stdout
    assert "generate_image" in mcp_help
    # Package data: the bundled workflows and the price table come from the wheels.
    workflows = sh(fresh / "bin" / "imagen", "comfyui", "workflows", env=env, cwd=tmp_path).stdout
    assert {"flux1-schnell", "flux2-klein", "sd35-medium"} <= {
        line.split()[0] for line in workflows.splitlines() if line and not line.startswith(" ")
    }
    sample = sh(fresh / "bin" / "imagen", "config", "init", env=env, cwd=tmp_path).stdout
    (tmp_path / "imagen.yaml").write_text(sample)
    assert "flux-schnell-local" in sample and "flux-dev-replicate" in sample
    sh(
        fresh / "bin" / "imagen",
        "config",
        "validate",
        "--config",
        tmp_path / "imagen.yaml",
        env=env,
        cwd=tmp_path,
    )


def test_the_web_wheel_ships_the_gallery(wheels, fresh, tmp_path):
    with zipfile.ZipFile(wheels["imagen_web"]) as archive:
        names = set(archive.namelist())
    for asset in ("index.html", "app.js", "style.css"):
        assert f"imagen_web/static/{asset}" in names
    env = clean_env(tmp_path)
    help_text = sh(fresh / "bin" / "imagen", "serve", "--help", env=env, cwd=tmp_path).stdout
    assert "--addr HOST:PORT" in help_text
    # The installed server serves the page from inside the installed package.
    proc = subprocess.Popen(
        [fresh / "bin" / "imagen", "serve", "--addr", "127.0.0.1:0"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = proc.stderr.readline()
        match = re.search(r"imagen serve: (http://\S+)", banner)
        assert match, banner
        import urllib.request

        with urllib.request.urlopen(match.group(1), timeout=10) as page:
            assert page.status == 200 and b"/static/app.js" in page.read()
        with urllib.request.urlopen(match.group(1) + "static/app.js", timeout=10) as script:
            assert b"/v1/images" in script.read()
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_supabase_wheel_ships_its_sql(wheels, fresh, tmp_path):
    with zipfile.ZipFile(wheels["imagen_supabase"]) as archive:
        assert "imagen_supabase/supabase.sql" in archive.namelist()
    env = clean_env(tmp_path)
    sql = sh(fresh / "bin" / "imagen", "supabase", "schema", env=env, cwd=tmp_path).stdout
    assert "create table if not exists imagen.images" in sql


# A cloud backend's wheel beside imagen-core's alone: the example `imagen config
# init` shows, and a probe of its data files (families, prices) with what it prints.
ALONE = {
    "imagen-fal": (
        "  flux-schnell-fal:\n    type: fal\n",
        "from imagen_core import Request; from imagen_fal.backend import FalBackend; "
        "from imagen_fal.config import FalConfig; "
        "b = FalBackend(FalConfig(model='fal-ai/nano-banana')); "
        "print(b.capabilities().summary(), b.estimate(Request('x')).usd)",
        "text, 10 images 0.039",
    ),
    "imagen-replicate": (
        "  flux-schnell-replicate:\n    type: replicate\n",
        "from imagen_replicate.pricing import table; "
        "print(table().prices['black-forest-labs/flux-schnell'].usd_per_image)",
        "0.003",
    ),
    "imagen-openai": (
        "  gpt-image:\n    type: openai\n",
        "from imagen_core import Request; from imagen_openai.backend import OpenAIBackend; "
        "from imagen_openai.config import OpenAIConfig; "
        "b = OpenAIBackend(OpenAIConfig(model='dall-e-2')); "
        "print(b.capabilities().summary(), b.estimate(Request('x', width=512, height=512)).usd)",
        "text, 1 image, mask 0.018",
    ),
}


@pytest.mark.parametrize("dist", sorted(ALONE))
def test_a_cloud_backend_wheel_installs_alone_beside_the_core(
    wheels, tmp_path_factory, tmp_path, dist
):
    # Only imagen-core and the plugin (and their PyPI dependencies): the plugin
    # needs no other plugin, and its data files come from its own wheel.
    example, probe, printed = ALONE[dist]
    venv = tmp_path_factory.mktemp("alone") / "env"
    sh(sys.executable, "-m", "venv", venv)
    sh(
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "-q",
        wheels["imagen_core"],
        wheels[dist.replace("-", "_")],
    )
    env = clean_env(tmp_path)
    listed = sh(venv / "bin" / "python", "-m", "pip", "list", "--format=freeze", env=env).stdout
    assert {line.split("==")[0] for line in listed.splitlines() if line.startswith("imagen")} == {
        "imagen-core",
        dist,
    }
    plugins = sh(venv / "bin" / "imagen", "plugins", env=env, cwd=tmp_path).stdout
    assert f"{dist} {__version__}" in plugins and "FAILED" not in plugins
    sample = sh(venv / "bin" / "imagen", "config", "init", env=env, cwd=tmp_path).stdout
    assert example in sample
    (tmp_path / "imagen.yaml").write_text(sample)
    sh(
        venv / "bin" / "imagen",
        "config",
        "validate",
        "--config",
        tmp_path / "imagen.yaml",
        env=env,
        cwd=tmp_path,
    )
    out = sh(venv / "bin" / "python", "-c", probe, env=env, cwd=tmp_path).stdout
    assert out.strip() == printed
