"""Who is generating: the caller recorded with every usage row.

``acting_as(name)`` (a server generating for a client) > ``IMAGEN_CALLER`` >
``MAI_FROM_ID`` > the tmux pane option ``@mai-name`` (when inside tmux) > the
operating-system user.

Every usage row asks (a worker: two rows per job), so the two lookups that cost
something are remembered: the tmux option (a ``tmux`` process) for
PANE_NAME_TTL_S per pane, the account name of a user id (a passwd lookup) for
the process.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import threading
import time
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
        name = _pane_name()
        if name:
            return name
    # What getpass.getuser() does, with the passwd lookup remembered.
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        user = os.environ.get(variable)
        if user:
            return user
    return _account(os.getuid()) if hasattr(os, "getuid") else "unknown"


@functools.cache
def _account(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid-{uid}"


# A renamed pane shows in the rows within this time.
PANE_NAME_TTL_S = 30.0
_panes: dict[tuple[str, str], tuple[float, str]] = {}
_panes_lock = threading.Lock()


def _pane_name() -> str:
    """``_tmux_pane_name()``, asked at most every PANE_NAME_TTL_S per pane."""
    key = (os.environ.get("TMUX", ""), os.environ.get("TMUX_PANE", ""))
    now = time.monotonic()
    with _panes_lock:
        known = _panes.get(key)
    if known is not None and now - known[0] < PANE_NAME_TTL_S:
        return known[1]
    name = _tmux_pane_name()
    with _panes_lock:
        _panes[key] = (now, name)
    return name


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
