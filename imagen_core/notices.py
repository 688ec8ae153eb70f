"""Warnings for the person at the terminal: ``imagen: <message>`` on stderr.

For plugins too: ``warn("replicate: no price for a/b", once="price:a/b")`` says it
once per process, however many images follow.
"""

from __future__ import annotations

import sys

_said: set[str] = set()


def warn(message: str, *, once: str | None = None) -> None:
    """Print ``imagen: message`` on stderr; with ``once=KEY``, only the first time."""
    if once is not None:
        if once in _said:
            return
        _said.add(once)
    sys.stderr.write(f"imagen: {message}\n")
