"""Who is generating: the caller recorded with every usage row.

``IMAGEN_CALLER`` > ``MAI_FROM_ID`` > the tmux pane option ``@mai-name`` (when
inside tmux) > the operating-system user.
"""

from __future__ import annotations

import os


def caller() -> str:
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
