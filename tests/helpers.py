"""Helpers shared by the tests."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from imagen_core.plugins import ImagenPluginManager


@contextlib.contextmanager
def registered(manager: ImagenPluginManager, plugin: object, name: str) -> Iterator[None]:
    """Register ``plugin`` for the duration of a block (the datasette pattern)."""
    manager.register(plugin, name=name)
    try:
        yield
    finally:
        manager.unregister(name=name)


def write_config(home: Path, text: str) -> Path:
    path = home / ".config" / "imagen.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_dist(site: Path, dist: str, module: str, source: str, version: str = "1.2.3") -> None:
    """A minimal installed distribution in ``site`` with an ``imagen`` entry point,
    found by importlib.metadata exactly like a pip-installed plugin."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[imagen]\n{module} = {module}\n")


_CLI_IMPORTS = """
import json, sys
from imagen_core.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
commands = {m for m in sys.modules if m.startswith("imagen_core.cli.")}
print(json.dumps(sorted({m.partition(".")[0] for m in sys.modules} | commands)), file=sys.stderr)
"""


def cli_imports(*args: str, plugins: str | None) -> tuple[set[str], str]:
    """Run ``imagen ARGS`` in a fresh interpreter: the top-level modules it
    imported (and the modules of imagen_core.cli it imported, by their full
    names: one per command), and what it printed. ``plugins`` is IMAGEN_LOAD_PLUGINS (None:
    every installed plugin loads)."""
    env = {k: v for k, v in os.environ.items() if k != "IMAGEN_LOAD_PLUGINS"}
    if plugins is not None:
        env["IMAGEN_LOAD_PLUGINS"] = plugins
    proc = subprocess.run(
        [sys.executable, "-c", _CLI_IMPORTS, *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return set(json.loads(proc.stderr.strip().splitlines()[-1])), proc.stdout


def build_wheels(out: Path, *projects: Path) -> None:
    """``pip wheel`` each project into ``out`` as the tests install them:
    without dependencies or build isolation (no network needed)."""
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    proc = subprocess.run(
        [*pip, "-w", str(out), *map(str, projects)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}"


def idat(data: bytes) -> bytes:
    """A PNG's encoded pixels (its IDAT chunks): equal for the same image, whatever
    metadata chunks (time, latency) the files carry beside them."""
    from imagen_core.provenance.png import chunks

    return b"".join(body for kind, body, _s, _e in chunks(data) if kind == b"IDAT")


def without_provenance(data: bytes) -> bytes:
    """An image file without what imagen writes into it (the ``parameters`` and
    ``imagen`` PNG chunks, a JPEG's EXIF segment): what a backend served, byte for
    byte, when imagen changed nothing else."""
    from imagen_core.provenance import jpeg, png

    if data[:8] == png.SIGNATURE:
        kept = [png.SIGNATURE]
        for kind, body, start, end in png.chunks(data):
            keyword = body.partition(b"\0")[0] if kind in png.TEXT_TYPES else b""
            if keyword not in (b"parameters", b"imagen"):
                kept.append(data[start:end])
        return b"".join(kept)
    if data[:2] == jpeg.SOI:
        for marker, payload, start, end in jpeg.segments(data):
            if marker == jpeg.APP1 and payload.startswith(jpeg.EXIF_HEADER):
                return data[:start] + data[end:]
    return data
