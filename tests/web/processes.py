"""Real `imagen serve` (and `imagen worker`) processes for the end-to-end tests."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

CLI = "from imagen_core.cli import main; main()"
REPO = Path(__file__).parents[2]
# What a process with a home of its own must not inherit from the caller's.
CALLERS_OWN = ("IMAGEN_", "XDG_", "MAI_", "TMUX", "OPENAI_")


def cli_env(
    config: Path, plugins: str = "imagen-mock,imagen-web", *, home: Path | None = None
) -> dict[str, str]:
    """The environment of an `imagen` process: ``config`` as its imagen.yaml,
    only ``plugins`` loaded, this repository importable (for the tests' plugins
    that editor.RUN_CLI registers) and stderr unbuffered (read line by line).
    Without ``home`` it is this test's environment, which tests/conftest.py
    already isolates; with one (a module's server, outside any test) HOME and
    the XDG folders are there, and nothing of the caller's imagen, XDG, tmux or
    OpenAI variables is kept."""
    env = dict(os.environ)
    if home is not None:
        env = {key: value for key, value in env.items() if not key.startswith(CALLERS_OWN)}
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local" / "share"),
        )
    env.update(
        IMAGEN_CONFIG=str(config),
        IMAGEN_LOAD_PLUGINS=plugins,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    return env


class Process:
    """A CLI process whose stderr is read on a thread (so its pipe never fills)."""

    def __init__(
        self, *args: str, env: dict[str, str], cli: str = CLI, max_files: int | None = None
    ) -> None:
        self.lines: list[str] = []

        def limit_files() -> None:  # in the child: an open-file limit of its own
            if max_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))

        self.proc = subprocess.Popen(
            [sys.executable, "-c", cli, *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limit_files,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if match := re.search(pattern, line):
                    return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {pattern!r} in the output: {self.lines}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)


def serve(
    env: dict[str, str], *args: str, cli: str = CLI, max_files: int | None = None
) -> tuple[Process, str]:
    server = Process("serve", "--addr", "127.0.0.1:0", *args, env=env, cli=cli, max_files=max_files)
    url = server.wait_for(r"imagen serve: (http://127\.0\.0\.1:\d+/)").group(1)
    return server, url
