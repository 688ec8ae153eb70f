"""Who is generating: the caller recorded with every usage row.

``acting_as(name)`` (a server generating for a client) > ``IMAGEN_CALLER`` >
``MAI_FROM_ID`` > the tmux pane option ``@mai-name`` (when inside tmux) > the
operating-system user.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

_ACTING: contextvars.ContextVar[str | None] = contextvars.ContextVar("imagen_caller", default=None)


@contextlib.contextmanager
def acting_as(name: str | None) -> Iterator[None]:
    """Within the block (this thread, this task), ``caller()`` is ``name``: a
    server records the client it generates for (``imagen serve``: the OpenAI
    ``user`` field). ``None`` leaves the caller as it is."""
    if not name:
        yield
        return
    token = _ACTING.set(name)
    try:
        yield
    finally:
        _ACTING.reset(token)


def caller() -> str:
    acting = _ACTING.get()
    if acting:
        return acting
    for variable in ("IMAGEN_CALLER", "MAI_FROM_ID"):
        value = os.environ.get(variable, "").strip()
        if value:
            return value
    if os.environ.get("TMUX"):
        name = _tmux_pane_name()
        if name:
            return name
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def _tmux_pane_name() -> str:
    import subprocess

    command = ["tmux", "show-options", "-pqv"]
    pane = os.environ.get("TMUX_PANE")
    if pane:  # the pane imagen runs in, not whichever pane is active
        command += ["-t", pane]
    try:
        done = subprocess.run(
            [*command, "@mai-name"], capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
