"""What imagen's frozen attrs values share: their repr.

attrs writes the source of a ``__repr__`` for every class it builds and compiles
it at import, about 0.15 ms a class; a start of ``imagen generate`` builds some
twenty of them before it does anything. ``value_repr`` gives the same text from
one function: a class uses it with ``repr=False`` and ``__repr__ = value_repr``.
"""

from __future__ import annotations

import threading
from typing import Any

_active = threading.local()


def value_repr(self: Any) -> str:
    """attrs' repr of ``self``: ``Request(prompt='x', negative='', ...)``, every
    field that has ``repr`` on, through its own repr callable when it has one,
    and ``...`` for a value met again inside itself."""
    seen: set[int] | None = getattr(_active, "seen", None)
    if seen is None:
        seen = _active.seen = set()
    if id(self) in seen:
        return "..."
    seen.add(id(self))
    try:
        shown = []
        for field in type(self).__attrs_attrs__:
            if field.repr is False:
                continue
            value = getattr(self, field.name)
            shown.append(f"{field.name}={repr(value) if field.repr is True else field.repr(value)}")
        return f"{type(self).__qualname__.rsplit('>.', 1)[-1]}({', '.join(shown)})"
    finally:
        seen.discard(id(self))
