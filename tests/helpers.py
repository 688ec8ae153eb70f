"""Helpers shared by the tests."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from imagen_core.plugins import ImagenPluginManager

if TYPE_CHECKING:
    from imagen_core import Request, Session
    from imagen_core.queue import Job


@contextlib.contextmanager
def registered(manager: ImagenPluginManager, plugin: object, name: str) -> Iterator[None]:
    """Register ``plugin`` for the duration of a block (the datasette pattern)."""
    manager.register(plugin, name=name)
    try:
        yield
    finally:
        manager.unregister(name=name)


@contextlib.contextmanager
def registered_afresh(
    manager: ImagenPluginManager, monkeypatch: pytest.MonkeyPatch, plugin: object, name: str
) -> Iterator[None]:
    """``registered``, with the warnings said once per process forgotten
    (``warn(..., once=KEY)``), so each test of a plugin sees its own."""
    import imagen_core.notices

    monkeypatch.setattr(imagen_core.notices, "_said", set())
    with registered(manager, plugin, name):
        yield


def write_config(home: Path, text: str) -> Path:
    path = home / ".config" / "imagen.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_backend(
    home: Path, instance: str, backend_type: str, settings: dict[str, str], extra: str = ""
) -> Path:
    """imagen.yaml with one backend ``instance`` (the default) of ``backend_type``:
    its ``settings`` (values as YAML text), then the lines of ``extra``."""
    lines = [f"{key}: {value}" for key, value in settings.items()]
    lines += [line for line in extra.splitlines() if line]
    block = "".join(f"    {line}\n" for line in lines)
    return write_config(
        home,
        f"default_backend: {instance}\nbackends:\n  {instance}:\n    type: {backend_type}\n{block}",
    )


def structure_block(
    manager: ImagenPluginManager, home: Path, backend_type: str, block: str, instance: str = "b"
) -> Any:
    """The settings a backend block (its indented lines) is structured into, as
    imagen.yaml gives it; a ConfigError as `imagen` would report it."""
    from imagen_core import load
    from imagen_core.registry import collect

    path = write_config(home, f"backends:\n  {instance}:\n    type: {backend_type}\n{block}")
    return load(collect(manager), path).backends[instance].settings


def block_problem(
    manager: ImagenPluginManager, home: Path, backend_type: str, block: str, instance: str = "b"
) -> str:
    """The one problem imagen reports for a backend block (its indented lines),
    after checking it says where in imagen.yaml (file:line:col)."""
    from imagen_core import ConfigError

    with pytest.raises(ConfigError) as info:
        structure_block(manager, home, backend_type, block, instance)
    (problem,) = info.value.problems
    assert "imagen.yaml:" in problem, problem
    return problem


def run_cli(
    capsys: pytest.CaptureFixture[str], *args: str, stdin: str | None = None
) -> tuple[int, str, str]:
    """``imagen ARGS`` in this process (reading ``stdin`` when given): its exit
    code, stdout and stderr. ``main`` always exits with a number; anything else
    fails the test."""
    from imagen_core.cli import main

    with pytest.MonkeyPatch.context() as patch, pytest.raises(SystemExit) as info:
        if stdin is not None:
            patch.setattr("sys.stdin", io.StringIO(stdin))
        main(list(args))
    out, err = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int), f"imagen exited with {code!r}, not a number"
    return code, out, err


def one_line(err: str) -> str:
    """``err`` after checking it is one line, as every error of imagen is."""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


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


def until(condition: Callable[[], object], what: str, bound_s: float = 10.0) -> None:
    """Wait for ``condition()`` to hold, failing with ``what`` after a generous bound."""
    deadline = time.monotonic() + bound_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def cancel_while_running(
    session: Session, backend: str, started: Callable[[], object], what: str
) -> tuple[Job, list[str]]:
    """Submit a job for ``backend``, run a worker on it in a thread, cancel the job
    once ``started()`` says its remote work has begun (``what`` if it never does),
    and wait for the worker to stop: the job as the queue has it then, and the
    worker's log lines."""
    from imagen_core import Request
    from imagen_core.worker import Worker, WorkerOptions

    queue = session.queue()
    job = queue.submit(Request("a cat", seed=1), backend=backend)
    lines: list[str] = []
    options = WorkerOptions(once=True, idle_wait_s=0.02, lease_s=0.3)
    worker = Worker(session, queue, options, log=lines.append)
    thread = threading.Thread(target=worker.run)
    thread.start()
    until(started, what)
    queue.cancel(job.id)
    thread.join(timeout=20)
    assert not thread.is_alive(), "the worker did not stop"
    final = queue.get(job.id)
    assert final is not None
    return final, lines


def run_worker_once(session: Session) -> list[str]:
    """Run a worker until the queue has nothing left for it (``once``); its log lines."""
    from imagen_core.worker import Worker, WorkerOptions

    lines: list[str] = []
    options = WorkerOptions(once=True, idle_wait_s=0.02)
    Worker(session, session.queue(), options, log=lines.append).run()
    return lines


def closed_port() -> int:
    """A port on 127.0.0.1 that nobody listens on once this returns."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def requeued_then_done(
    session: Session, backend: str, refused: Request, output_dir: Path
) -> tuple[str, str]:
    """Queue "a cat" (its backend set up to fail it once in a way that may pass)
    and ``refused`` (set up to fail for good) for ``backend``, run a worker until
    the queue has nothing left, and check that "a cat" is done on its second
    attempt and ``refused`` failed on its first. The worker's ``retrying`` line
    and the refused job's error, for the backend's own checks."""
    from imagen_core import Request

    queue = session.queue()
    busy_id = queue.submit(Request("a cat", seed=1), backend=backend).id
    refused_id = queue.submit(refused, backend=backend).id
    lines = run_worker_once(session)
    done, failed = queue.get(busy_id), queue.get(refused_id)
    assert done is not None and failed is not None
    assert (done.status, done.attempts) == ("done", 2), lines
    assert (failed.status, failed.attempts) == ("failed", 1), lines
    assert sorted(line.split()[3] for line in lines) == ["done", "failed", "retrying"]
    retrying = next(line for line in lines if " retrying " in line)
    assert retrying.startswith(f"job {busy_id[:8]} {backend} retrying (1/3)")
    assert done.result_path is not None and (output_dir / done.result_path).exists()
    return retrying, failed.error or ""


def job_files(output_dir: Path) -> list[Path]:
    """Every file under ``output_dir/jobs``, in both layouts (flat and by submit hour)."""
    folder = output_dir / "jobs"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def job_image(output_dir: Path, job_id: str, created_at: object, suffix: str = ".png") -> Path:
    """Where the worker puts a job's image: ``jobs/<submit date>/<submit hour>/<id><suffix>``."""
    import datetime as dt

    assert isinstance(created_at, dt.datetime)
    moment = created_at.astimezone(dt.timezone.utc)
    return output_dir / "jobs" / f"{moment:%Y-%m-%d}" / f"{moment:%H}" / f"{job_id}{suffix}"
