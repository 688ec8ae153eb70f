"""Show a finished image in a sibling tmux window named ``img:<slug>``.

Imported at every start, like every plugin: subprocess, shutil and shlex are
imported only when an image is to be shown.

The window is opened in the background (``tmux new-window -d``), so the pane
that generated keeps the focus and its output. The command shown there is
``output.preview_command`` when set, else ``tmux-img --hold PATH`` when tmux-img
is installed, else a terminal image viewer that is (chafa, timg, viu, catimg).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from imagen_core.errors import ImagenError
from imagen_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from imagen_core.config import Config
    from imagen_core.models import Request

# Viewers that draw an image in a terminal and exit; the window then waits for Enter.
VIEWERS = ("chafa", "timg", "viu", "catimg")
INSTALL_HINT = (
    "no image viewer for the preview: install tmux-img or chafa (apt-get install chafa), "
    "or set output.preview_command (e.g. 'kitten icat --hold {path}')"
)


class PreviewError(ImagenError):
    """The preview could not be shown (reported as one warning line)."""


def wanted(mode: str, *, stdout_tty: bool, in_tmux: bool) -> bool:
    """auto: only in a terminal inside tmux; on: always (and it must be tmux); off: never."""
    if mode == "off":
        return False
    if mode == "auto":
        return stdout_tty and in_tmux
    if not in_tmux:
        raise PreviewError(
            "preview is on but this is not a tmux session ($TMUX is unset): "
            "run imagen inside tmux, or use --no-preview / output.preview: auto"
        )
    return True


def command_for(path: Path, template: str | None) -> str | None:
    """The shell command that shows ``path``, or None when nothing can."""
    import shlex
    import shutil

    quoted = shlex.quote(str(path))
    if template:
        return template.replace("{path}", quoted)
    # Absolute paths: the window runs in the tmux server's environment, whose PATH
    # may lack the folder (a virtualenv, say) where this process found the viewer.
    found = shutil.which("tmux-img")
    if found:
        return f"{shlex.quote(found)} --hold {quoted}"
    for viewer in VIEWERS:
        found = shutil.which(viewer)
        if found:
            return f"{shlex.quote(found)} {quoted}; printf '\\n[Enter closes this window]'; read _"
    return None


def _hint_once() -> None:
    """Say what to install once per user, not after every image."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "imagen"
    marker = cache / "preview-hint-shown"
    if marker.exists():
        return
    try:
        cache.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass
    sys.stderr.write(f"imagen: preview: {INSTALL_HINT}\n")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


@hookimpl(trylast=True)
def preview(path: Path, request: Request, mode: str, config: Config) -> bool | None:
    in_tmux = bool(os.environ.get("TMUX"))
    if not wanted(mode, stdout_tty=stdout_is_terminal(), in_tmux=in_tmux):
        return None
    command = command_for(path, config.output.preview_command)
    if command is None:
        if mode == "on":
            raise PreviewError(INSTALL_HINT)
        _hint_once()
        return None
    import subprocess

    from imagen_core.naming import slugify

    name = f"img:{slugify(request.prompt, max_len=24)}"
    try:
        done = subprocess.run(
            ["tmux", "new-window", "-d", "-n", name, command],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PreviewError(f"could not run tmux: {exc}") from None
    if done.returncode != 0:
        raise PreviewError(f"tmux new-window failed: {' '.join(done.stderr.split())}")
    return True
