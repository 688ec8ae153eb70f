"""The built-in preview, against a real tmux server on a private socket."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from imagen_core import Request, Session
from imagen_core.builtins import tmux_preview
from tests.helpers import write_config

TMUX = shutil.which("tmux")
SLEEP = shutil.which("sleep")
pytestmark = pytest.mark.skipif(
    TMUX is None and not os.environ.get("CI"), reason="tmux is not installed"
)


class Server:
    def __init__(self, name: str) -> None:
        self.name = name

    def tmux(self, *args: str) -> str:
        assert TMUX, "tmux is required (CI installs it)"
        done = subprocess.run(
            [TMUX, "-L", self.name, *args], capture_output=True, text=True, check=True
        )
        return done.stdout

    def windows(self) -> list[tuple[str, str, str]]:
        """(name, active flag, start command) of each window of session main."""
        out = self.tmux(
            "list-windows",
            "-t",
            "main",
            "-F",
            "#{window_name}\t#{window_active}\t#{pane_start_command}",
        )
        return [self._row(line) for line in out.splitlines()]

    @staticmethod
    def _row(line: str) -> tuple[str, str, str]:
        name, active, command = line.split("\t", 2)
        if command.startswith('"') and command.endswith('"'):  # tmux shows it quoted
            command = command[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        return name, active, command

    def reset(self) -> None:
        for name, *_ in self.windows()[1:]:
            self.tmux("kill-window", "-t", f"main:{name}")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert TMUX, "tmux is required (CI installs it)"
    name = f"imagen-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            TMUX,
            "-L",
            name,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "main",
            "-n",
            "work",
            "sleep 600",
        ],
        check=True,
    )
    srv = Server(name)
    socket, pid = srv.tmux("display", "-p", "-t", "main", "#{socket_path} #{pid}").split()
    monkeypatch.setenv("TMUX", f"{socket},{pid},0")
    # Only our fake viewers and tmux itself are on PATH.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tmux").symlink_to(TMUX)
    monkeypatch.setenv("PATH", str(bin_dir))
    yield srv
    subprocess.run([TMUX, "-L", name, "kill-server"], capture_output=True, check=False)


def fake_tool(server_bin: Path, name: str) -> None:
    tool = server_bin / name
    tool.write_text(f"#!/bin/sh\nexec {SLEEP} 600\n")  # PATH holds only the fakes
    tool.chmod(0o755)


@pytest.fixture
def tty(monkeypatch):
    monkeypatch.setattr(tmux_preview, "stdout_is_terminal", lambda: True)


def test_opens_a_background_window_named_after_the_prompt(server, tmp_path, tty):
    fake_tool(tmp_path / "bin", "tmux-img")
    record = Session().generate(Request("A Lighthouse at Dusk", width=8, height=8))
    windows = server.windows()
    assert windows[0][:2] == ("work", "1"), "the generating window must keep the focus"
    name, active, command = windows[1]
    assert (name, active) == ("img:a-lighthouse-at-dusk", "0")
    assert command == f"{tmp_path}/bin/tmux-img --hold {record.path}"


def test_preview_command_template_and_viewer_fallback(server, tmp_path, isolated_env, tty):
    fake_tool(tmp_path / "bin", "chafa")
    record = Session().generate(Request("boat", width=8, height=8))
    assert server.windows()[1][2] == (
        f"{tmp_path}/bin/chafa {record.path}; printf '\\n[Enter closes this window]'; read _"
    )
    server.reset()
    fake_tool(tmp_path / "bin", "myviewer")
    write_config(isolated_env, "output:\n  preview_command: 'myviewer --big {path}'\n")
    record = Session().generate(Request("boat", width=8, height=8), output=tmp_path / "a b.png")
    assert server.windows()[1][2] == f"myviewer --big '{tmp_path}/a b.png'"


def test_no_viewer_says_once_what_to_install(server, capsys, tty):
    Session().generate(Request("boat", width=8, height=8))
    Session().generate(Request("boat", width=8, height=8))
    err = capsys.readouterr().err
    assert err.count("install tmux-img or chafa") == 1
    assert len(server.windows()) == 1
    warnings: list[str] = []
    Session(warn=warnings.append).generate(Request("boat", width=8, height=8), preview=True)
    assert warnings == [f"preview: {tmux_preview.INSTALL_HINT}"]


CONFIGS = ["auto", "on", "off"]
ENVS = [None, "on", "off"]
FLAGS = [None, True, False]


def expected(config: str, env: str | None, flag: bool | None, tty: bool, in_tmux: bool) -> str:
    mode = {True: "on", False: "off"}.get(flag) or env or config  # type: ignore[arg-type]
    if mode == "off":
        return "none"
    if mode == "on":
        return "window" if in_tmux else "warning"
    return "window" if tty and in_tmux else "none"


def test_resolution_table(server, tmp_path, isolated_env, monkeypatch):
    fake_tool(tmp_path / "bin", "tmux-img")
    tmux_env = os.environ["TMUX"]
    seen = set()
    for config, env, flag, tty, in_tmux in itertools.product(
        CONFIGS, ENVS, FLAGS, [True, False], [True, False]
    ):
        write_config(isolated_env, f"output:\n  preview: {config}\n")
        if env:
            monkeypatch.setenv("IMAGEN_PREVIEW", env)
        else:
            monkeypatch.delenv("IMAGEN_PREVIEW", raising=False)
        if in_tmux:
            monkeypatch.setenv("TMUX", tmux_env)
        else:
            monkeypatch.delenv("TMUX", raising=False)
        monkeypatch.setattr(tmux_preview, "stdout_is_terminal", lambda tty=tty: tty)
        warnings: list[str] = []
        Session(warn=warnings.append).generate(Request("x", width=8, height=8), preview=flag)
        opened = len(server.windows()) - 1
        server.reset()
        got = "window" if opened else ("warning" if warnings else "none")
        want = expected(config, env, flag, tty, in_tmux)
        assert got == want, (config, env, flag, tty, in_tmux, warnings)
        if got == "warning":
            assert warnings == [
                "preview: preview is on but this is not a tmux session ($TMUX is unset): "
                "run imagen inside tmux, or use --no-preview / output.preview: auto"
            ]
        assert opened <= 1
        seen.add(got)
    assert seen == {"window", "warning", "none"}


def test_tmux_failure_is_one_warning_and_the_image_stays(server, tmp_path, monkeypatch, tty):
    fake_tool(tmp_path / "bin", "tmux-img")
    monkeypatch.setenv("TMUX", "/nonexistent/socket,1,0")
    warnings: list[str] = []
    record = Session(warn=warnings.append).generate(Request("x", width=8, height=8))
    assert record.path.exists()
    assert len(warnings) == 1 and warnings[0].startswith("preview: tmux new-window failed:")
