"""What the mock backend does with input images: visibly and deterministically.

- **references** are inset as thumbnails along the bottom edge of the picture,
  from the right (each a square of a fifth of the short side, with a margin);
- the **image** to edit is blended with the picture: ``strength`` 0 keeps the
  image as it is, 1 gives the picture alone (default 0.6; 1.0 with a mask);
- the **mask** (white = repaint) limits the blend: where it is black the image
  stays exactly as it was.

So a test can check pixels: a corner of the inset is the reference's colour, an
unmasked pixel is the input's, and a masked one moved toward the picture by
``strength``. Everything is a pure function of its arguments.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from collections.abc import Sequence

DEFAULT_STRENGTH = 0.6
DEFAULT_MASK_STRENGTH = 1.0
INSET_FRACTION = 5  # an inset's side is the picture's short side over this
MAX_INSETS = 4


def strength_used(strength: float | None, *, mask: bool) -> float:
    """The strength an edit runs with: the request's, else the default."""
    if strength is not None:
        return strength
    return DEFAULT_MASK_STRENGTH if mask else DEFAULT_STRENGTH


def _open(data: bytes, mode: str, size: tuple[int, int]) -> Image.Image:
    with Image.open(io.BytesIO(data)) as opened:
        image: Image.Image = opened.convert(mode)
    if image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    return image


def inset_box(index: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where reference ``index`` (0 = first) is drawn: (left, top, right, bottom)."""
    width, height = size
    side = max(1, min(width, height) // INSET_FRACTION)
    margin = max(1, side // 8)
    right = width - margin - index * (side + margin)
    bottom = height - margin
    return right - side, bottom - side, right, bottom


def apply_inputs(
    picture: Image.Image,
    *,
    image: bytes | None = None,
    mask: bytes | None = None,
    references: Sequence[bytes] = (),
    strength: float | None = None,
) -> Image.Image:
    """The picture with the inputs used (see the module's docstring)."""
    size = picture.size
    painted = picture.convert("RGB")
    for index, data in enumerate(references[:MAX_INSETS]):
        box = inset_box(index, size)
        if box[0] < 0 or box[2] - box[0] < 1:
            break
        thumb = _open(data, "RGB", (box[2] - box[0], box[3] - box[1]))
        painted.paste(thumb, box[:2])
    if image is None:
        return painted
    base = _open(image, "RGB", size)
    amount = strength_used(strength, mask=mask is not None)
    blended = Image.blend(base, painted, amount)
    if mask is None:
        return blended
    return Image.composite(blended, base, _open(mask, "L", size))
