"""Placeholders in workflow templates: their syntax, the ones imagen fills
itself, and the type each of those gets.

Kept apart from the template code because the config block's validation needs
it at every start, and it costs nothing to import.
"""

from __future__ import annotations

import re
from typing import Any

from imagen_comfyui.errors import WorkflowError

# A string value that is exactly "${name}" is a placeholder; "a ${name} b" is not.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# The placeholders imagen fills itself, with the type the value gets.
BUILTIN_TYPES: dict[str, type] = {
    "prompt": str,
    "negative": str,
    "seed": int,
    "steps": int,
    "width": int,
    "height": int,
    "cfg": float,
    "denoise": float,
    "sampler": str,
    "scheduler": str,
    "batch_size": int,
}
# Filled from the request; neither the workflow data nor `defaults` can set them.
FROM_REQUEST = ("prompt", "seed", "width", "height")


def how_to_set(name: str) -> str:
    if name == "steps":
        return "pass --steps N or set defaults.steps in the backend's block"
    if name in BUILTIN_TYPES:
        return f"set defaults.{name} in the backend's block"
    return f"set vars.{name} in the backend's block"


def coerce(name: str, value: Any) -> Any:
    """``value`` as the type of built-in placeholder ``name``; others keep their type."""
    kind = BUILTIN_TYPES.get(name)
    if kind is None:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = {str: "a string", int: "a whole number", float: "a number"}[kind]
        raise WorkflowError(f"${{{name}}} must be {expected}, got {value!r}")
    return value
