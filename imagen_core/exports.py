"""Names a module exports but defines elsewhere, imported on first use.

``imagen_core``, ``imagen_core.grid``, ``imagen_core.models`` and
``imagen_core.config`` export names whose modules a start need not load (each
attrs class costs ≈ 0.3 ms to build): their ``__getattr__`` is ``lazy(...)``.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def lazy(module: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``module``: ``exports`` maps each name to the
    module that defines it. The value found is kept among ``module``'s globals,
    so later lookups, and annotations resolved at run time, find it directly."""

    def __getattr__(name: str) -> Any:
        source = exports.get(name)
        if source is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(sys.modules[module], name, value)
        return value

    return __getattr__
