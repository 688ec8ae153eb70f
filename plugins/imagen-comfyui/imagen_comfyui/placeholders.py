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

# The input images: ${image} is the first (the image to edit, or the init image),
# ${image_2}, ${image_3}, ... the further ones (references), ${mask} the mask.
# Each becomes the name of the uploaded file, as LoadImage takes it.
MASK = "mask"
_IMAGE = re.compile(r"image(?:_([2-9]|[1-9][0-9]+))?")


def image_index(name: str) -> int | None:
    """1 for ``image``, N for ``image_N`` (N >= 2), None for any other name."""
    match = _IMAGE.fullmatch(name)
    if match is None:
        return None
    return int(match.group(1) or 1)


def image_name(index: int) -> str:
    """The placeholder of the ``index``-th input image (1-based)."""
    return "image" if index == 1 else f"image_{index}"


def is_input(name: str) -> bool:
    """Whether ``name`` is filled with an uploaded input (an image or the mask)."""
    return name == MASK or image_index(name) is not None


def is_builtin(name: str) -> bool:
    return name in BUILTIN_TYPES or is_input(name)


def from_request(name: str) -> bool:
    """Whether only the request fills ``name`` (never the workflow data or config)."""
    return name in FROM_REQUEST or is_input(name)


def type_of(name: str) -> type | None:
    """The type a built-in placeholder's value gets; None for the workflow's own."""
    return str if is_input(name) else BUILTIN_TYPES.get(name)


def how_to_set(name: str) -> str:
    if name == "steps":
        return "pass --steps N or set defaults.steps in the backend's block"
    if name == MASK:
        return "give the mask with --mask"
    index = image_index(name)
    if index is not None:
        return "give the image with --image" if index == 1 else f"give {index} images with --image"
    if name in BUILTIN_TYPES:
        return f"set defaults.{name} in the backend's block"
    return f"set vars.{name} in the backend's block"


def coerce(name: str, value: Any) -> Any:
    """``value`` as the type of built-in placeholder ``name``; others keep their type."""
    kind = type_of(name)
    if kind is None:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = {str: "a string", int: "a whole number", float: "a number"}[kind]
        raise WorkflowError(f"${{{name}}} must be {expected}, got {value!r}")
    return value
