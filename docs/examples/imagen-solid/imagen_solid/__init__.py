"""imagen-solid: a backend type ``solid`` that paints the whole image in one colour.

Registering is cheap: Pillow is imported only when an image is made.
"""

from __future__ import annotations

import io
import random
import re
from typing import TYPE_CHECKING

import attrs

from imagen_core import BackendError, Result, hookimpl, setting

if TYPE_CHECKING:
    from imagen_core import Progress, Request
    from imagen_core.registry import RegisterBackend

MODEL = "solid-v1"
_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def _hex_color(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not _HEX.fullmatch(value):
        raise ValueError(f'{attribute.name} must look like "#336699", got {value!r}')


@attrs.frozen
class SolidConfig:
    """The keys of a ``solid`` block in imagen.yaml (besides ``type``)."""

    color: str = setting(
        "#808080", validator=_hex_color, help='fill colour as "#rrggbb" (quote it in YAML)'
    )


class SolidBackend:
    """Makes a PNG of the requested size filled with the configured colour."""

    def __init__(self, config: SolidConfig) -> None:
        self.config = config

    def generate(self, request: Request, progress: Progress) -> Result:
        from PIL import Image  # heavy: imported when an image is made, not at startup

        # Seed 0 means "pick one"; the seed actually used is always reported.
        seed = request.seed or random.SystemRandom().randrange(1, 2**32)
        progress(0, 1, "painting")
        rgb = tuple(int(self.config.color[i : i + 2], 16) for i in (1, 3, 5))
        buffer = io.BytesIO()
        try:
            Image.new("RGB", (request.width, request.height), rgb).save(buffer, "PNG")
        except (OSError, ValueError) as exc:
            raise BackendError(f"solid: cannot make the PNG: {exc}") from exc
        progress(1, 1)
        return Result(
            image=buffer.getvalue(),
            seed=seed,
            model=MODEL,
            mime_type="image/png",
            cost_usd=0.0,
            metadata={"color": self.config.color},
        )


@hookimpl
def register_backends(register: RegisterBackend) -> None:
    register(
        "solid",
        SolidBackend,
        config=SolidConfig,
        examples={"solid": {}, "solid-blue": {"color": "#336699"}},
    )
