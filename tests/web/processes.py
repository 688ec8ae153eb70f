"""Real `imagen serve` (and `imagen worker`) processes for the end-to-end tests."""

from __future__ import annotations

import re
import resource
import subprocess
import sys
import threading
import time

CLI = "from imagen_core.cli import main; main()"


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
